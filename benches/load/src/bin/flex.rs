//! rocket_flex_session 0.2 with the routes of examples/counter: `GET /` plain text,
//! `GET /counter` counting per session. `FLEX_REDIS_URL` set: Redis through fred;
//! unset: its memory storage.

use rocket::fairing::AdHoc;
use rocket::serde::json::Json;
use rocket::{get, launch, routes};
use rocket_flex_session::storage::redis::{RedisFormat, RedisFredStorage, RedisValue, SessionRedis};
use rocket_flex_session::{RocketFlexSession, Session, SessionIdentifier};
use serde::{Deserialize, Serialize};

#[derive(Clone, Serialize, Deserialize, Default)]
struct Visits {
    count: u64,
}

impl SessionIdentifier for Visits {
    type Id = String;

    fn identifier(&self) -> Option<String> {
        None
    }
}

impl SessionRedis for Visits {
    const REDIS_FORMAT: RedisFormat = RedisFormat::String;
    type Error = serde_json::Error;

    fn into_redis(self) -> Result<RedisValue, Self::Error> {
        Ok(RedisValue::String(serde_json::to_string(&self)?))
    }

    fn from_redis(value: RedisValue) -> Result<Self, Self::Error> {
        serde_json::from_str(&value.into_string().unwrap_or_default())
    }
}

#[get("/")]
fn index() -> &'static str {
    "rocket_server_sessions: GET /counter counts your visits.\n"
}

#[get("/counter")]
fn counter(mut session: Session<Visits>) -> Json<Visits> {
    let count = session.get().unwrap_or_default().count + 1;
    session.set(Visits { count });
    Json(Visits { count })
}

#[launch]
fn rocket() -> _ {
    let rocket = rocket::build().mount("/", routes![index, counter]);
    match std::env::var("FLEX_REDIS_URL") {
        Err(_) => rocket.attach(RocketFlexSession::<Visits>::default()),
        Ok(url) => rocket.attach(AdHoc::on_ignite("flex redis", |rocket| async move {
            use fred::prelude::*;
            let config = Config::from_url(&url).expect("a Redis URL");
            let pool = Builder::from_config(config).build_pool(4).expect("a Redis pool");
            pool.init().await.expect("Redis answers");
            let storage = RedisFredStorage::builder().pool(pool).build();
            rocket.attach(RocketFlexSession::<Visits>::builder().storage(storage).build())
        })),
    }
}
