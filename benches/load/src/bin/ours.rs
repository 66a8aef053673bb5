//! examples/counter itself, built here so that every server in the benchmark runs on the
//! same build of Rocket (this crate's features), and differs only in its session layer.

#[allow(dead_code)]
#[path = "../../../../examples/counter.rs"]
mod counter;

#[rocket::main]
async fn main() -> Result<(), rocket::Error> {
    counter::app().launch().await.map(drop)
}
