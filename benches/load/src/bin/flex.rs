//! rocket_flex_session 0.2 with the routes of examples/counter: `GET /` plain text,
//! `GET /counter` counting per session. `FLEX_REDIS_URL` set: Redis through fred;
//! `FLEX_POSTGRES_URL` set: its sqlx PostgreSQL storage, in the table `flex_sessions`
//! (which it expects to exist); neither: its memory storage.

use rocket::fairing::AdHoc;
use rocket::serde::json::Json;
use rocket::{get, launch, routes};
use rocket_flex_session::storage::redis::{
    RedisFormat, RedisFredStorage, RedisValue, SessionRedis,
};
use rocket_flex_session::storage::sqlx::{SessionSqlx, SqlxPostgresStorage};
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

impl SessionSqlx<sqlx::Postgres> for Visits {
    type Error = serde_json::Error;
    type Data = String;

    fn into_sql(self) -> Result<String, Self::Error> {
        serde_json::to_string(&self)
    }

    fn from_sql(value: String) -> Result<Self, Self::Error> {
        serde_json::from_str(&value)
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
    if let Ok(url) = std::env::var("FLEX_POSTGRES_URL") {
        rocket.attach(AdHoc::on_ignite("flex postgres", |rocket| async move {
            // sqlx's default pool: 10 connections, as this crate's `sql.max_connections`.
            let pool = sqlx::PgPool::connect(&url)
                .await
                .expect("PostgreSQL answers");
            let storage = SqlxPostgresStorage::builder()
                .pool(pool)
                .table_name("flex_sessions")
                .build();
            rocket.attach(
                RocketFlexSession::<Visits>::builder()
                    .storage(storage)
                    .build(),
            )
        }))
    } else if let Ok(url) = std::env::var("FLEX_REDIS_URL") {
        rocket.attach(AdHoc::on_ignite("flex redis", |rocket| async move {
            use fred::prelude::*;
            let config = Config::from_url(&url).expect("a Redis URL");
            let pool = Builder::from_config(config)
                .build_pool(4)
                .expect("a Redis pool");
            pool.init().await.expect("Redis answers");
            let storage = RedisFredStorage::builder().pool(pool).build();
            rocket.attach(
                RocketFlexSession::<Visits>::builder()
                    .storage(storage)
                    .build(),
            )
        }))
    } else {
        rocket.attach(RocketFlexSession::<Visits>::default())
    }
}
