//! The `Sessions` fairing: reads the configuration at ignite, commits sessions on response.
//! It decides nothing of the commit: it feeds the commit machine (`state::Machine`) and
//! carries out its steps (ARCHITECTURE.md, "A request's path").

use std::sync::Arc;

use rocket::fairing::{self, Fairing, Info, Kind};
use rocket::figment::{self, Figment};
use rocket::http::Status;
use rocket::log::private as log;
use rocket::request::Request;
use rocket::response::Response;
use rocket::{Build, Orbit, Rocket};

use crate::config::{Secure, SessionConfig};
use crate::error::chain;
use crate::error::{Error, StoreError};
use crate::state::{perform, Answer, Context, Machine, Slot, Step};
use crate::store::{Observed, RequestStore, Sealer};
use crate::time::unix_millis;

/// The sessions fairing: attach it once, and `Session<T>` guards work in every route.
///
/// At ignite it reads [`SessionConfig`] from the `sessions` table of Rocket.toml (and
/// `ROCKET_SESSIONS`), applies the builder's settings on top, checks them, and opens the
/// store; a bad value stops launch with a message naming the key. On each response it
/// commits what the request's guards changed: a new session is stored and its cookie set,
/// changed entries are written, a destroyed session is deleted and its cookie expired.
/// A request whose handler takes no session guard costs no store access.
///
/// When a commit fails the response becomes an empty `503 Service Unavailable`, so no one
/// is told a change was saved when it was not. A route without a session guard never
/// fails with the store: with `rolling`, a failed refresh is only logged.
///
/// # Example
///
/// ```no_run
/// use rocket::{get, launch, routes};
/// use rocket_server_sessions::Sessions;
///
/// #[get("/")]
/// fn index() -> &'static str { "hello" }
///
/// #[launch]
/// fn rocket() -> _ {
///     rocket::build()
///         .attach(Sessions::fairing())
///         .mount("/", routes![index])
/// }
/// ```
pub struct Sessions {
    overrides: Figment,
    store: Option<StoreSource>,
}

mod builder;

pub use builder::SessionsBuilder;
use builder::StoreSource;

/// Builds what the guards and the response hook read, from the configuration Rocket
/// reads and the builder's settings.
async fn context(rocket: &Rocket<Build>, sessions: &Sessions) -> Result<Context, Error> {
    let figment = rocket
        .figment()
        .focus("sessions")
        .merge(sessions.overrides.clone())
        // Merging a figment also merges its profile selection: restore Rocket's.
        .select(rocket.figment().profile().clone());
    let mut config: SessionConfig = figment.extract().map_err(config_error)?;
    let debug = rocket.figment().profile() == rocket::Config::DEBUG_PROFILE;
    // `Secure` unless asked otherwise, except in debug, which serves plain http.
    if debug && !figment.contains("secure") {
        config.secure = Secure::Auto;
    }
    config.validate()?;
    if let Some(name) = config.sql.database.clone() {
        let own_max = figment.contains("sql.max_connections");
        named_database(&mut config, rocket.figment(), &name, own_max)?;
    }

    let keys = crate::state::keys(&config, rocket.figment(), debug)?;
    let (store, name) = match &sessions.store {
        Some(source) => (source.store(rocket, &config).await?, "custom"),
        None => (crate::store::open(&config).await?, config.store.name()),
    };
    let sealer = Sealer::new(keys.data.clone(), config.accept_unsealed);
    crate::metrics::describe();

    Ok(Context::new(
        config,
        Observed::new(store, name, sealer),
        keys,
    ))
}

/// Fills `config.sql` from `databases.<name>`, the settings of the `rocket_db_pools`
/// database `name`: its `url`, and its `max_connections` unless `sessions.sql` sets its
/// own (`own_max`).
fn named_database(
    config: &mut SessionConfig,
    figment: &Figment,
    name: &str,
    own_max: bool,
) -> Result<(), Error> {
    let database = figment.focus(&format!("databases.{name}"));
    let url: String = database.extract_inner("url").map_err(|_| {
        Error::config(
            "sql.database",
            format!("names `{name}`, but `databases.{name}.url` is not set: name a database of Rocket.toml's `databases` table"),
        )
    })?;
    config.sql.url.get_or_insert(url);
    if let (false, Ok(max)) = (own_max, database.extract_inner::<u32>("max_connections")) {
        config.sql.max_connections = max;
    }
    Ok(())
}

/// Carries out the commit `machine` asks for, on `store` (the request's: what is left of
/// its store time): each of its calls, then the cookie. A store error ends it.
async fn carry_out<'r>(
    ctx: &Context,
    store: &RequestStore,
    // Borrowed: a machine moved into this future would take its place twice.
    machine: &mut Machine<'_>,
    req: &'r Request<'_>,
    res: &mut Response<'r>,
) -> Result<(), StoreError> {
    let mut last = Answer::Start;
    loop {
        // Matched, not `?`-ed: a temporary of `?` would stay in this future across the call.
        let step = match machine.next(last) {
            Ok(Some(step)) => step,
            Ok(None) => return Ok(()),
            Err(e) => return Err(e),
        };
        last = match step {
            Step::Call(call) => perform(ctx, store, call).await?,
            Step::Note(note) => {
                note.record();
                Answer::Done
            }
            Step::Cookie(cookie) => {
                ctx.cookies.write(&ctx.keys, cookie, req, res);
                Answer::Done
            }
        };
    }
}

/// Names the key a figment error is about, relative to `sessions`.
fn config_error(error: figment::Error) -> Error {
    Error::config(&error.path.join("."), error.kind.to_string())
}

#[rocket::async_trait]
impl Fairing for Sessions {
    fn info(&self) -> Info {
        Info {
            name: "Sessions",
            kind: Kind::Ignite | Kind::Liftoff | Kind::Response | Kind::Shutdown | Kind::Singleton,
        }
    }

    async fn on_ignite(&self, rocket: Rocket<Build>) -> fairing::Result {
        match context(&rocket, self).await {
            Ok(ctx) => {
                let login = ctx.config.login_path.as_deref();
                let catcher = login.and_then(|path| crate::login::catcher(path, rocket.catchers()));
                if login.is_some() && catcher.is_none() {
                    log::info!("sessions: the application's 401 catcher answers strangers; no login redirect");
                }
                let catchers: Vec<_> = catcher.into_iter().collect();
                Ok(rocket.manage(Arc::new(ctx)).register("/", catchers))
            }
            Err(e) => {
                log::error!("{}", chain(&e));
                Err(rocket)
            }
        }
    }

    async fn on_liftoff(&self, rocket: &Rocket<Orbit>) {
        if let Some(ctx) = rocket.state::<Arc<Context>>() {
            let config = &ctx.config;
            log::info!(
                "sessions: cookie `{}`, max_age {}s, rolling {}, secure {:?}",
                config.cookie_name,
                config.max_age.as_secs_f64(),
                config.rolling,
                config.secure,
            );
        }
    }

    /// Stops the store's sweeps and closes its connections.
    async fn on_shutdown(&self, rocket: &Rocket<Orbit>) {
        if let Some(ctx) = rocket.state::<Arc<Context>>() {
            ctx.store.shutdown().await;
        }
    }

    async fn on_response<'r>(&self, req: &'r Request<'_>, res: &mut Response<'r>) {
        let Some(ctx) = req.rocket().state::<Arc<Context>>() else {
            return;
        };

        #[cfg(feature = "testing")]
        let signing_in = crate::state::sign_in(req).await;

        let slot = Slot::of(req);
        let committed = match slot {
            // The machine (and a touch's store) is boxed: held in this future, it would
            // take it past the allocator's fast sizes (the test below).
            Slot::Ready(live) => {
                let mut machine = Box::new(live.commit());
                carry_out(ctx, &live.store, &mut machine, req, res).await
            }
            Slot::Failed(_) => Ok(()),
            Slot::Unused => {
                let touch = Machine::unused(&ctx.config, unix_millis(), || {
                    ctx.cookies_of(req).session_ids()
                });
                match touch.map(|touch| Box::new((touch, ctx.store.for_request()))) {
                    Some(mut touch) => {
                        let (touch, store) = &mut *touch;
                        carry_out(ctx, store, touch, req, res).await
                    }
                    None => Ok(()),
                }
            }
        };
        #[cfg(feature = "testing")]
        crate::state::signed_in(signing_in, ctx, &committed);
        // A route that never asked for its session does not fail with the store: only its
        // `rolling` refresh is lost, and the outage is logged.
        if committed.is_err() && !matches!(slot, Slot::Unused) {
            // Nobody is told a change was saved when it was not: the handler's answer,
            // cookies and redirect go; headers other fairings set (Shield's) stay, as they
            // do for the login redirect.
            res.set_status(Status::ServiceUnavailable);
            for header in ["Content-Type", "Set-Cookie", "Location"] {
                res.remove_header(header);
            }
            res.set_sized_body(0, std::io::Cursor::new(""));
        }
    }
}

/// Never prints the settings made in code: they may hold secrets.
impl std::fmt::Debug for Sessions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sessions")
            .field("custom_store", &self.store.is_some())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rocket::figment::value::Value;

    fn problem(figment: Figment) -> Option<String> {
        let rocket = rocket::custom(figment);
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        match runtime.block_on(context(&rocket, &Sessions::fairing())) {
            Ok(_) => None,
            Err(Error::Config { key, .. }) => Some(key),
            Err(other) => panic!("not a config error: {other}"),
        }
    }

    fn debug() -> Figment {
        Figment::from(rocket::Config::debug_default())
    }

    #[test]
    fn a_requests_futures_stay_within_the_allocators_fast_sizes() {
        use rocket::request::FromRequest;
        use std::mem::{size_of, size_of_val};

        // glibc serves blocks of up to 1032 bytes from a per-thread cache; a block past
        // that cost about 300 instructions more a request to allocate and free
        // (BENCHMARKS.md, the commit machine's cost). Rocket boxes a guard's future and a
        // fairing's; we box a session's load and a touch's machine and store. These are
        // sizes of this compiler's layout: a change that grows one past the cache, or a
        // compiler that lays it out larger, shows here.
        let rocket = rocket::custom(debug()).attach(Sessions::fairing());
        let client = rocket::local::blocking::Client::untracked(rocket).unwrap();
        let ctx = client.rocket().state::<Arc<Context>>().unwrap();
        let req = client.get("/");
        let (fairing, mut res) = (Sessions::fairing(), Response::new());
        let guard = crate::SessionHandle::from_request(req.inner());
        let sizes = [
            ("guard", size_of_val(&*guard)),
            ("load", size_of_val(&Slot::fill(req.inner(), ctx))),
            ("touch", size_of::<(Machine<'_>, RequestStore)>()),
            (
                "commit",
                size_of_val(&*fairing.on_response(req.inner(), &mut res)),
            ),
        ];
        for (future, size) in sizes {
            assert!(size <= 1024, "{future}: {size} bytes");
        }
    }

    #[test]
    fn config_errors_name_the_key() {
        let cases: Vec<(&str, Value, &str)> = vec![
            ("sessions.colour", "blue".into(), "colour"),
            ("sessions.max_age", "soon".into(), "max_age"),
            ("sessions.max_age", (-5).into(), "max_age"),
            (
                "sessions.absolute_timeout",
                "soon".into(),
                "absolute_timeout",
            ),
            ("sessions.absolute_timeout", 0.into(), "absolute_timeout"),
            ("sessions.partitioned", "yes".into(), "partitioned"),
            ("sessions.secure", "sometimes".into(), "secure"),
            ("sessions.same_site", "sometimes".into(), "same_site"),
            ("sessions.store", "cassandra".into(), "store"),
            // Without its feature a SQL store is unknown; with it, it needs a URL.
            #[cfg(not(feature = "postgres"))]
            ("sessions.store", "postgres".into(), "store"),
            #[cfg(feature = "postgres")]
            ("sessions.store", "postgres".into(), "sql.url"),
            ("sessions.memory.max_size", 5.into(), "memory.max_size"),
            (
                "sessions.memory.max_sessions",
                0.into(),
                "memory.max_sessions",
            ),
            ("sessions.secrets", vec!["short"].into(), "secrets"),
            ("secret_key", "not a key".into(), "secrets"),
        ];

        for (key, value, named) in cases {
            assert_eq!(
                problem(debug().merge((key, value))).as_deref(),
                Some(named),
                "{key}"
            );
        }
    }

    #[test]
    fn a_named_database_gives_its_url_and_pool_size_unless_sessions_sets_its_own() {
        let root = Figment::from(("databases.app.url", "sqlite://app.db"))
            .merge(("databases.app.max_connections", 3));
        let named = |own: Option<u32>| {
            let mut config = SessionConfig::default();
            if let Some(max) = own {
                config.sql.max_connections = max;
            }
            named_database(&mut config, &root, "app", own.is_some()).unwrap();
            (config.sql.url.unwrap(), config.sql.max_connections)
        };
        assert_eq!(named(None), ("sqlite://app.db".to_string(), 3));
        assert_eq!(named(Some(7)), ("sqlite://app.db".to_string(), 7));

        let mut config = SessionConfig::default();
        let missing = named_database(&mut config, &root, "other", false);
        assert!(matches!(missing, Err(Error::Config { key, .. }) if key == "sql.database"));
    }

    #[test]
    fn release_needs_a_real_secret() {
        let release = Figment::from(rocket::Config::release_default());
        assert_eq!(problem(release.clone()).as_deref(), Some("secrets"));

        let key = "hPRYyVRiMyxpw5sBB1XeCMN1kFsDCqKvBi2QJxBVHQk=";
        assert_eq!(problem(release.clone().merge(("secret_key", key))), None);
        let zero = [0u8; 32];
        assert_eq!(
            problem(release.clone().merge(("secret_key", zero))).as_deref(),
            Some("secrets")
        );
        let secrets = ["a test secret that is at least 32 bytes long"];
        assert_eq!(
            problem(release.clone().merge(("sessions.secrets", secrets))),
            None
        );

        // Issue 18: guessable secrets launched in release.
        let phrase = [key, "your-secret-key-here-your-secret-key"];
        assert_eq!(
            problem(release.clone().merge(("sessions.secrets", phrase))).as_deref(),
            Some("secrets[1]")
        );
        let counting: Vec<u8> = (0..32).collect();
        assert_eq!(
            problem(release.merge(("secret_key", counting.clone()))).as_deref(),
            Some("secrets")
        );
        // Debug only warns.
        assert_eq!(problem(debug().merge(("secret_key", counting))), None);
    }

    #[test]
    fn debug_without_a_secret_launches_with_a_random_key() {
        assert_eq!(problem(debug()), None);
    }
}
