//! What the session cookie looks like and when it is set, for every cookie option.

mod common;

use common::*;
use rocket::http::{Cookie, Header, SameSite as CookieSameSite, Status};
use rocket_server_sessions::{
    config::{SameSitePolicy, Secure},
    store::MemoryStore,
    Sessions,
};

#[rocket::async_test]
async fn first_write_sets_a_signed_http_only_lax_cookie_for_one_day() {
    let client = client(Sessions::builder()).await;
    let response = client.get("/counter").dispatch().await;
    assert_eq!(response.status(), Status::Ok);

    let cookie = session_cookie(&response).expect("a session cookie");
    assert_eq!(cookie.http_only(), Some(true));
    assert_eq!(cookie.same_site(), Some(CookieSameSite::Lax));
    assert_eq!(cookie.path(), Some("/"));
    assert_eq!(cookie.domain(), None);
    assert_eq!(
        cookie.secure(),
        None,
        "plain http with secure = auto is not Secure"
    );
    assert_eq!(cookie.max_age(), Some(rocket::time::Duration::days(1)));
    let (id, tag) = cookie.value().split_once('.').expect("<id>.<signature>");
    assert!(id.len() >= 22, "at least 128 bits of id");
    assert_eq!(tag.len(), 43, "an HMAC-SHA256 tag");
}

#[rocket::async_test]
async fn counter_counts_per_session() {
    let client = untracked(Sessions::builder()).await;
    let visit = |cookie: Option<Cookie<'static>>| {
        let mut request = client.get("/counter");
        if let Some(cookie) = cookie {
            request = request.cookie(cookie);
        }
        request.dispatch()
    };

    let first = visit(None).await;
    let alice = session_cookie(&first).unwrap();
    assert_eq!(first.into_string().await.as_deref(), Some("1"));
    for expected in ["2", "3"] {
        let response = visit(Some(alice.clone())).await;
        assert_eq!(response.into_string().await.as_deref(), Some(expected));
    }

    let first = visit(None).await;
    let bob = session_cookie(&first).unwrap();
    assert_ne!(alice.value(), bob.value());
    assert_eq!(first.into_string().await.as_deref(), Some("1"));
    assert_eq!(
        visit(Some(alice)).await.into_string().await.as_deref(),
        Some("4")
    );
}

#[rocket::async_test]
async fn a_route_without_a_session_guard_costs_no_store_access_and_no_cookie() {
    let store = Counting::memory();
    let client = client(Sessions::builder().store(store.clone())).await;
    get_ok(&client, "/counter").await;
    let before = store.calls.total();

    let response = client.get("/plain").dispatch().await;
    assert_eq!(response.status(), Status::Ok);
    assert!(set_cookies(&response).is_empty());
    assert_eq!(
        store.calls.total(),
        before,
        "the cookie was sent, yet nothing was asked of the store"
    );
}

#[rocket::async_test]
async fn reading_an_empty_session_stores_nothing_and_sets_no_cookie() {
    let store = Counting::memory();
    let client = client(Sessions::builder().store(store.clone())).await;
    let response = client.get("/count").dispatch().await;
    assert_eq!(response.into_string().await.as_deref(), Some("0"));
    assert!(store.inner.is_empty());
    assert_eq!(
        store.calls.get(),
        (0, 0, 0, 0, 0),
        "no cookie: nothing to load"
    );
}

#[rocket::async_test]
async fn save_uninitialized_stores_an_empty_session_and_sets_its_cookie() {
    let store = MemoryStore::default();
    let client = client(
        Sessions::builder()
            .store(store.clone())
            .save_uninitialized(true),
    )
    .await;
    let response = client.get("/count").dispatch().await;
    assert!(session_cookie(&response).is_some());
    assert_eq!(store.len(), 1);

    // The cookie now names a stored session: the next read does not create another.
    let response = client.get("/count").dispatch().await;
    assert!(session_cookie(&response).is_none());
    assert_eq!(store.len(), 1);
}

#[rocket::async_test]
async fn an_unchanged_session_is_not_written_back() {
    let store = Counting::memory();
    let client = client(Sessions::builder().store(store.clone())).await;
    get_ok(&client, "/counter").await;
    assert_eq!(store.calls.get(), (0, 1, 0, 0, 0));

    let response = client.get("/count").dispatch().await;
    assert!(set_cookies(&response).is_empty());
    assert_eq!(store.calls.get(), (1, 1, 0, 0, 0), "one load, no write");

    // A change is one load and one commit.
    get_ok(&client, "/counter").await;
    assert_eq!(store.calls.get(), (2, 1, 1, 0, 0));
}

#[rocket::async_test]
async fn resave_writes_an_unchanged_session_back() {
    let store = Counting::memory();
    let client = client(Sessions::builder().store(store.clone()).resave(true)).await;
    get_ok(&client, "/counter").await;
    get_ok(&client, "/count").await;
    assert_eq!(store.calls.get(), (1, 1, 1, 0, 0));
    assert_eq!(get_ok(&client, "/count").await, "1");
}

#[rocket::async_test]
async fn several_guards_share_one_load_and_one_commit() {
    let store = Counting::memory();
    let client = client(Sessions::builder().store(store.clone())).await;
    assert_eq!(get_ok(&client, "/both").await, "1:visit-1");
    assert_eq!(store.calls.get(), (0, 1, 0, 0, 0));
    assert_eq!(get_ok(&client, "/both").await, "2:visit-1,visit-2");
    assert_eq!(store.calls.get(), (1, 1, 1, 0, 0));
}

#[rocket::async_test]
async fn cookie_options_shape_the_cookie() {
    let builder = Sessions::builder()
        .cookie_name("app.sid")
        .path("/app")
        .domain("example.com")
        .same_site(SameSitePolicy::Strict)
        .http_only(false)
        .secure(Secure::Always);
    let client = client(builder).await;
    let response = client.get("/counter").dispatch().await;
    let header = set_cookies(&response).pop().expect("a cookie");
    let cookie = Cookie::parse(header).unwrap();
    assert_eq!(cookie.name(), "app.sid");
    assert_eq!(cookie.path(), Some("/app"));
    assert_eq!(cookie.domain(), Some("example.com"));
    assert_eq!(cookie.same_site(), Some(CookieSameSite::Strict));
    assert_eq!(cookie.http_only(), None);
    assert_eq!(cookie.secure(), Some(true));
}

#[rocket::async_test]
async fn same_site_none_is_sent_with_secure() {
    // "auto" too, over plain HTTP: browsers drop a SameSite=None cookie without Secure.
    for secure in [Secure::Always, Secure::Auto] {
        let client = client(
            Sessions::builder()
                .same_site(SameSitePolicy::None)
                .secure(secure),
        )
        .await;
        let cookie = new_session(&client).await;
        assert_eq!(cookie.same_site(), Some(CookieSameSite::None));
        assert_eq!(cookie.secure(), Some(true), "{secure:?}");
    }
}

#[rocket::async_test]
async fn a_partitioned_cookie_is_always_secure() {
    // "auto" too, over plain HTTP: browsers drop a Partitioned cookie without Secure.
    for secure in [Secure::Always, Secure::Auto] {
        let client = client(Sessions::builder().partitioned(true).secure(secure)).await;
        let response = client.get("/counter").dispatch().await;
        let header = set_cookies(&response).pop().expect("a cookie");
        assert!(header.contains("; Partitioned"), "{header}");
        assert_eq!(
            Cookie::parse(header).unwrap().secure(),
            Some(true),
            "{secure:?}"
        );

        // Its expiry names the same partition, or the browser would keep it.
        let response = client.post("/forget-me").dispatch().await;
        let header = set_cookies(&response).pop().expect("an expired cookie");
        assert!(
            header.contains("Max-Age=0") && header.contains("; Partitioned"),
            "{header}"
        );
    }

    let plain = client(Sessions::builder()).await;
    let header = set_cookies(&plain.get("/counter").dispatch().await)
        .pop()
        .unwrap();
    assert!(!header.contains("Partitioned"), "{header}");
}

#[rocket::async_test]
async fn secure_false_never_marks_the_cookie_secure() {
    let client = client(Sessions::builder().secure(Secure::Never).proxy(true)).await;
    let response = client
        .get("/counter")
        .header(Header::new("X-Forwarded-Proto", "https"))
        .dispatch()
        .await;
    assert_eq!(session_cookie(&response).unwrap().secure(), None);
}

#[rocket::async_test]
async fn forwarded_https_counts_as_tls_only_with_proxy() {
    let without_proxy = untracked(Sessions::builder()).await;
    let with_proxy = untracked(Sessions::builder().proxy(true)).await;
    let https = || Header::new("X-Forwarded-Proto", "https");

    let response = without_proxy
        .get("/counter")
        .header(https())
        .dispatch()
        .await;
    assert_eq!(
        session_cookie(&response).unwrap().secure(),
        None,
        "a client can send the header itself"
    );

    let response = with_proxy.get("/counter").header(https()).dispatch().await;
    assert_eq!(session_cookie(&response).unwrap().secure(), Some(true));

    let response = with_proxy
        .get("/counter")
        .header(Header::new("X-Forwarded-Proto", "http"))
        .dispatch()
        .await;
    assert_eq!(session_cookie(&response).unwrap().secure(), None);

    let response = with_proxy.get("/counter").dispatch().await;
    assert_eq!(session_cookie(&response).unwrap().secure(), None);

    // A proxy that appends: the client's own value comes first, the proxy's last.
    for (sent, secure) in [("http, https", Some(true)), ("https, http", None)] {
        let response = with_proxy
            .get("/counter")
            .header(Header::new("X-Forwarded-Proto", sent))
            .dispatch()
            .await;
        assert_eq!(
            session_cookie(&response).unwrap().secure(),
            secure,
            "{sent}"
        );
    }
}

#[rocket::async_test]
async fn the_session_after_a_destroy_forgets_the_remembered_lifetime() {
    let client = client(Sessions::builder()).await;
    new_session(&client).await;
    let response = client.post("/remember/604800000").dispatch().await;
    let remembered = session_cookie(&response).expect("remember me sends the cookie");
    assert_eq!(remembered.max_age(), Some(rocket::time::Duration::days(7)));

    // Log out, then a message for the next page: a new, ordinary session.
    let response = client.post("/destroy-then-set").dispatch().await;
    let next = session_cookie(&response).expect("the new session's cookie");
    assert_ne!(next.value(), remembered.value());
    assert_eq!(next.max_age(), Some(rocket::time::Duration::days(1)));
}

#[rocket::async_test]
async fn a_browser_session_stays_one_when_the_store_keeps_its_lifetime_in_milliseconds() {
    let builder = Sessions::builder()
        .browser_session(true)
        .rolling(true)
        .max_age(std::time::Duration::from_micros(86_400_000_500));
    let client = client(builder).await;
    assert_eq!(new_session(&client).await.max_age(), None);

    // Rolling on a route without a guard: the lifetime comes back from the store, in ms.
    let response = client.get("/plain").dispatch().await;
    let refreshed = session_cookie(&response).expect("rolling sends the cookie again");
    assert_eq!(refreshed.max_age(), None, "still a browser-session cookie");
}

#[rocket::async_test]
async fn browser_session_cookie_has_no_max_age_unless_remembered() {
    let client = client(Sessions::builder().browser_session(true)).await;
    let cookie = new_session(&client).await;
    assert_eq!(cookie.max_age(), None);
    assert_eq!(cookie.expires(), None);

    let response = client.post("/remember/604800000").dispatch().await;
    let cookie = session_cookie(&response).expect("remember me sends the cookie again");
    assert_eq!(cookie.max_age(), Some(rocket::time::Duration::days(7)));
}

#[rocket::async_test]
async fn forged_cookies_start_a_fresh_session_without_touching_the_store() {
    let store = Counting::memory();
    let tracked = client(Sessions::builder().store(store.clone())).await;
    let genuine = new_session(&tracked).await;
    let genuine = genuine.value().to_string();
    let (id, tag) = genuine.split_once('.').unwrap();
    let loads = store.calls.get().0;

    let client = untracked(Sessions::builder().store(store.clone())).await;
    let mut flipped = genuine.clone().into_bytes();
    let last = flipped.last_mut().unwrap();
    *last = if *last == b'A' { b'B' } else { b'A' };
    let forged = [
        String::new(),
        "garbage".into(),
        id.to_string(),
        format!("{id}."),
        format!("{id}.{}", &tag[..20]),
        format!("{genuine}x"),
        String::from_utf8(flipped).unwrap(),
        format!("{}.{tag}", "A".repeat(id.len())),
        "%00%ff%fe".into(),
        "A".repeat(4000),
        "..........".into(),
        "é".repeat(40),
    ];

    for value in forged {
        let response = client
            .get("/counter")
            .cookie(Cookie::new(COOKIE, value.clone()))
            .dispatch()
            .await;
        assert_eq!(response.status(), Status::Ok, "cookie {value:?}");
        let fresh = session_cookie(&response).expect("a fresh session");
        assert_ne!(fresh.value(), genuine);
        assert_eq!(
            response.into_string().await.as_deref(),
            Some("1"),
            "cookie {value:?}"
        );
    }

    assert_eq!(
        store.calls.get().0,
        loads,
        "no forged cookie reached the store"
    );

    // The genuine cookie still works.
    let response = client
        .get("/counter")
        .cookie(Cookie::new(COOKIE, genuine))
        .dispatch()
        .await;
    assert_eq!(response.into_string().await.as_deref(), Some("2"));
}

#[rocket::async_test]
async fn a_cookie_for_a_session_the_store_no_longer_has_is_left_alone() {
    let cookie = new_session(&client(Sessions::builder()).await).await;
    // The same secret, a new memory store: the app restarted and lost its sessions.
    let client2 = untracked(Sessions::builder()).await;
    let response = client2
        .get("/count")
        .cookie(cookie.clone())
        .dispatch()
        .await;
    assert_eq!(response.status(), Status::Ok);
    // The browser may hold a newer cookie by now (a request sent before log-in that
    // answers after it): expiring this name would expire that one.
    assert_eq!(set_cookies(&response), Vec::<String>::new());

    // Writing to it starts a new session, empty, under the id the browser holds (a
    // form's token bound to it stays valid); nothing of the old session comes back.
    let response = client2
        .get("/counter")
        .cookie(cookie.clone())
        .dispatch()
        .await;
    let renewed = session_cookie(&response).expect("the new session's cookie");
    assert_eq!(renewed.value(), cookie.value());
    assert_eq!(response.into_string().await.as_deref(), Some("1"));
}

/// A response that sets the cookie is the visitor's alone: `Cache-Control: private` keeps
/// shared caches from handing it, and the cookie, to others; an application's own
/// `Cache-Control` stays.
#[rocket::async_test]
async fn a_response_that_sets_the_cookie_is_private_to_shared_caches() {
    use rocket::{get, routes};
    use rocket_server_sessions::{Error, Session};

    #[derive(rocket::Responder)]
    struct Cached {
        body: &'static str,
        cache: Header<'static>,
    }

    #[get("/cached")]
    fn cached(mut visits: Session<Visits>) -> Result<Cached, Error> {
        visits.update(|v| v.count += 1)?;
        let cache = Header::new("Cache-Control", "no-store");
        Ok(Cached {
            body: "counted",
            cache,
        })
    }

    // A pending id, then the session stored under it, then that session again: no
    // cookie, no header of ours.
    let client = client(Sessions::builder()).await;
    for (path, sets) in [("/token", true), ("/counter", true), ("/counter", false)] {
        let response = client.get(path).dispatch().await;
        assert_eq!(session_cookie(&response).is_some(), sets, "{path}");
        let private = sets.then_some("private");
        assert_eq!(
            response.headers().get_one("Cache-Control"),
            private,
            "{path}"
        );
    }

    let rocket = rocket_with(figment(), Some(Sessions::fairing())).mount("/app", routes![cached]);
    let client = rocket::local::asynchronous::Client::tracked(rocket)
        .await
        .expect("the app launches");
    let response = client.get("/app/cached").dispatch().await;
    assert!(session_cookie(&response).is_some());
    assert_eq!(
        response.headers().get_one("Cache-Control"),
        Some("no-store")
    );
}
