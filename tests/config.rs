//! Rocket.toml profiles, ROCKET_SESSIONS, and what stops launch.
// figment::Jail fixes the closure's error type; its size is not ours to choose.
#![allow(clippy::result_large_err)]

mod common;

use common::*;
use rocket::error::ErrorKind;
use rocket::figment::Jail;
use rocket::http::Status;
use rocket::local::blocking::Client;
use rocket::{get, routes};
use rocket_server_sessions::{config::SessionConfig, Error, Session, SessionEntry, Sessions};
use serde::{Deserialize, Serialize};

/// The session cookie header after one counted visit, for the app configured by the
/// Rocket.toml and environment in the jail.
fn cookie_header_from_config() -> String {
    let figment = rocket::Config::figment().merge(("log_level", "off"));
    let client =
        Client::tracked(rocket_with(figment, Some(Sessions::fairing()))).expect("launches");
    let response = client.get("/counter").dispatch();
    assert_eq!(response.status(), rocket::http::Status::Ok);
    response
        .headers()
        .get_one("Set-Cookie")
        .expect("a cookie")
        .to_string()
}

fn launch_error(figment: rocket::figment::Figment, fairing: Option<Sessions>) -> rocket::Error {
    match Client::untracked(rocket_with(figment, fairing)) {
        Ok(_) => panic!("the app launched"),
        Err(e) => e,
    }
}

fn assert_failed_fairing(error: rocket::Error) {
    match error.kind() {
        ErrorKind::FailedFairings(fairings) => {
            assert_eq!(
                fairings.iter().map(|f| f.name).collect::<Vec<_>>(),
                ["Sessions"]
            );
        }
        other => panic!("expected a failed Sessions fairing, got {other:?}"),
    }
}

#[test]
fn rocket_toml_profiles_configure_the_cookie() {
    Jail::expect_with(|jail| {
        jail.create_file(
            "Rocket.toml",
            r#"
            [default.sessions]
            cookie_name = "app.sid"
            max_age = 3600
            same_site = "strict"

            [debug.sessions]
            max_age = 60
            secrets = ["a test secret that is at least 32 bytes long"]
            "#,
        )?;
        let header = cookie_header_from_config();
        assert!(header.starts_with("app.sid="), "{header}");
        assert!(header.contains("Max-Age=60"), "{header}");
        assert!(header.contains("SameSite=Strict"), "{header}");
        Ok(())
    });
}

#[test]
fn the_release_profile_applies_its_own_table() {
    Jail::expect_with(|jail| {
        jail.create_file(
            "Rocket.toml",
            r#"
            [release.sessions]
            secure = true
            "#,
        )?;
        jail.set_env("ROCKET_PROFILE", "release");
        jail.set_env(
            "ROCKET_SECRET_KEY",
            "hPRYyVRiMyxpw5sBB1XeCMN1kFsDCqKvBi2QJxBVHQk=",
        );
        let header = cookie_header_from_config();
        assert!(header.contains("Secure"), "{header}");
        Ok(())
    });
}

#[test]
fn rocket_sessions_in_the_environment_overrides_rocket_toml() {
    Jail::expect_with(|jail| {
        jail.create_file("Rocket.toml", "[default.sessions]\nmax_age = 60\n")?;
        jail.set_env(
            "ROCKET_SESSIONS",
            r#"{max_age=3600,cookie_name="env.sid",memory={max_sessions=5},secrets=["a test secret that is at least 32 bytes long"]}"#,
        );
        let header = cookie_header_from_config();
        assert!(header.starts_with("env.sid="), "{header}");
        assert!(header.contains("Max-Age=3600"), "{header}");
        Ok(())
    });
}

#[test]
fn the_builder_wins_over_rocket_toml() {
    let figment = figment().merge(("sessions.cookie_name", "toml.sid"));
    let fairing = Sessions::builder().cookie_name("code.sid").build();
    let client = Client::tracked(rocket_with(figment, Some(fairing))).unwrap();
    let response = client.get("/counter").dispatch();
    let header = response.headers().get_one("Set-Cookie").unwrap();
    assert!(header.starts_with("code.sid="), "{header}");
}

#[test]
fn bad_keys_and_values_stop_launch() {
    let cases: [(&str, rocket::figment::value::Value); 7] = [
        ("sessions.colour", "blue".into()),
        ("sessions.max_age", "soon".into()),
        ("sessions.max_age", 0.into()),
        ("sessions.same_site", "sometimes".into()),
        ("sessions.store", "postgres".into()),
        ("sessions.memory.max_size", 5.into()),
        ("sessions.secrets", vec!["short"].into()),
    ];
    for (key, value) in cases {
        assert_failed_fairing(launch_error(
            figment().merge((key, value)),
            Some(Sessions::fairing()),
        ));
    }
}

#[test]
fn the_release_profile_refuses_to_launch_without_a_secret() {
    let release = rocket::figment::Figment::from(rocket::Config::release_default())
        .merge(("log_level", "off"));
    assert_failed_fairing(launch_error(release.clone(), Some(Sessions::fairing())));

    let with_secrets = release.clone().merge(("sessions.secrets", [SECRET]));
    Client::untracked(rocket_with(with_secrets, Some(Sessions::fairing())))
        .expect("secrets suffice");
}

/// Set in the child process that [`guessable_secrets_stop_a_release_launch_naming_the_key`]
/// runs: the child launches, the parent reads what it logged.
const LAUNCH_CHILD: &str = "SESSIONS_TEST_GUESSABLE_SECRET_CHILD";

/// Issue 18: a release app launched with `secrets = ["your-secret-key-here-your-secret-key"]`,
/// and with `ROCKET_SECRET_KEY` the bytes 00 01 02 ... 1f. Rocket's logger, which prints
/// the fairing's error, is the first a process sets, so the launches run in a child
/// process of this test binary, alone, and this test reads its output.
#[test]
fn guessable_secrets_stop_a_release_launch_naming_the_key() {
    if std::env::var_os(LAUNCH_CHILD).is_some() {
        let release = || {
            rocket::figment::Figment::from(rocket::Config::release_default())
                .merge(("log_level", "critical"))
        };
        let phrase =
            release().merge(("sessions.secrets", ["your-secret-key-here-your-secret-key"]));
        assert_failed_fairing(launch_error(phrase, Some(Sessions::fairing())));
        let counting: Vec<u8> = (0..32).collect();
        let secret_key = release().merge(("secret_key", counting));
        assert_failed_fairing(launch_error(secret_key, Some(Sessions::fairing())));
        return;
    }

    let child = std::process::Command::new(std::env::current_exe().expect("this test binary"))
        .args([
            "--exact",
            "guessable_secrets_stop_a_release_launch_naming_the_key",
            "--nocapture",
        ])
        .env(LAUNCH_CHILD, "1")
        .env("ROCKET_CLI_COLORS", "false")
        .output()
        .expect("the test binary runs");
    let output = String::from_utf8_lossy(&child.stdout);
    assert!(child.status.success(), "{output}");
    let errors: Vec<&str> = output
        .lines()
        .filter(|line| line.contains("invalid `sessions."))
        .collect();
    assert_eq!(errors.len(), 2, "{output}");
    assert!(errors[0].contains("`sessions.secrets[0]`"), "{}", errors[0]);
    assert!(errors[1].contains("`secret_key`"), "{}", errors[1]);
    for error in errors {
        assert!(error.contains("guessable"), "{error}");
        assert!(error.contains("openssl rand -base64 32"), "{error}");
    }
}

#[test]
fn a_session_guard_without_the_fairing_stops_launch() {
    assert!(matches!(
        launch_error(figment(), None).kind(),
        ErrorKind::SentinelAborts(_)
    ));
}

#[derive(Serialize, Deserialize)]
struct Reserved;

impl SessionEntry for Reserved {
    const KEY: &'static str = "$user";
}

#[get("/reserved")]
fn reserved(_session: Session<Reserved>) {}

#[test]
fn an_entry_key_in_the_reserved_namespace_stops_launch() {
    let rocket = rocket::custom(figment())
        .attach(Sessions::fairing())
        .mount("/", routes![reserved]);
    match Client::untracked(rocket) {
        Err(e) => assert!(matches!(e.kind(), ErrorKind::SentinelAborts(_))),
        Ok(_) => panic!("launched with a reserved key"),
    }
}

/// A guard of the application's own that asks for a `Session` of a reserved key (no
/// Sentinel sees it) gets an error, and writes nothing.
struct Sneaky;

#[rocket::async_trait]
impl<'r> rocket::request::FromRequest<'r> for Sneaky {
    type Error = Error;

    async fn from_request(req: &'r rocket::Request<'_>) -> rocket::request::Outcome<Self, Error> {
        match req.guard::<Session<Reserved>>().await {
            rocket::request::Outcome::Success(mut session) => {
                let _ = session.set(Reserved);
                rocket::request::Outcome::Success(Sneaky)
            }
            rocket::request::Outcome::Error(e) => rocket::request::Outcome::Error(e),
            rocket::request::Outcome::Forward(s) => rocket::request::Outcome::Forward(s),
        }
    }
}

#[get("/sneaky")]
fn sneaky(_guard: Sneaky) {}

#[test]
fn a_reserved_key_asked_for_at_runtime_is_refused() {
    let rocket = rocket_with(figment(), Some(Sessions::fairing())).mount("/", routes![sneaky]);
    let client = Client::tracked(rocket).unwrap();
    let response = client.get("/sneaky").dispatch();
    assert_eq!(response.status(), rocket::http::Status::InternalServerError);
    assert!(
        response.headers().get_one("Set-Cookie").is_none(),
        "nothing is stored"
    );
}

#[test]
fn max_session_size_reads_sizes_as_rocket_limits_do() {
    for (value, bytes) in [
        (rocket::figment::value::Value::from("1 KiB"), 1024),
        ("2MB".into(), 2_000_000),
        (4096.into(), 4096),
    ] {
        let config: SessionConfig = figment()
            .merge(("sessions.max_session_size", value))
            .focus("sessions")
            .extract()
            .unwrap();
        assert_eq!(config.max_session_size.as_u64(), bytes);
    }
    assert_eq!(
        SessionConfig::default().max_session_size.as_u64(),
        64 * 1024
    );
}

/// The shape issue: a store made at ignite from what another fairing set up (as a store on
/// the app's `rocket_db_pools` pool would be).
/// Sessions in the memory store another fairing manages.
fn on_the_shared_store() -> Sessions {
    Sessions::builder()
        .store_with(|rocket, _config| {
            let store = rocket
                .state::<rocket_server_sessions::store::MemoryStore>()
                .cloned();
            async move { store.ok_or("the shared store is not managed") }
        })
        .build()
}

/// The shape issue: `store_with` receives the configuration the fairing runs with, the
/// builder's settings on top of Rocket.toml's, not what a re-read of the figment gives.
#[test]
fn a_store_built_at_ignite_sees_the_resolved_config() {
    let seen = std::sync::Arc::new(std::sync::Mutex::new(None));
    let sessions = Sessions::builder()
        .max_age(std::time::Duration::from_secs(77))
        .store_with({
            let seen = seen.clone();
            move |_rocket, config| {
                *seen.lock().unwrap() = Some(config.clone());
                async { Ok::<_, &str>(rocket_server_sessions::store::MemoryStore::default()) }
            }
        })
        .build();
    let app = rocket_with(figment().merge(("sessions.max_age", 5)), None).attach(sessions);
    let client = Client::tracked(app).expect("launches");
    assert_eq!(client.get("/counter").dispatch().status(), Status::Ok);
    let config: SessionConfig = seen.lock().unwrap().take().expect("store_with ran");
    assert_eq!(config.max_age, std::time::Duration::from_secs(77));
}

/// The ease issue: `SessionsBuilder::max_sessions` caps whichever store is configured, not
/// the memory store alone.
#[test]
fn the_builders_max_sessions_caps_every_store() {
    let seen = std::sync::Arc::new(std::sync::Mutex::new(None));
    let sessions = Sessions::builder()
        .max_sessions(7)
        .store_with({
            let seen = seen.clone();
            move |_rocket, config| {
                *seen.lock().unwrap() = Some(config.clone());
                async { Ok::<_, &str>(rocket_server_sessions::store::MemoryStore::default()) }
            }
        })
        .build();
    let app = rocket_with(figment(), None).attach(sessions);
    let client = Client::tracked(app).expect("launches");
    assert_eq!(client.get("/counter").dispatch().status(), Status::Ok);
    let config: SessionConfig = seen.lock().unwrap().take().expect("store_with ran");
    let caps = [
        config.memory.max_sessions,
        config.redis.max_sessions,
        config.file.max_sessions,
        config.sql.max_sessions,
    ];
    assert_eq!(caps, [7; 4]);
}

#[test]
fn a_store_can_be_built_at_ignite_from_another_fairings_state() {
    let shared = rocket::fairing::AdHoc::on_ignite("Shared store", |rocket| async {
        rocket.manage(rocket_server_sessions::store::MemoryStore::default())
    });
    let sessions = on_the_shared_store();
    let app = rocket_with(figment(), None).attach(shared).attach(sessions);
    let client = Client::tracked(app).expect("launches");
    assert_eq!(
        client.get("/counter").dispatch().into_string().unwrap(),
        "1"
    );
    let store = client
        .rocket()
        .state::<rocket_server_sessions::store::MemoryStore>()
        .unwrap();
    assert_eq!(store.len(), 1, "the session is in the shared store");

    // Without the fairing it needs: launch stops, with the builder's error.
    assert_failed_fairing(launch_error(figment(), Some(on_the_shared_store())));
}
