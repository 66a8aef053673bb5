//! Counts visits per session on the embedded memory store.
//!
//! Run it from the repository root (it reads ./Rocket.toml):
//!
//! ```sh
//! cargo run --example counter
//! ```
//!
//! then open <http://127.0.0.1:8000/counter> and reload. `GET /` takes no session guard:
//! it never creates a session and costs no store access.

use rocket::serde::json::Json;
use rocket::{get, launch, routes, Build, Rocket};
use rocket_server_sessions::{Error, Session, SessionEntry, Sessions};
use serde::{Deserialize, Serialize};

/// The visit count, kept in the session under the key "visits".
#[derive(Serialize, Deserialize, Default)]
struct Visits {
    count: u64,
}

impl SessionEntry for Visits {
    const KEY: &'static str = "visits";
}

#[get("/")]
fn index() -> &'static str {
    "rocket_server_sessions: GET /counter counts your visits.\n"
}

#[get("/counter")]
fn counter(mut visits: Session<Visits>) -> Result<Json<Visits>, Error> {
    let count = visits.update(|v| {
        v.count += 1;
        v.count
    })?;
    Ok(Json(Visits { count }))
}

/// The app, on the configuration Rocket reads (Rocket.toml, ROCKET_* variables).
pub fn app() -> Rocket<Build> {
    app_with(Sessions::fairing())
}

/// The app with `sessions` (a custom store, say): the benchmarks use it.
pub fn app_with(sessions: Sessions) -> Rocket<Build> {
    rocket::build()
        .attach(sessions)
        .mount("/", routes![index, counter])
}

#[launch]
fn rocket() -> _ {
    app()
}
