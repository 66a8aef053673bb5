//! `rediss://` URLs: sessions over TLS to a password-protected server. Its own test binary,
//! because it points the process's trusted roots (SSL_CERT_FILE) at the test CA.
#![cfg(feature = "redis-tls")]

mod common;

use common::*;
use rocket::local::asynchronous::Client;
use rocket_server_sessions::Sessions;

#[rocket::async_test]
async fn sessions_work_over_tls_with_a_password() {
    let Some(url) = service_env("SESSIONS_REDIS_TLS_URL") else {
        return;
    };
    let Some(ca) = service_env("SESSIONS_REDIS_TLS_CA") else {
        return;
    };
    // The only test in this binary: nothing else reads the environment meanwhile.
    std::env::set_var("SSL_CERT_FILE", ca);

    let figment = figment()
        .merge(("sessions.store", "redis"))
        .merge(("sessions.redis.url", &url))
        .merge(("sessions.redis.prefix", common::redis::unique_prefix()))
        .merge(("sessions.redis.timeout", 2.0));
    let client = Client::tracked(rocket_with(figment.clone(), Some(Sessions::fairing())))
        .await
        .expect("connects over TLS");
    assert_eq!(get_ok(&client, "/counter").await, "1");
    assert_eq!(get_ok(&client, "/counter").await, "2");

    // The same server over plain text, or with a wrong password, is refused at launch.
    for bad in [
        url.replace("rediss://", "redis://"),
        url.replace("test-password", "nope"),
    ] {
        let figment = figment.clone().merge(("sessions.redis.url", bad.clone()));
        match Client::untracked(rocket_with(figment, Some(Sessions::fairing()))).await {
            Ok(_) => panic!("{bad} launched"),
            Err(e) => assert!(matches!(
                e.kind(),
                rocket::error::ErrorKind::FailedFairings(_)
            )),
        }
    }
}
