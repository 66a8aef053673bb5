//! examples/counter itself, on this crate's `sqlite` feature: `ROCKET_SESSIONS` names the
//! store.

#[allow(dead_code)]
#[path = "../../../examples/counter.rs"]
mod counter;

#[rocket::main]
async fn main() -> Result<(), rocket::Error> {
    counter::app().launch().await.map(drop)
}
