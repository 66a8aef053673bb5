//! Bare Rocket: `GET /` plain text, `GET /counter` counting in a private (encrypted) cookie.

use rocket::http::{Cookie, CookieJar};
use rocket::serde::json::Json;
use rocket::{get, launch, routes};
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
fn counter(jar: &CookieJar<'_>) -> Json<Visits> {
    let count = jar
        .get_private("count")
        .and_then(|c| c.value().parse().ok())
        .unwrap_or(0)
        + 1;
    jar.add_private(Cookie::new("count", count.to_string()));
    Json(Visits { count })
}

/// `/counter`'s response without any session or cookie work: what Rocket alone costs.
#[get("/json")]
fn json() -> Json<Visits> {
    Json(Visits { count: 1 })
}

#[launch]
fn rocket() -> _ {
    rocket::build().mount("/", routes![index, counter, json])
}
