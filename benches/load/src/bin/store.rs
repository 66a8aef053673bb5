//! rocket-session-store 0.2.1 (memory store) with the routes of examples/counter.

use std::time::Duration;

use rocket::http::Cookie;
use rocket::serde::json::Json;
use rocket::{get, launch, routes};
use rocket_session_store::memory::MemoryStore;
use rocket_session_store::{Session, SessionResult, SessionStore};
use serde::Serialize;

#[derive(Serialize)]
struct Visits {
    count: u64,
}

#[get("/")]
fn index() -> &'static str {
    "rocket_server_sessions: GET /counter counts your visits.\n"
}

#[get("/counter")]
async fn counter(session: Session<'_, u64>) -> SessionResult<Json<Visits>> {
    let count = session.get().await?.unwrap_or(0) + 1;
    session.set(count).await?;
    Ok(Json(Visits { count }))
}

#[launch]
fn rocket() -> _ {
    let store = SessionStore {
        store: Box::new(MemoryStore::<u64>::default()),
        name: "token".into(),
        duration: Duration::from_secs(24 * 60 * 60),
        cookie_builder: Cookie::build(("", "")).http_only(true).path("/"),
    };
    rocket::build()
        .attach(store.fairing())
        .mount("/", routes![index, counter])
}
