//! The `Sessions` fairing: reads the configuration at ignite, commits sessions on response.

use std::sync::Arc;

use rocket::fairing::{self, Fairing, Info, Kind};
use rocket::figment::{self, Figment};
use rocket::http::Status;
use rocket::log::private as log;
use rocket::request::Request;
use rocket::response::Response;
use rocket::{Build, Orbit, Rocket};

use crate::error::chain;
use crate::metrics::{self, Event, Expiry};
use crate::record::reserved::{self, CREATED, LISTED};
use crate::record::within_timeout;
use crate::state::{
    cookie_lifetime, list_extension, listed_until, outlived, Context, Incoming, Plan, Slot,
};
use crate::store::users::Users;
use crate::store::{CommitOutcome, CreateOutcome, DeleteOutcome, Observed, RequestStore};
use crate::time::unix_millis;
use crate::{
    Changes, Error, Secure, SessionConfig, SessionId, SessionRecord, SessionStore, StoreError,
};

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
        named_database(&mut config, rocket.figment(), &name)?;
    }

    let keys = crate::secret::keys(&config, rocket.figment(), debug)?;
    let (store, name) = match &sessions.store {
        Some(source) => (source.store(rocket).await?, "custom"),
        None => (crate::store::open(&config).await?, config.store.name()),
    };
    crate::metrics::describe();

    Ok(Context::new(config, Observed::new(store, name), keys))
}

/// Fills `config.sql` from `databases.<name>`, the settings of the `rocket_db_pools`
/// database `name`: its `url`, and its `max_connections` unless `sessions.sql` sets them.
fn named_database(config: &mut SessionConfig, figment: &Figment, name: &str) -> Result<(), Error> {
    let database = figment.focus(&format!("databases.{name}"));
    let url: String = database.extract_inner("url").map_err(|_| {
        Error::config(
            "sql.database",
            format!("names `{name}`, but `databases.{name}.url` is not set: name a database of Rocket.toml's `databases` table"),
        )
    })?;
    config.sql.url.get_or_insert(url);
    if let Ok(max) = database.extract_inner::<u32>("max_connections") {
        config.sql.max_connections = max;
    }
    Ok(())
}

/// Carries out a request's commit plan on `store` (the request's: what is left of its
/// store time): the store calls, then the cookie.
async fn commit<'r>(
    ctx: &Context,
    store: &RequestStore,
    plan: Plan,
    req: &'r Request<'_>,
    res: &mut Response<'r>,
) -> Result<(), StoreError> {
    let (keys, cookies) = (&ctx.keys, &ctx.cookies);
    let users = Users::new(store, &keys.users, ctx.config.absolute_timeout);
    match plan {
        Plan::Nothing => {}
        Plan::Pending { id, cookie } => cookies.set(req, res, &keys.pending.sign(&id), cookie),
        Plan::Create {
            id,
            record,
            cookie,
            list,
            replaces,
            left,
            needs_old,
        } => {
            let id = create(ctx, store, id, &record).await?;
            let user = list.as_ref().map(|(user, _)| user.as_str());
            if let Some((user, lifetime)) = &list {
                // The session it moves from is deleted next: it leaves no room to make.
                let replacing = replaces.as_ref().filter(|_| left.as_ref() == Some(user));
                users
                    .add(user, &id, replacing, unix_millis(), *lifetime)
                    .await?;
            }
            if let Some(old) = &replaces {
                // The new session is on the user's list before the old one goes: "sign out
                // everywhere", listing meanwhile, finds one or the other.
                let deleted = store.delete(old).await? == DeleteOutcome::Deleted;
                if needs_old && !deleted {
                    // A log-in carried over without a log-in here lives on only if its
                    // session does: one revoked while this request ran stays revoked.
                    log::debug!("the session ended while the request ran; it is not moved");
                    let _: DeleteOutcome = store.delete(&id).await?;
                    if let Some(user) = user {
                        users.remove(user, &id).await?;
                    }
                    return Ok(());
                }
                if let Some(user) = &left {
                    users.remove(user, old).await?;
                }
            }
            metrics::count(Event::Created, 1);
            cookies.set(req, res, &keys.session.sign(&id), cookie);
        }
        Plan::Update {
            id,
            changes,
            cookie,
            lists_until,
        } => {
            // The list first: a failure then leaves the session as it was, answered 503.
            if let Some((user, lifetime)) = lists_until {
                users.keep_for(&user, &id, lifetime).await?;
            }
            if store.commit(&id, &changes).await? == CommitOutcome::Gone {
                // Destroyed (say, logged out) by another request meanwhile: never resurrect
                // it. Its cookie is that request's to expire, or to replace.
                log::debug!("the session ended while the request ran; its changes are dropped");
            } else {
                metrics::count(Event::Committed, 1);
                if let Some(cookie) = cookie {
                    cookies.set(req, res, &keys.session.sign(&id), cookie);
                }
            }
        }
        Plan::Delete { id, pending, left } => {
            // Only a request whose session was still there sets or expires the cookie: one
            // whose session went meanwhile may be older than the browser's cookie.
            if store.delete(&id).await? == DeleteOutcome::Deleted {
                match pending {
                    Some((id, cookie)) => cookies.set(req, res, &keys.pending.sign(&id), cookie),
                    None => cookies.expire(req, res),
                }
            }
            if let Some(user) = left {
                users.remove(&user, &id).await?;
            }
        }
    }

    Ok(())
}

/// `rolling` for a request that never asked for its session: one store command, whose
/// answer says what the cookie sent again should be. A session the touch finds past its
/// absolute timeout is deleted, and its cookie expired.
async fn touch<'r>(
    ctx: &Context,
    req: &'r Request<'_>,
    res: &mut Response<'r>,
) -> Result<(), StoreError> {
    let Incoming::Session(id) = ctx.incoming(req) else {
        return Ok(());
    };
    let store = &ctx.store.for_request();

    if let Some(record) = store.touch(&id).await? {
        let now = unix_millis();
        if outlived(&record, ctx.config.absolute_timeout, now) {
            metrics::count(Event::Expired(Expiry::AbsoluteTimeout), 1);
            if store.delete(&id).await? == DeleteOutcome::Deleted {
                ctx.cookies.expire(req, res);
            }
            return Ok(());
        }
        let mut changes = Changes::default();
        // A session stored before `absolute_timeout` was set starts its count now, on a
        // route without a guard too.
        if ctx.config.absolute_timeout.is_some() && record.created().is_none() {
            changes.set(CREATED, now.to_string());
        }
        // A logged-in session now living past the time its user's lists are kept until:
        // they are kept longer first.
        if let Some((user, lifetime)) = list_extension(&record, record.ttl(), &ctx.config, now) {
            let users = Users::new(store, &ctx.keys.users, ctx.config.absolute_timeout);
            users.keep_for(&user, &id, lifetime).await?;
            changes.set(LISTED, listed_until(now, lifetime));
        }
        if !changes.is_empty() {
            let _: CommitOutcome = store.commit(&id, &changes).await?;
        }
        let value = ctx.keys.session.sign(&id);
        ctx.cookies
            .set(req, res, &value, cookie_lifetime(&record, &ctx.config, now));
    }

    Ok(())
}

/// Stores a new session, under `id` when given (the id the browser's cookie carried: a
/// pending id, or a gone session's). When the store already holds a session of that id,
/// another request of the same browser stored it meanwhile (a page and its requests sent
/// at once): this one joins it, as it would had it loaded it ([`joining`]), rather than
/// split the browser between two sessions; or, when it may not, moves to a fresh id. A
/// fresh id replaces one the store already has (with 192 random bits, only a broken
/// store makes that happen twice).
async fn create(
    ctx: &Context,
    store: &RequestStore,
    id: Option<SessionId>,
    record: &SessionRecord,
) -> Result<SessionId, StoreError> {
    if let Some(id) = id {
        for _ in 0..3 {
            if store.create(&id, record).await? == CreateOutcome::Created {
                return Ok(id);
            }
            let Some(existing) = store.load(&id).await? else {
                continue; // Gone again (deleted, or expired): create it once more.
            };
            let Some(changes) = joining(ctx, &existing, record) else {
                break;
            };
            if store.commit(&id, &changes).await? == CommitOutcome::Applied {
                return Ok(id);
            }
        }
    }
    let mut id = SessionId::generate();
    for _ in 0..3 {
        if store.create(&id, record).await? == CreateOutcome::Created {
            return Ok(id);
        }

        id = SessionId::generate();
    }

    Err(StoreError::unavailable(
        "the store reported three fresh session ids as taken",
    ))
}

/// How the new session `record` joins `existing`, the session a concurrent request stored
/// under its id, as an update of it would: its entries (not the crate's record of when
/// the session began or how long it asked to live, which stay the existing one's), and,
/// when `existing` held only bookkeeping and `record` holds the application's data, its
/// full lifetime. `None` when it may not join: `existing` is logged in or a user's list
/// (a new session never joins one), past its absolute timeout, or would grow past
/// `max_session_size`.
fn joining(ctx: &Context, existing: &SessionRecord, record: &SessionRecord) -> Option<Changes> {
    let now = unix_millis();
    let timeout = ctx.config.absolute_timeout;
    if existing.is_authenticated() || outlived(existing, timeout, now) {
        return None;
    }
    let mut changes = Changes::default();
    for (key, json) in record.entries() {
        if !reserved::is_metadata(key) {
            changes.set(key, json);
        }
    }
    if !existing.holds_app_data() && record.holds_app_data() {
        changes.reset_ttl(within_timeout(record.ttl(), existing, timeout, now));
    }
    let mut joined = existing.clone();
    joined.apply(&changes);
    let grows_past = joined.size() > ctx.max_size && joined.size() > existing.size();
    (!grows_past).then_some(changes)
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
            kind: Kind::Ignite | Kind::Liftoff | Kind::Response | Kind::Singleton,
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

    async fn on_response<'r>(&self, req: &'r Request<'_>, res: &mut Response<'r>) {
        let Some(ctx) = req.rocket().state::<Arc<Context>>() else {
            return;
        };

        let slot = Slot::of(req);
        let committed = match slot {
            Slot::Ready(live) => commit(ctx, &live.store, live.plan(), req, res).await,
            Slot::Failed(_) => Ok(()),
            Slot::Unused if ctx.config.rolling => touch(ctx, req, res).await,
            Slot::Unused => Ok(()),
        };
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
