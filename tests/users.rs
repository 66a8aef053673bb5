//! "Sign out everywhere": a user's sessions, listed and revoked across devices, on every
//! store.

mod common;

use common::*;
use rocket::http::Cookie;
use rocket::local::asynchronous::Client;
use rocket_server_sessions::{MemoryStore, Sessions};

use common::stores::Opener;

/// `method path` with `cookie` (one device's): the body.
async fn on(client: &Client, post: bool, path: &str, cookie: &Cookie<'static>) -> String {
    let request = match post {
        true => client.post(path.to_string()),
        false => client.get(path.to_string()),
    };
    let response = request.cookie(cookie.clone()).dispatch().await;
    response.into_string().await.unwrap_or_default()
}

/// The `(handle, current)` of each session the device's user has.
async fn sessions(client: &Client, cookie: &Cookie<'static>) -> Vec<(String, bool)> {
    on(client, false, "/sessions", cookie)
        .await
        .lines()
        .map(|line| {
            let (handle, current) = line.split_once(' ').expect("`<handle> <current>`");
            (handle.to_string(), current == "true")
        })
        .collect()
}

async fn whoami(client: &Client, cookie: &Cookie<'static>) -> String {
    on(client, false, "/whoami", cookie).await
}

/// Devices log in and out, list their user's sessions and revoke others, on `store`.
async fn sign_out_everywhere(open: Option<Opener>) {
    let Some(open) = open else { return };
    let store = open().await;
    let builder = Sessions::builder().store(store);
    let client = Client::untracked(rocket_with(figment(), Some(builder.build())))
        .await
        .expect("the test app launches");

    // Alice on two devices, Bob on one.
    let laptop = log_in_as(&client, "alice").await;
    let phone = log_in_as(&client, "alice").await;
    let bob = log_in_as(&client, "bob").await;
    let listed = sessions(&client, &laptop).await;
    assert_eq!(listed.len(), 2, "{listed:?}");
    assert_eq!(listed.iter().filter(|(_, current)| *current).count(), 1);
    let current = |listed: &[(String, bool)]| {
        let current: Vec<_> = listed
            .iter()
            .filter(|(_, c)| *c)
            .map(|(h, _)| h.clone())
            .collect();
        current
    };
    let on_phone = sessions(&client, &phone).await;
    assert_ne!(
        current(&listed),
        current(&on_phone),
        "each device is its own current"
    );
    let mut handles: Vec<_> = listed.iter().map(|(h, _)| h.clone()).collect();
    let mut phone_handles: Vec<_> = on_phone.iter().map(|(h, _)| h.clone()).collect();
    handles.sort();
    phone_handles.sort();
    assert_eq!(
        handles, phone_handles,
        "both devices list the same sessions"
    );
    assert_eq!(sessions(&client, &bob).await.len(), 1);
    assert!(sessions(&client, &Cookie::new(COOKIE, "none"))
        .await
        .is_empty());

    // "Sign out other devices" from the laptop: the phone is out on its next request.
    assert_eq!(on(&client, true, "/logout/others", &laptop).await, "1");
    assert_eq!(whoami(&client, &phone).await, "");
    assert_eq!(whoami(&client, &laptop).await, "alice");
    assert_eq!(whoami(&client, &bob).await, "bob");
    assert_eq!(sessions(&client, &laptop).await.len(), 1);

    // One session by its handle, and never another user's.
    let tablet = log_in_as(&client, "alice").await;
    let tablet_handle = sessions(&client, &tablet)
        .await
        .into_iter()
        .find_map(|(handle, current)| current.then_some(handle))
        .expect("the tablet is listed");
    let bob_handle = sessions(&client, &bob).await.remove(0).0;
    let revoke_bob = format!("/revoke/{bob_handle}");
    assert_eq!(on(&client, true, &revoke_bob, &laptop).await, "false");
    assert_eq!(whoami(&client, &bob).await, "bob");
    let revoke_tablet = format!("/revoke/{tablet_handle}");
    assert_eq!(on(&client, true, &revoke_tablet, &laptop).await, "true");
    assert_eq!(whoami(&client, &tablet).await, "");

    // Logging in again moves the session to a new id: the list holds the new one alone.
    let response = client
        .get("/login/alice")
        .cookie(laptop.clone())
        .dispatch()
        .await;
    let again = session_cookie(&response).expect("a new session cookie");
    let listed = sessions(&client, &again).await;
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert!(listed[0].1);

    // Logging out takes the session off the list.
    let response = client
        .post("/forget-me")
        .cookie(again.clone())
        .dispatch()
        .await;
    assert_eq!(response.status().code, 200);
    let other = log_in_as(&client, "alice").await;
    assert_eq!(sessions(&client, &other).await.len(), 1);
}

for_every_store!(sign_out_everywhere);

/// A user keeps at most 100 sessions: a log-in past that revokes the oldest.
#[rocket::async_test]
async fn a_log_in_past_a_hundred_sessions_revokes_the_oldest() {
    let builder = Sessions::builder().store(MemoryStore::default());
    let client = Client::untracked(rocket_with(figment(), Some(builder.build())))
        .await
        .expect("the test app launches");
    let oldest = log_in_as(&client, "alice").await;
    // Log-in times are milliseconds: once the clock has moved on, the oldest is older than
    // all the others.
    let logged_in = std::time::SystemTime::now();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while logged_in.elapsed().unwrap_or_default() < std::time::Duration::from_millis(2) {
        assert!(
            std::time::Instant::now() < deadline,
            "the clock stands still"
        );
        tokio::task::yield_now().await;
    }
    let mut newest = oldest.clone();
    for _ in 1..100 {
        newest = log_in_as(&client, "alice").await;
    }
    assert_eq!(sessions(&client, &newest).await.len(), 100);
    assert_eq!(whoami(&client, &oldest).await, "alice");

    let another = log_in_as(&client, "alice").await;
    assert_eq!(sessions(&client, &another).await.len(), 100);
    assert_eq!(whoami(&client, &oldest).await, "", "the oldest is revoked");
    assert_eq!(whoami(&client, &newest).await, "alice");
}
