//! The "on the app's own pool": a store on the pool `rocket_db_pools` made for the
//! application, built at ignite with `store_with`, so that one pool serves both.
#![cfg(feature = "sqlite")]

#[path = "../../../tests/common/mod.rs"]
mod common;

use common::*;
use rocket::local::asynchronous::Client;
use rocket_db_pools::Database;
use rocket_server_sessions::{store::SqliteStore, Sessions};

/// The application's own database.
#[derive(Database)]
#[database("app")]
struct App(sqlx::SqlitePool);

#[rocket::async_test]
async fn a_store_on_the_apps_rocket_db_pools_pool() {
    let url = sql::sqlite_url();
    let sessions = Sessions::builder()
        .store_with(|rocket, config| {
            let pool = App::fetch(rocket).map(|db| (**db).clone());
            let config = config.sql.clone(); // resolved: Rocket.toml, builder, validated
            async move {
                let pool = pool.ok_or("attach App::init() before the sessions")?;
                let store = SqliteStore::with_pool(pool, &config).await?;
                Ok::<_, Box<dyn std::error::Error + Send + Sync>>(store)
            }
        })
        .build();
    let rocket = rocket_with(figment().merge(("databases.app.url", &url)), None)
        .attach(App::init())
        .attach(sessions);
    let client = Client::untracked(rocket).await.expect("the app launches");
    get_ok(&client, "/counter").await;

    // The session is in the application's database, through the application's pool.
    let app = App::fetch(client.rocket()).unwrap();
    let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM sessions")
        .fetch_one(&**app)
        .await
        .unwrap();
    assert_eq!(rows, 1);
}
