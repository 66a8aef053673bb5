//! The commit plan: what the fairing does with a request's session after the handler,
//! decided by one pure function of the request's [`State`].

use std::time::Duration;

use super::State;
use crate::config::SessionConfig;
use crate::ended::{Cause, Stamp};
use crate::id::SessionId;
use crate::record::{remaining, reserved, within_timeout};
use crate::record::{Changes, SessionRecord};
use crate::time::{after, millis, MAX_LIFETIME};

/// How long a session that holds nothing but the crate's bookkeeping (a flash message)
/// lives in the store, at most: long enough for the next page to show the message, short
/// enough that a flood of visitors who store nothing of the application's costs almost
/// nothing. Its cookie keeps the full lifetime, so that a form's CSRF token, bound to the
/// id the cookie carries, outlives it.
pub(crate) const BOOKKEEPING_LIFETIME: Duration = Duration::from_secs(5 * 60);

/// A cookie's lifetime: `Some(max_age)` persists that long, `None` ends with the browser.
pub(crate) type Lifetime = Option<Duration>;

/// What the fairing does with a request's session after the handler.
#[derive(Debug, PartialEq)]
pub(crate) enum Plan {
    /// Nothing to store, no cookie to send.
    Nothing,
    /// Nothing to store, but a CSRF token is bound to the id a new session would have:
    /// send that id as a pending cookie, so the token verifies next time.
    Pending { id: SessionId, cookie: Lifetime },
    /// Store a new session (under `id`, else a fresh one), and when a user is logged in
    /// to it (`list`: the user, and how long their list is then kept from now), add it to
    /// that user's list; then delete `replaces`, the stored session it took over from (a
    /// regenerate, or a destroy followed by a write), take it off the list of `left`, the
    /// user logged in to it, and set the new session's cookie.
    Create {
        id: Option<SessionId>,
        record: SessionRecord,
        cookie: Lifetime,
        /// The stamp its cookie carries, when someone is signed in to it.
        stamp: Option<Stamp>,
        list: Option<(String, Duration)>,
        replaces: Option<SessionId>,
        left: Option<String>,
        /// The session carries `left`'s log-in over from `replaces` without a log-in
        /// here: it lives on only if `replaces` was still there to delete (not revoked
        /// meanwhile); else it is deleted again, and no cookie is sent.
        needs_old: bool,
    },
    /// Write `changes` to the stored session `id` (when `lists_until` is set, a logged-in
    /// session's lifetime was reset past the time its user's lists are kept until: first
    /// keep them that long from now); when they apply and `cookie` is set (the lifetime
    /// was reset), send the cookie again.
    Update {
        id: SessionId,
        changes: Changes,
        cookie: Option<Lifetime>,
        /// The stamp the cookie carries, when it is sent and someone is signed in.
        stamp: Option<Stamp>,
        lists_until: Option<(String, Duration)>,
    },
    /// Delete the stored session `id` (destroyed, or unreadable), and take it off the list
    /// of `left`, the user logged in to it; then send `pending` as a pending cookie, or
    /// else expire the cookie, but only if the store still held the session: one already
    /// gone may be older than the cookie the browser holds now.
    Delete {
        id: SessionId,
        pending: Option<(SessionId, Lifetime)>,
        left: Option<String>,
    },
}

impl State {
    /// The plan for this request's session, under `config`'s rules.
    pub(crate) fn plan(self, config: &SessionConfig) -> Plan {
        if let Some(id) = self.stored.clone() {
            return self.update(id, config);
        }

        let State {
            incoming,
            discard,
            discard_user: left,
            new_id,
            mut record,
            bound,
            now,
            logs_in,
            ..
        } = self;
        let own = has_own_lifetime(&record);
        let keep = record.holds_anything() || (config.save_uninitialized && discard.is_none());
        if keep {
            // A new session starts with the configured lifetime, unless it has its own
            // (one carried over by a regenerate keeps it); bookkeeping alone, minutes.
            match own_lifetime(&record) {
                Some(asked) => record.set_ttl(asked),
                None if own => {}
                None => {
                    record.set_ttl(lifetime(&record, config));
                    if record.is_bookkeeping_only() {
                        record.set_ttl(config.max_age.min(BOOKKEEPING_LIFETIME));
                    }
                }
            }
            // The absolute timeout counts from the session's creation or its last log-in:
            // a regenerate without a log-in carries the count over.
            if let Some(timeout) = config.absolute_timeout {
                if logs_in || record.created().is_none() {
                    record.insert(reserved::CREATED, now.to_string());
                }
                let left = remaining(&record, Some(timeout), now).unwrap_or(timeout);
                record.set_ttl(record.ttl().min(left).max(Duration::from_millis(1)));
            }
            if config.touch_after.is_some() {
                record.insert(reserved::TOUCHED, now.to_string());
            }
            let needs_old = left.is_some() && !logs_in;
            let list = record.get(reserved::USER).map(|user| {
                let lifetime = list_lifetime(&record, record.ttl(), config, now);
                (user.to_string(), lifetime)
            });
            if let Some((_, lifetime)) = &list {
                record.insert(reserved::LISTED, listed_until(now, *lifetime));
            }
            return Plan::Create {
                id: new_id,
                cookie: cookie_lifetime(&record, config, now),
                stamp: stamp(&record, record.ttl(), config, now),
                list,
                record,
                replaces: discard,
                left,
                needs_old,
            };
        }

        // A token is bound to the new id: the browser needs it, unless it sent it (as a
        // pending id, or the id of a session that is gone).
        let pending = new_id
            .filter(|id| bound && incoming.id() != Some(id))
            .map(|id| {
                (
                    id,
                    cookie_lifetime(&SessionRecord::new(config.max_age), config, now),
                )
            });
        match (discard, pending) {
            (Some(id), pending) => Plan::Delete { id, pending, left },
            (None, Some((id, cookie))) => Plan::Pending { id, cookie },
            (None, None) => Plan::Nothing,
        }
    }

    /// The update of the stored session `id`, or nothing when nothing changed: the
    /// changed entries, moved out of the record (`None` where removed), then with
    /// `resave` every other entry too; and the session's lifetime when it changed here,
    /// with `rolling`, or when a session that held only bookkeeping gains the
    /// application's data (its full lifetime, then), with the cookie to send again. No
    /// reset reaches past the session's absolute timeout.
    fn update(self, id: SessionId, config: &SessionConfig) -> Plan {
        let State {
            mut record,
            mut changed,
            own_lifetime,
            was_bookkeeping_only,
            now,
            reseal,
            ..
        } = self;
        let mut changes = Changes::default();
        if was_bookkeeping_only && !has_own_lifetime(&record) && record.holds_app_data() {
            record.set_ttl(config.max_age);
            changes.reset_ttl(config.max_age);
        }
        // With `touch_after`, an unchanged session is refreshed only once its last refresh
        // is that old; a write that happens anyway refreshes it.
        // A session from before sealing at rest is written back whole, sealed.
        let resave = config.resave || reseal;
        let writes = !changed.is_empty() || resave || changes.ttl().is_some();
        // Never lazier than an eighth of the session's own lifetime: one shorter than the
        // configured ones (`set_max_age`, bookkeeping alone) must not end while in use.
        let fresh = config.touch_after.is_some_and(|after| {
            let touched = record
                .get(reserved::TOUCHED)
                .and_then(|t| t.parse::<u64>().ok());
            let window = after.min(record.ttl() / 8);
            touched.is_some_and(|at| now.saturating_sub(at) < millis(window))
        });
        let logged_in = record.get(reserved::USER).is_some();
        // A signed-in session under `idle_timeout` is refreshed by every request, to it.
        let idle = config
            .idle_timeout
            .filter(|_| logged_in && !has_own_lifetime(&record));
        if own_lifetime || ((config.rolling || idle.is_some()) && (writes || !fresh)) {
            let ttl = idle.unwrap_or_else(|| own_lifetime_of_or_ttl(&record));
            record.set_ttl(ttl);
            changes.reset_ttl(ttl);
        }
        if changes.ttl().is_some() && config.touch_after.is_some() {
            record.insert(reserved::TOUCHED, now.to_string());
            if !changed.contains(&reserved::TOUCHED) {
                changed.push(reserved::TOUCHED);
            }
        }
        if let Some(ttl) = changes.ttl() {
            changes.reset_ttl(within_timeout(ttl, &record, config.absolute_timeout, now));
        }
        let cookie = changes.ttl().map(|_| cookie_lifetime(&record, config, now));
        let stamp = changes
            .ttl()
            .and_then(|ttl| stamp(&record, ttl, config, now));
        let lists_until = changes
            .ttl()
            .and_then(|ttl| list_extension(&record, ttl, config, now));
        if let Some((_, lifetime)) = &lists_until {
            record.insert(reserved::LISTED, listed_until(now, *lifetime));
            if !changed.contains(&reserved::LISTED) {
                changed.push(reserved::LISTED);
            }
        }
        for key in changed {
            match record.take(key) {
                Some((key, json)) => changes.set(key, json),
                None => changes.remove(key),
            }
        }
        if resave {
            for (key, json) in record.into_entries() {
                changes.set(key, json);
            }
        }
        // A logged-in session's "last seen", on a write that happens anyway.
        if logged_in && !changes.is_empty() {
            changes.set(reserved::SEEN, now.to_string());
        }
        match changes.is_empty() {
            true => Plan::Nothing,
            false => Plan::Update {
                id,
                changes,
                cookie,
                stamp,
                lists_until,
            },
        }
    }
}

/// The lifetime a new session without one of its own starts with: `idle_timeout` for a
/// signed-in session when it is set, else `max_age`.
fn lifetime(record: &SessionRecord, config: &SessionConfig) -> Duration {
    match config.idle_timeout {
        Some(idle) if record.get(reserved::USER).is_some() => idle,
        _ => config.max_age,
    }
}

/// Whether `record` has a lifetime of its own
/// ([`SessionHandle::set_max_age`](crate::SessionHandle::set_max_age)).
fn has_own_lifetime(record: &SessionRecord) -> bool {
    record.get(reserved::LIFETIME).is_some()
}

/// The lifetime `record` asked for with `set_max_age`, when it keeps it (older records
/// mark only that they have one).
fn own_lifetime(record: &SessionRecord) -> Option<Duration> {
    let millis = record.get(reserved::LIFETIME)?.parse().ok()?;
    Some(Duration::from_millis(millis))
}

/// The lifetime a refresh of `record` resets to: the one it asked for, else its own.
fn own_lifetime_of_or_ttl(record: &SessionRecord) -> Duration {
    own_lifetime(record).unwrap_or(record.ttl())
}

/// How long past a session's end its user's lists are kept, at least, when the session
/// lives `span`: an eighth of it, a minute at most. It covers what happens between the
/// decision and the session's write (a long request), and clocks of instances that
/// disagree by less than that.
fn list_margin(span: Duration) -> Duration {
    (span / 8).min(Duration::from_secs(60))
}

/// How long a user's lists are kept, from `now`, when their session `record` is listed,
/// or its lifetime reset to `ttl` past the time they are kept until: past the session's
/// end, by a [margin](list_margin). Under `absolute_timeout`, what is left of it (the
/// session can never outlive that, so this is one write per log-in); without `rolling`,
/// `ttl` (a session lives longer only when `set_max_age` resets it, which keeps them
/// longer again); with `rolling`, a quarter longer than `ttl`, so that an active session
/// keeps them longer about once every eighth to quarter of its lifetime rather than on
/// each request, and they outlive its end by a quarter of its lifetime at most.
fn list_lifetime(
    record: &SessionRecord,
    ttl: Duration,
    config: &SessionConfig,
    now: u64,
) -> Duration {
    let lifetime = match remaining(record, config.absolute_timeout, now) {
        Some(left) => {
            let span = left.max(ttl);
            span.saturating_add(list_margin(span))
        }
        // Refreshed by requests (`rolling`, or a signed-in session under `idle_timeout`):
        // a quarter more, so that a refresh extends the lists once in a while, not each time.
        None if config.rolling || config.idle_timeout.is_some() => ttl.saturating_add(ttl / 4),
        None => ttl.saturating_add(list_margin(ttl)),
    };
    lifetime.min(MAX_LIFETIME)
}

/// When the logged-in session `record` now lives `ttl` from `now` (no longer than its
/// absolute timeout allows), past the time its user's lists are kept until less the
/// [margin](list_margin) (its `$listed` entry; a session listed before it was kept has
/// none): the user, and how long the lists must be kept from now. The caller records
/// that in `$listed` ([`listed_until`]), once the lists are kept that long.
pub(crate) fn list_extension(
    record: &SessionRecord,
    ttl: Duration,
    config: &SessionConfig,
    now: u64,
) -> Option<(String, Duration)> {
    let user = record.get(reserved::USER)?;
    let ttl = within_timeout(ttl, record, config.absolute_timeout, now);
    if after(now, ttl.saturating_add(list_margin(ttl))) <= record.listed().unwrap_or(0) {
        return None;
    }
    Some((user.to_string(), list_lifetime(record, ttl, config, now)))
}

/// The `$listed` entry of a session whose user's lists are kept `lifetime` from `now`.
pub(crate) fn listed_until(now: u64, lifetime: Duration) -> String {
    after(now, lifetime).to_string()
}

/// The stamp the cookie of `record` carries when the session is written to live `ttl`
/// from `now` (no longer than its absolute timeout allows): when it ends then, and what
/// ends it ([`crate::ended`]). `None` for a session no one is signed in to: a stranger's
/// cookie carries nothing of this.
pub(crate) fn stamp(
    record: &SessionRecord,
    ttl: Duration,
    config: &SessionConfig,
    now: u64,
) -> Option<Stamp> {
    record.get(reserved::USER)?;
    let left = remaining(record, config.absolute_timeout, now);
    let refreshed = config.rolling || (config.idle_timeout.is_some() && !has_own_lifetime(record));
    let cause = match left {
        Some(left) if left <= ttl => Cause::AbsoluteTimeout,
        _ if refreshed => Cause::Inactivity,
        _ => Cause::Expiry,
    };
    let ttl = left.map_or(ttl, |left| ttl.min(left));
    Some(Stamp::new(after(now, ttl), cause))
}

/// The lifetime of the cookie sent with the session `record` at `now`, whenever it is
/// sent: the session's, and under `browser_session` none (a browser-session cookie) unless
/// the session has its own; never longer than what remains before its absolute timeout. A
/// session of bookkeeping alone lives minutes in the store, but its cookie gets the
/// configured lifetime: a form's CSRF token is bound to the id the cookie carries, not to
/// the stored session.
pub(crate) fn cookie_lifetime(
    record: &SessionRecord,
    config: &SessionConfig,
    now: u64,
) -> Lifetime {
    let own = has_own_lifetime(record);
    let ttl = match record.is_bookkeeping_only() && !own {
        true => config.max_age,
        false => record.ttl(),
    };
    let ttl = within_timeout(ttl, record, config.absolute_timeout, now);
    (own || !config.browser_session).then_some(ttl)
}

/// The plan's tests, and what the machine's share with them: the configuration, a stored
/// record, and the time the requests ran.
#[cfg(test)]
pub(super) mod tests {
    use super::super::Incoming;
    use super::*;
    use crate::ended::Ended;
    use crate::time::millis;

    pub(crate) const MAX_AGE: Duration = Duration::from_secs(60);

    pub(crate) fn config() -> SessionConfig {
        SessionConfig {
            max_age: MAX_AGE,
            ..SessionConfig::default()
        }
    }

    pub(crate) fn record(entries: &[(&str, &str)]) -> SessionRecord {
        let mut record = SessionRecord::new(MAX_AGE);
        for (key, json) in entries {
            record.insert(*key, *json);
        }
        record
    }

    /// When the requests of these tests run, in milliseconds since the Unix epoch.
    pub(crate) const NOW: u64 = 1_800_000_000_000;

    /// A request's state: the cookie it carried and, for a session the store had, its
    /// entries.
    fn state(incoming: Incoming, stored: Option<&[(&str, &str)]>) -> State {
        timed_state(incoming, stored, None)
    }

    /// A request's state under `absolute_timeout`.
    fn timed_state(
        incoming: Incoming,
        stored: Option<&[(&str, &str)]>,
        absolute_timeout: Option<Duration>,
    ) -> State {
        let mut state = State {
            incoming: incoming.clone(),
            stored: None,
            discard: None,
            loaded_user: None,
            discard_user: None,
            new_id: incoming.id().cloned(),
            record: SessionRecord::new(MAX_AGE),
            changed: Vec::new(),
            own_lifetime: false,
            bound: false,
            was_bookkeeping_only: false,
            logs_in: false,
            max_age: MAX_AGE,
            max_size: 1000,
            absolute_timeout,
            now: NOW,
            ended: None,
            reseal: false,
        };
        if let (Incoming::Session(id), Some(entries)) = (incoming, stored) {
            state.found(id, record(entries));
        }
        state
    }

    fn stored(entries: &[(&str, &str)]) -> (SessionId, State) {
        let id = SessionId::generate();
        (id.clone(), state(Incoming::Session(id), Some(entries)))
    }

    fn entries(changes: &Changes) -> Vec<(&str, Option<&str>)> {
        changes.entries().collect()
    }

    #[test]
    fn a_visitor_who_stores_nothing_costs_nothing() {
        assert_eq!(
            state(Incoming::Nothing, None).plan(&config()),
            Plan::Nothing
        );
        // A cookie whose session is gone is left alone: it may be older than the browser's.
        let gone = state(Incoming::Session(SessionId::generate()), None);
        assert_eq!(gone.plan(&config()), Plan::Nothing);
    }

    #[test]
    fn a_new_session_with_data_is_created_with_its_cookie() {
        let mut new = state(Incoming::Nothing, None);
        new.put("cart", "[1]".into()).unwrap();
        let Plan::Create {
            id: None,
            record,
            cookie: Some(MAX_AGE),
            stamp: None,
            list: None,
            replaces: None,
            left: None,
            needs_old: false,
        } = new.plan(&config())
        else {
            panic!("not a create");
        };
        assert_eq!(record.get("cart"), Some("[1]"));
        assert_eq!(record.ttl(), MAX_AGE);
    }

    #[test]
    fn save_uninitialized_creates_an_empty_session() {
        let config = SessionConfig {
            save_uninitialized: true,
            ..config()
        };
        let plan = state(Incoming::Nothing, None).plan(&config);
        assert!(matches!(plan, Plan::Create { ref record, .. } if record.is_empty()));
    }

    #[test]
    fn an_unchanged_session_writes_nothing_and_resave_writes_it_all() {
        let (_, unchanged) = stored(&[("a", "1")]);
        assert_eq!(unchanged.plan(&config()), Plan::Nothing);

        let (id, unchanged) = stored(&[("a", "1"), ("b", "2")]);
        let resave = SessionConfig {
            resave: true,
            ..config()
        };
        let Plan::Update {
            id: updated,
            changes,
            cookie: None,
            stamp: None,
            lists_until: None,
        } = unchanged.plan(&resave)
        else {
            panic!("not an update");
        };
        assert_eq!(updated, id);
        assert_eq!(entries(&changes), [("a", Some("1")), ("b", Some("2"))]);
    }

    #[test]
    fn each_changed_entry_is_committed_once_with_its_last_value() {
        let (_, mut s) = stored(&[("a", "1"), ("b", "2"), ("c", "3")]);
        s.put("a", "10".into()).unwrap();
        s.put("a", "11".into()).unwrap();
        s.put("b", "2".into()).unwrap();
        s.put("d", "4".into()).unwrap();
        s.remove_entry("d");
        s.remove_entry("c");
        assert_eq!(s.remove_entry("never"), None);
        let Plan::Update { changes, .. } = s.plan(&config()) else {
            panic!("not an update");
        };
        assert_eq!(
            entries(&changes),
            [("a", Some("11")), ("c", None), ("d", None)]
        );
        assert_eq!(changes.ttl(), None, "a data write keeps the expiry");
    }

    #[test]
    fn rolling_resets_the_lifetime_and_resends_the_cookie() {
        let rolling = SessionConfig {
            rolling: true,
            ..config()
        };
        let (_, s) = stored(&[("a", "1")]);
        let Plan::Update {
            changes,
            cookie: Some(Some(MAX_AGE)),
            ..
        } = s.plan(&rolling)
        else {
            panic!("not a refresh");
        };
        assert_eq!(changes.ttl(), Some(MAX_AGE));
        assert!(changes.has_no_entries());
    }

    /// `rolling` with a `touch_after` of an eighth of `MAX_AGE`.
    fn lazy() -> SessionConfig {
        SessionConfig {
            rolling: true,
            touch_after: Some(MAX_AGE / 8),
            ..config()
        }
    }

    #[test]
    fn touch_after_refreshes_an_unchanged_session_once_its_last_refresh_is_that_old() {
        let after = millis(MAX_AGE / 8);
        let touched = |ago: u64| (NOW - ago).to_string();

        let recent = touched(after - 1);
        let (_, s) = stored(&[("a", "1"), ("$touched", &recent)]);
        assert!(
            matches!(s.plan(&lazy()), Plan::Nothing),
            "refreshed too early"
        );

        for last in [Some(touched(after)), None, Some("junk".to_string())] {
            let mut held = vec![("a", "1")];
            if let Some(last) = &last {
                held.push(("$touched", last));
            }
            let (_, s) = stored(&held);
            let Plan::Update {
                changes,
                cookie: Some(Some(MAX_AGE)),
                ..
            } = s.plan(&lazy())
            else {
                panic!("no refresh after {last:?}");
            };
            assert_eq!(changes.ttl(), Some(MAX_AGE));
            let now = NOW.to_string();
            assert_eq!(entries(&changes), [("$touched", Some(now.as_str()))]);
        }
    }

    #[test]
    fn touch_after_refreshes_a_changed_session_with_its_write() {
        let recent = (NOW - 1).to_string();
        let (_, mut s) = stored(&[("a", "1"), ("$touched", &recent)]);
        s.put("a", "2".into()).unwrap();
        let Plan::Update {
            changes,
            cookie: Some(_),
            ..
        } = s.plan(&lazy())
        else {
            panic!("not a refreshed write");
        };
        assert_eq!(changes.ttl(), Some(MAX_AGE));
        let now = NOW.to_string();
        assert_eq!(
            entries(&changes),
            [("$touched", Some(now.as_str())), ("a", Some("2"))]
        );
    }

    #[test]
    fn a_signed_in_sessions_cookie_is_stamped_with_its_end_and_its_cause_and_no_other_is() {
        let idle = Duration::from_secs(20);
        let idle_config = SessionConfig {
            idle_timeout: Some(idle),
            ..config()
        };
        let ends = |ttl: Duration| (NOW + millis(ttl)).div_ceil(1000);
        // A log-in under `idle_timeout`: inactivity ends it, `idle_timeout` from now.
        let mut s = state(Incoming::Nothing, None);
        s.put(reserved::USER, "\"alice\"".into()).unwrap();
        let Plan::Create { stamp, .. } = s.plan(&idle_config) else {
            panic!("not a creation");
        };
        assert_eq!(
            stamp,
            Some(Stamp::new(NOW + millis(idle), Cause::Inactivity))
        );
        assert_eq!(stamp.map(|s| s.until), Some(ends(idle)));
        // Each request refreshes it, and stamps the cookie it sends again.
        let (_, s) = stored(&[(reserved::USER, "\"alice\"")]);
        let Plan::Update { stamp, .. } = s.plan(&idle_config) else {
            panic!("not refreshed");
        };
        assert_eq!(
            stamp,
            Some(Stamp::new(NOW + millis(idle), Cause::Inactivity))
        );
        // Without `rolling` or `idle_timeout`, its lifetime is fixed at log-in.
        let mut s = state(Incoming::Nothing, None);
        s.put(reserved::USER, "\"alice\"".into()).unwrap();
        let Plan::Create { stamp, .. } = s.plan(&config()) else {
            panic!("not a creation");
        };
        assert_eq!(
            stamp,
            Some(Stamp::new(NOW + millis(MAX_AGE), Cause::Expiry))
        );
        // With `rolling`, any lifetime is an idle one, its own ("remember me") too.
        let rolling = SessionConfig {
            rolling: true,
            ..config()
        };
        let mut s = state(Incoming::Nothing, None);
        s.put(reserved::USER, "\"alice\"".into()).unwrap();
        s.set_max_age(2 * MAX_AGE);
        let Plan::Create { stamp, .. } = s.plan(&rolling) else {
            panic!("not a creation");
        };
        assert_eq!(
            stamp,
            Some(Stamp::new(NOW + millis(2 * MAX_AGE), Cause::Inactivity))
        );
        // The absolute timeout, when it comes first.
        let timed = SessionConfig {
            absolute_timeout: Some(MAX_AGE / 2),
            ..idle_config.clone()
        };
        let mut s = timed_state(Incoming::Nothing, None, timed.absolute_timeout);
        s.put(reserved::USER, "\"alice\"".into()).unwrap();
        s.max_age = MAX_AGE;
        let Plan::Create { stamp, .. } = s.plan(&SessionConfig {
            idle_timeout: None,
            ..timed
        }) else {
            panic!("not a creation");
        };
        assert_eq!(
            stamp,
            Some(Stamp::new(
                NOW + millis(MAX_AGE / 2),
                Cause::AbsoluteTimeout
            ))
        );
        // A stranger's cookie carries nothing: not on creation, not when refreshed.
        let mut s = state(Incoming::Nothing, None);
        s.put("cart", "[1]".into()).unwrap();
        assert!(matches!(s.plan(&rolling), Plan::Create { stamp: None, .. }));
        let (_, s) = stored(&[("cart", "[1]")]);
        let plan = s.plan(&rolling);
        assert!(
            matches!(
                plan,
                Plan::Update {
                    cookie: Some(_),
                    stamp: None,
                    ..
                }
            ),
            "{plan:?}"
        );
    }

    #[test]
    fn a_session_from_before_sealing_is_written_back_whole_by_a_request_that_changes_nothing() {
        let (id, mut s) = stored(&[("cart", "[1]"), ("theme", "\"dark\"")]);
        let mut loaded = s.record.clone();
        loaded.insert(reserved::UNSEALED, "1");
        s.found(id.clone(), loaded);
        assert!(s.reseal);
        assert_eq!(s.record.get(reserved::UNSEALED), None, "never stored");
        let Plan::Update { changes, .. } = s.plan(&config()) else {
            panic!("not written back");
        };
        assert_eq!(
            entries(&changes),
            [("cart", Some("[1]")), ("theme", Some("\"dark\""))]
        );
        // Sealed already: nothing to write.
        let (_, s) = stored(&[("cart", "[1]")]);
        assert_eq!(s.plan(&config()), Plan::Nothing);
    }

    #[test]
    fn a_new_session_takes_a_gone_strangers_id_never_a_signed_in_ones() {
        let id = SessionId::generate();
        let written = |mut s: State| {
            s.put("cart", "[1]".into()).unwrap();
            let Plan::Create { id, .. } = s.plan(&config()) else {
                panic!("not created");
            };
            id
        };
        let mut s = state(Incoming::Session(id.clone()), None);
        s.gone(&id, None);
        assert_eq!(
            written(s),
            Some(id.clone()),
            "a stranger's, for its pages at once"
        );
        let mut s = state(Incoming::Session(id.clone()), None);
        s.gone(&id, Some(Stamp::new(NOW + 1_000_000, Cause::Inactivity)));
        assert_eq!(
            written(s),
            None,
            "a fresh id, never the signed-in session's"
        );
    }

    #[test]
    fn a_gone_signed_in_session_tells_why_it_ended_and_a_live_one_clears_it() {
        let stamp = Stamp::new(NOW - 1_000_000, Cause::Inactivity);
        let mut s = state(Incoming::Nothing, None);
        let gone = SessionId::generate();
        s.gone(&gone, None);
        assert_eq!(s.ended, None, "a stranger's cookie tells nothing");
        s.gone(&gone, Some(stamp));
        assert_eq!(s.ended, Some(Ended::Inactivity));
        // The first cookie's reason stands; a later one's does not replace it.
        s.gone(&gone, Some(Stamp::new(NOW + 1_000_000, Cause::Inactivity)));
        assert_eq!(s.ended, Some(Ended::Inactivity));
        // A live session of another cookie: nothing ended.
        let id = SessionId::generate();
        s.found(id, record(&[("cart", "[1]")]));
        assert_eq!(s.ended, None);
        // Found past its absolute timeout: signed in, that is why; a stranger's, nothing.
        let mut s = state(Incoming::Nothing, None);
        s.timed_out(SessionId::generate(), &record(&[("cart", "[1]")]));
        assert_eq!(s.ended, None);
        s.timed_out(
            SessionId::generate(),
            &record(&[(reserved::USER, "\"alice\"")]),
        );
        assert_eq!(s.ended, Some(Ended::AbsoluteTimeout));
        assert!(s.discard.is_some(), "retired, deleted at commit");
    }

    #[test]
    fn idle_timeout_refreshes_a_signed_in_session_on_every_request_and_no_other() {
        let idle = Duration::from_secs(5);
        let config = SessionConfig {
            idle_timeout: Some(idle),
            ..config()
        };
        let (_, s) = stored(&[("$user", "\"alice\"")]);
        let Plan::Update {
            changes,
            cookie: Some(Some(cookie)),
            ..
        } = s.plan(&config)
        else {
            panic!("a signed-in session not refreshed");
        };
        assert_eq!((changes.ttl(), cookie), (Some(idle), idle));

        // Anonymous, or with a lifetime of its own ("remember me"): not refreshed.
        let (_, s) = stored(&[("a", "1")]);
        assert!(matches!(s.plan(&config), Plan::Nothing));
        let own = millis(MAX_AGE * 2).to_string();
        let (_, s) = stored(&[("$user", "\"alice\""), ("$lifetime", &own)]);
        assert!(matches!(s.plan(&config), Plan::Nothing));
    }

    #[test]
    fn touch_after_is_never_lazier_than_an_eighth_of_the_sessions_own_lifetime() {
        // A review's case: `set_max_age` shorter than eight times `touch_after` ended a
        // session in use. Its own lifetime of 8 s allows a second without a refresh.
        let own = millis(Duration::from_secs(8)).to_string();
        let two_seconds_ago = (NOW - 2_000).to_string();
        let mut s = state(
            Incoming::Session(SessionId::generate()),
            Some(&[
                ("a", "1"),
                ("$lifetime", &own),
                ("$touched", &two_seconds_ago),
            ]),
        );
        s.record.set_ttl(Duration::from_secs(8));
        let Plan::Update { changes, .. } = s.plan(&lazy()) else {
            panic!("a session living 8 s not refreshed after 2 s");
        };
        assert_eq!(changes.ttl(), Some(Duration::from_secs(8)));
    }

    #[test]
    fn lists_outlive_a_session_refreshed_by_idle_timeout_by_a_quarter() {
        // Refreshed on every request, as with `rolling`: the lists are kept a quarter
        // longer, so that a refresh extends them once in a while, not on each request.
        let idle = Duration::from_secs(8);
        let config = SessionConfig {
            idle_timeout: Some(idle),
            ..config()
        };
        let record = record(&[("$user", "\"alice\"")]);
        assert_eq!(list_lifetime(&record, idle, &config, NOW), idle + idle / 4);
        let listed = listed_until(NOW, idle + idle / 4);
        let mut refreshed = record.clone();
        refreshed.insert("$listed", listed);
        assert_eq!(list_extension(&refreshed, idle, &config, NOW + 500), None);
    }

    #[test]
    fn touch_after_stamps_a_new_session_with_its_creation() {
        let mut s = state(Incoming::Nothing, None);
        s.put("a", "1".into()).unwrap();
        let Plan::Create { record, .. } = s.plan(&lazy()) else {
            panic!("not a creation");
        };
        assert_eq!(record.get("$touched"), Some(NOW.to_string().as_str()));
        // Without `touch_after`, nothing more is stored.
        let mut s = state(Incoming::Nothing, None);
        s.put("a", "1".into()).unwrap();
        let Plan::Create { record, .. } = s.plan(&config()) else {
            panic!("not a creation");
        };
        assert_eq!(record.get("$touched"), None);
    }

    #[test]
    fn an_own_lifetime_is_committed_and_keeps_the_cookie_persistent() {
        let browser_session = SessionConfig {
            browser_session: true,
            ..config()
        };
        // Even a lifetime equal to max_age: the flag says so, not a comparison.
        for ttl in [Duration::from_secs(5), MAX_AGE] {
            let (_, mut s) = stored(&[("a", "1")]);
            s.record.set_ttl(ttl);
            s.own_lifetime = true;
            s.put(reserved::LIFETIME, "true".into()).unwrap();
            let Plan::Update {
                changes,
                cookie: Some(Some(cookie)),
                ..
            } = s.plan(&browser_session)
            else {
                panic!("not an update that sends the cookie");
            };
            assert_eq!((changes.ttl(), cookie), (Some(ttl), ttl));
        }
    }

    #[test]
    fn browser_session_cookies_carry_no_max_age() {
        let browser_session = SessionConfig {
            browser_session: true,
            ..config()
        };
        let mut new = state(Incoming::Nothing, None);
        new.put("a", "1".into()).unwrap();
        assert!(matches!(
            new.plan(&browser_session),
            Plan::Create { cookie: None, .. }
        ));
    }

    #[test]
    fn a_destroyed_session_is_deleted_and_a_later_write_starts_another() {
        let (id, mut s) = stored(&[("a", "1")]);
        s.put("a", "2".into()).unwrap();
        s.destroy();
        assert_eq!(
            s.plan(&config()),
            Plan::Delete {
                id: id.clone(),
                pending: None,
                left: None,
            }
        );

        let (_, mut s) = stored(&[("a", "1"), (reserved::LIFETIME, "true")]);
        s.destroy();
        s.put("b", "2".into()).unwrap();
        let Plan::Create {
            record,
            replaces: Some(replaced),
            cookie,
            ..
        } = s.plan(&config())
        else {
            panic!("not a replace");
        };
        assert_eq!(record.entries().collect::<Vec<_>>(), [("b", "2")]);
        assert_eq!(
            cookie,
            Some(MAX_AGE),
            "the successor forgets the own lifetime"
        );
        assert_ne!(Some(&replaced), Some(&SessionId::generate()));
    }

    #[test]
    fn a_regenerated_session_moves_its_data_to_a_new_id() {
        let (id, mut s) = stored(&[("a", "1")]);
        let before = s.id();
        s.regenerate();
        let after = s.id();
        assert_ne!(before, after);
        let Plan::Create {
            id: Some(new),
            record,
            replaces: Some(old),
            ..
        } = s.plan(&config())
        else {
            panic!("not a replace");
        };
        assert_eq!((new, old), (after, id));
        assert_eq!(record.get("a"), Some("1"));
    }

    #[test]
    fn a_token_for_a_visitor_without_a_session_sends_a_pending_id_and_stores_nothing() {
        let mut s = state(Incoming::Nothing, None);
        s.bound = true;
        let id = s.id();
        assert_eq!(
            s.plan(&config()),
            Plan::Pending {
                id,
                cookie: Some(MAX_AGE)
            }
        );

        // The browser sent that pending id: nothing to send again.
        let pending = SessionId::generate();
        let mut s = state(Incoming::Pending(pending.clone()), None);
        s.bound = true;
        assert_eq!(s.id(), pending);
        assert_eq!(s.plan(&config()), Plan::Nothing);
    }

    #[test]
    fn a_session_started_from_a_pending_id_is_stored_under_it() {
        let pending = SessionId::generate();
        let mut s = state(Incoming::Pending(pending.clone()), None);
        s.put("cart", "[1]".into()).unwrap();
        assert!(matches!(s.plan(&config()), Plan::Create { id: Some(id), .. } if id == pending));

        // Logging in moves to a fresh id: a planted pending id never becomes a login.
        let mut s = state(Incoming::Pending(pending.clone()), None);
        s.put(reserved::USER, "\"alice\"".into()).unwrap();
        s.regenerate();
        assert!(matches!(s.plan(&config()), Plan::Create { id: None, .. }));
    }

    #[test]
    fn a_session_of_bookkeeping_alone_lives_minutes_until_it_holds_app_data() {
        let long = SessionConfig {
            max_age: Duration::from_secs(86_400),
            ..config()
        };
        let mut s = state(Incoming::Nothing, None);
        s.max_age = long.max_age;
        s.record.set_ttl(long.max_age);
        s.put(reserved::FLASH, "{}".into()).unwrap();
        let Plan::Create { record, cookie, .. } = s.plan(&long) else {
            panic!("not a create");
        };
        assert_eq!(record.ttl(), BOOKKEEPING_LIFETIME);
        assert_eq!(
            cookie,
            Some(long.max_age),
            "a form's token outlives the record"
        );

        // Loaded as bookkeeping alone, it gains the app's data: the full lifetime.
        let id = SessionId::generate();
        let mut s = state(Incoming::Session(id.clone()), None);
        s.max_age = long.max_age;
        let mut flash_only = record.clone();
        flash_only.set_ttl(BOOKKEEPING_LIFETIME);
        s.found(id, flash_only);
        s.put("cart", "[1]".into()).unwrap();
        let Plan::Update {
            changes, cookie, ..
        } = s.plan(&long)
        else {
            panic!("not an update");
        };
        assert_eq!(changes.ttl(), Some(long.max_age));
        assert_eq!(cookie, Some(Some(long.max_age)));

        // A logged-in user is the app's data too.
        let mut s = state(Incoming::Nothing, None);
        s.put(reserved::FLASH, "{}".into()).unwrap();
        s.put(reserved::USER, "\"alice\"".into()).unwrap();
        assert!(
            matches!(s.plan(&config()), Plan::Create { record, .. } if record.ttl() == MAX_AGE)
        );
    }

    #[test]
    fn an_unreadable_session_is_deleted_and_its_cookie_expired() {
        let id = SessionId::generate();
        let mut s = state(Incoming::Session(id.clone()), None);
        s.discard = Some(id.clone());
        assert_eq!(
            s.plan(&config()),
            Plan::Delete {
                id,
                pending: None,
                left: None
            }
        );
    }

    #[test]
    fn a_write_may_not_grow_the_session_past_its_limit() {
        // max_size is 1000: "a" + 600 bytes, then "b" + 398 bytes is 1000 in all.
        let (_, mut s) = stored(&[]);
        s.put("a", "1".repeat(600)).unwrap();
        s.put("b", "2".repeat(398)).unwrap();
        let refused = s.put("c", "3".into()).unwrap_err();
        assert!(
            matches!(
                refused,
                crate::error::Error::TooLarge {
                    key: "c",
                    size: 1002,
                    limit: 1000
                }
            ),
            "{refused:?}"
        );
        assert!(
            s.put("a", "1".repeat(601)).is_err(),
            "growing an entry counts"
        );
        assert_eq!(s.record.get("c"), None, "a refused write changes nothing");
        assert_eq!(s.changed, ["a", "b"]);

        // Over the limit already (a lower limit than it was stored under): it may shrink.
        s.max_size = 500;
        s.put("a", "1".repeat(400)).unwrap();
        assert!(s.put("a", "1".repeat(401)).is_err());
    }

    const DAY: Duration = Duration::from_secs(86_400);

    fn day() -> SessionConfig {
        SessionConfig {
            max_age: DAY,
            ..SessionConfig::default()
        }
    }

    /// A stored session as a flash left it: `entries`, five minutes to live.
    fn after_a_flash(entries: &[(&str, &str)]) -> (SessionId, State) {
        let (id, mut s) = stored(entries);
        s.max_age = DAY;
        s.record.set_ttl(BOOKKEEPING_LIFETIME);
        s.was_bookkeeping_only = !s.record.holds_app_data();
        (id, s)
    }

    /// Review: log out (a flash in a new 5-minute session), read the flash, log in: the
    /// logged-in session kept the 5-minute lifetime.
    #[test]
    fn logging_in_from_a_session_a_flash_left_gets_the_full_lifetime() {
        let (_, mut s) = after_a_flash(&[]);
        s.put(reserved::USER, "\"alice\"".into()).unwrap();
        s.regenerate();
        let Plan::Create { record, cookie, .. } = s.plan(&day()) else {
            panic!("not a create");
        };
        assert_eq!((record.ttl(), cookie), (DAY, Some(DAY)));
    }

    #[test]
    fn an_emptied_flash_session_gets_the_full_lifetime_with_app_data() {
        for entries in [&[][..], &[(reserved::FLASH, "{}")][..]] {
            let (_, mut s) = after_a_flash(entries);
            s.put("cart", "[1]".into()).unwrap();
            let Plan::Update {
                changes, cookie, ..
            } = s.plan(&day())
            else {
                panic!("not an update");
            };
            assert_eq!((changes.ttl(), cookie), (Some(DAY), Some(Some(DAY))));
        }
    }

    /// Review: a stored session holding only its own lifetime lost it to `max_age` when
    /// it gained data.
    #[test]
    fn a_remembered_session_keeps_its_own_lifetime_when_it_gains_data() {
        let month = DAY * 30;
        let (_, mut s) = stored(&[(reserved::LIFETIME, "true")]);
        s.record.set_ttl(month);
        s.was_bookkeeping_only = true;
        s.put("cart", "[1]".into()).unwrap();
        let Plan::Update { changes, .. } = s.plan(&day()) else {
            panic!("not an update");
        };
        assert_eq!(changes.ttl(), None, "its own lifetime stays");
    }

    /// Review: "remember me" set before the password is checked stored a 30-day session
    /// for every failed log-in.
    #[test]
    fn an_own_lifetime_alone_stores_nothing() {
        let mut s = state(Incoming::Nothing, None);
        s.set_max_age(DAY * 30);
        assert_eq!(s.plan(&day()), Plan::Nothing);
    }

    /// Review: a tab still sending a session that another tab's log-in replaced rendered a
    /// form, and its pending cookie overwrote the new session's.
    #[test]
    fn a_token_for_a_gone_session_binds_to_its_id_and_sends_no_cookie() {
        let gone = SessionId::generate();
        let mut s = state(Incoming::Session(gone.clone()), None);
        s.bound = true;
        assert_eq!(s.id(), gone);
        assert_eq!(s.plan(&config()), Plan::Nothing);

        // Its id serves a session that starts here; the store refuses it if taken.
        let mut s = state(Incoming::Session(gone.clone()), None);
        s.put("cart", "[1]".into()).unwrap();
        assert!(matches!(s.plan(&config()), Plan::Create { id: Some(id), .. } if id == gone));
    }

    #[test]
    fn the_cookie_of_a_refreshed_session_follows_the_same_rules() {
        let browser_session = SessionConfig {
            browser_session: true,
            ..day()
        };
        let mut flash = SessionRecord::new(BOOKKEEPING_LIFETIME);
        flash.insert(reserved::FLASH, "{}");
        assert_eq!(cookie_lifetime(&flash, &day(), NOW), Some(DAY));
        let mut remembered = SessionRecord::new(DAY);
        remembered.insert(reserved::LIFETIME, "true");
        assert_eq!(
            cookie_lifetime(&remembered, &browser_session, NOW),
            Some(DAY)
        );
        assert_eq!(
            cookie_lifetime(&SessionRecord::new(DAY), &browser_session, NOW),
            None
        );
    }

    /// A configuration of idle lifetime `MAX_AGE` (60 s) and the absolute `timeout`.
    fn capped(timeout: Duration) -> SessionConfig {
        SessionConfig {
            absolute_timeout: Some(timeout),
            ..config()
        }
    }

    const SECOND: Duration = Duration::from_secs(1);

    #[test]
    fn a_new_session_records_its_start_and_lives_no_longer_than_the_absolute_timeout() {
        let short = capped(30 * SECOND);
        let mut new = timed_state(Incoming::Nothing, None, short.absolute_timeout);
        new.put("cart", "[1]".into()).unwrap();
        let Plan::Create { record, cookie, .. } = new.plan(&short) else {
            panic!("not a create");
        };
        assert_eq!(record.created(), Some(NOW));
        assert_eq!(record.ttl(), 30 * SECOND);
        assert_eq!(cookie, Some(30 * SECOND));

        // A timeout longer than max_age leaves the idle lifetime as it is.
        let long = capped(3600 * SECOND);
        let mut new = timed_state(Incoming::Nothing, None, long.absolute_timeout);
        new.put("cart", "[1]".into()).unwrap();
        let Plan::Create { record, cookie, .. } = new.plan(&long) else {
            panic!("not a create");
        };
        assert_eq!((record.ttl(), cookie), (MAX_AGE, Some(MAX_AGE)));

        // Without a timeout, no creation time is kept.
        let mut new = state(Incoming::Nothing, None);
        new.put("cart", "[1]".into()).unwrap();
        let Plan::Create { record, .. } = new.plan(&config()) else {
            panic!("not a create");
        };
        assert_eq!(record.created(), None);
    }

    #[test]
    fn no_reset_of_the_lifetime_reaches_past_the_absolute_timeout() {
        let config = SessionConfig {
            rolling: true,
            ..capped(100 * SECOND)
        };
        let born = (NOW - 90_000).to_string();
        let stored = [("a", "1"), (reserved::CREATED, born.as_str())];
        let id = SessionId::generate();

        let stored = || {
            timed_state(
                Incoming::Session(id.clone()),
                Some(&stored),
                config.absolute_timeout,
            )
        };
        let reset = |s: State| {
            let Plan::Update {
                changes, cookie, ..
            } = s.plan(&config)
            else {
                panic!("not an update");
            };
            (changes.ttl(), cookie)
        };

        // Rolling: 60 s of idle lifetime, but 10 s are left.
        let ten_seconds = (Some(10 * SECOND), Some(Some(10 * SECOND)));
        assert_eq!(reset(stored()), ten_seconds);

        // "Remember me" for a day: still 10 s.
        let mut s = stored();
        s.set_max_age(DAY);
        assert_eq!(reset(s), ten_seconds);
    }

    #[test]
    fn a_session_past_its_absolute_timeout_is_outlived_and_retired() {
        let timeout = Some(100 * SECOND);
        let id = SessionId::generate();
        let s = timed_state(Incoming::Session(id.clone()), None, timeout);
        let at = |created: u64| {
            let mut record = record(&[("a", "1")]);
            record.insert(reserved::CREATED, created.to_string());
            record
        };
        assert!(!s.outlived(&at(NOW - 99_999)));
        assert!(s.outlived(&at(NOW - 100_000)));
        assert!(s.outlived(&at(0)));
        assert_eq!(
            remaining(&at(NOW - 40_000), timeout, NOW),
            Some(60 * SECOND)
        );
        assert_eq!(remaining(&at(NOW - 40_000), None, NOW), None);

        // Retired, it is deleted and its cookie expired; a new session takes another id.
        let mut s = s;
        s.retire(id.clone());
        assert_eq!(
            s.plan(&capped(100 * SECOND)),
            Plan::Delete {
                id: id.clone(),
                pending: None,
                left: None,
            }
        );
        let mut s = timed_state(Incoming::Session(id.clone()), None, timeout);
        s.retire(id.clone());
        s.put("cart", "[1]".into()).unwrap();
        let plan = s.plan(&capped(100 * SECOND));
        assert!(
            matches!(plan, Plan::Create { id: None, replaces: Some(ref old), .. } if *old == id),
            "{plan:?}"
        );
    }

    #[test]
    fn a_log_in_restarts_the_absolute_timeout() {
        let config = capped(100 * SECOND);
        let born = (NOW - 90_000).to_string();
        let (id, _) = stored(&[]);
        let mut s = timed_state(
            Incoming::Session(id.clone()),
            Some(&[("a", "1"), (reserved::CREATED, born.as_str())]),
            config.absolute_timeout,
        );
        s.regenerate();
        s.put(reserved::USER, "\"alice\"".into()).unwrap();
        let Plan::Create {
            record,
            cookie,
            replaces,
            ..
        } = s.plan(&config)
        else {
            panic!("not a create");
        };
        assert_eq!(replaces, Some(id));
        assert_eq!(record.created(), Some(NOW));
        assert_eq!(cookie, Some(MAX_AGE));
    }

    #[test]
    fn a_session_stored_before_the_timeout_was_set_starts_its_count_now() {
        let config = capped(100 * SECOND);
        let id = SessionId::generate();
        let s = timed_state(
            Incoming::Session(id),
            Some(&[("a", "1")]),
            config.absolute_timeout,
        );
        let Plan::Update {
            changes,
            cookie: None,
            ..
        } = s.plan(&config)
        else {
            panic!("not an update");
        };
        let created = NOW.to_string();
        assert_eq!(
            entries(&changes),
            [(reserved::CREATED, Some(created.as_str()))]
        );
        assert_eq!(changes.ttl(), None, "the expiry stays as it was");
    }

    #[test]
    fn the_creation_time_alone_is_not_worth_storing() {
        let mut record = SessionRecord::new(MAX_AGE);
        record.insert(reserved::CREATED, NOW.to_string());
        assert!(!record.holds_anything());
        assert!(!record.is_bookkeeping_only());
        record.insert(reserved::FLASH, "{}");
        assert!(record.is_bookkeeping_only());
    }

    #[test]
    fn a_log_out_or_a_new_log_in_takes_the_old_session_off_its_users_list() {
        let alice = "\"alice\"";
        let (id, mut s) = stored(&[(reserved::USER, alice)]);
        s.destroy();
        assert_eq!(
            s.plan(&config()),
            Plan::Delete {
                id,
                pending: None,
                left: Some(alice.to_string()),
            }
        );

        let (id, mut s) = stored(&[(reserved::USER, alice)]);
        s.put(reserved::USER, alice.into()).unwrap();
        s.regenerate();
        let Plan::Create { replaces, left, .. } = s.plan(&config()) else {
            panic!("not a create");
        };
        assert_eq!((replaces, left), (Some(id), Some(alice.to_string())));

        // An anonymous session leaves no list.
        let (_, mut s) = stored(&[("a", "1")]);
        s.put(reserved::USER, alice.into()).unwrap();
        s.regenerate();
        assert!(matches!(s.plan(&config()), Plan::Create { left: None, .. }));
    }

    #[test]
    fn a_logged_in_session_records_when_it_was_last_seen_on_writes_it_makes_anyway() {
        let (_, mut s) = stored(&[(reserved::USER, "\"alice\"")]);
        s.put("cart", "[1]".into()).unwrap();
        let Plan::Update { changes, .. } = s.plan(&config()) else {
            panic!("not an update");
        };
        let seen = NOW.to_string();
        assert_eq!(
            entries(&changes),
            [(reserved::SEEN, Some(seen.as_str())), ("cart", Some("[1]"))]
        );

        let (_, unchanged) = stored(&[(reserved::USER, "\"alice\"")]);
        assert_eq!(
            unchanged.plan(&config()),
            Plan::Nothing,
            "no write for it alone"
        );

        let (_, mut anonymous) = stored(&[]);
        anonymous.put("cart", "[1]".into()).unwrap();
        let Plan::Update { changes, .. } = anonymous.plan(&config()) else {
            panic!("not an update");
        };
        assert_eq!(entries(&changes), [("cart", Some("[1]"))]);
    }

    #[test]
    fn only_a_log_in_restarts_the_absolute_timeout_of_a_moved_session() {
        let config = capped(100 * SECOND);
        let born = (NOW - 90_000).to_string();
        let alice = "\"alice\"";
        let stored = [(reserved::USER, alice), (reserved::CREATED, born.as_str())];
        let id = SessionId::generate();

        // A regenerate alone keeps the count, and the 10 s left.
        let mut s = timed_state(
            Incoming::Session(id.clone()),
            Some(&stored),
            config.absolute_timeout,
        );
        s.regenerate();
        let Plan::Create {
            record,
            cookie,
            needs_old,
            ..
        } = s.plan(&config)
        else {
            panic!("not a create");
        };
        assert_eq!(record.created(), Some(NOW - 90_000));
        assert_eq!((record.ttl(), cookie), (10 * SECOND, Some(10 * SECOND)));
        assert!(needs_old, "a log-in carried over needs its old session");

        // A log-in, even as the same user, starts it again.
        let mut s = timed_state(
            Incoming::Session(id),
            Some(&stored),
            config.absolute_timeout,
        );
        s.put(reserved::USER, alice.into()).unwrap();
        s.regenerate();
        let Plan::Create {
            record, needs_old, ..
        } = s.plan(&config)
        else {
            panic!("not a create");
        };
        assert_eq!(record.created(), Some(NOW));
        assert!(!needs_old, "a log-in proves itself");
    }

    #[test]
    fn a_moved_session_keeps_the_lifetime_it_asked_for() {
        // "Remember me" for a day, its stored lifetime shortened to a minute by a cap.
        let day = DAY.as_millis().to_string();
        let (_, mut s) = stored(&[("a", "1"), (reserved::LIFETIME, day.as_str())]);
        s.record.set_ttl(MAX_AGE);
        s.regenerate();
        let Plan::Create { record, cookie, .. } = s.plan(&config()) else {
            panic!("not a create");
        };
        assert_eq!((record.ttl(), cookie), (DAY, Some(DAY)));

        let (_, mut s) = stored(&[("a", "1")]);
        s.set_max_age(DAY);
        assert_eq!(s.record.get(reserved::LIFETIME), Some(day.as_str()));
    }

    #[test]
    fn a_log_in_keeps_its_users_list_past_the_session() {
        let alice = "\"alice\"";
        let rolling = SessionConfig {
            rolling: true,
            ..config()
        };
        let capped = SessionConfig {
            absolute_timeout: Some(DAY),
            rolling: true,
            ..config()
        };
        // Its lifetime and a margin (an eighth, a minute at most); with `rolling`, a
        // quarter longer; under `absolute_timeout`, all of it and the margin.
        for (config, kept) in [
            (config(), MAX_AGE + MAX_AGE / 8),
            (rolling, MAX_AGE + MAX_AGE / 4),
            (capped, DAY + 60 * SECOND),
        ] {
            let mut s = state(Incoming::Nothing, None);
            s.put(reserved::USER, alice.into()).unwrap();
            let Plan::Create { record, list, .. } = s.plan(&config) else {
                panic!("not a create");
            };
            assert_eq!(list, Some((alice.to_string(), kept)));
            let listed = (NOW + millis(kept)).to_string();
            assert_eq!(record.get(reserved::LISTED), Some(listed.as_str()));
        }

        // An anonymous session has no list.
        let mut s = state(Incoming::Nothing, None);
        s.put("a", "1".into()).unwrap();
        let Plan::Create { record, list, .. } = s.plan(&config()) else {
            panic!("not a create");
        };
        assert_eq!((list, record.get(reserved::LISTED)), (None, None));
    }

    #[test]
    fn a_session_reset_past_its_lists_time_keeps_them_longer_first() {
        let alice = "\"alice\"";
        let listed = |millis: u64| (NOW + millis).to_string();
        let logged_in = |listed: &str| {
            let mut entries = vec![(reserved::USER, alice), ("a", "1")];
            if !listed.is_empty() {
                entries.push((reserved::LISTED, listed));
            }
            stored(&entries).1
        };
        let extension = |plan: Plan| {
            let Plan::Update {
                changes,
                lists_until,
                ..
            } = plan
            else {
                panic!("not an update");
            };
            let marked = changes
                .entries()
                .find(|(key, _)| *key == reserved::LISTED)
                .and_then(|(_, until)| until.map(String::from));
            (lists_until, marked)
        };

        // `set_max_age` past the time the lists are kept: they are kept as long, and a
        // margin, first.
        let mut s = logged_in(&listed(60_000));
        s.set_max_age(DAY);
        let kept = DAY + 60 * SECOND;
        assert_eq!(
            extension(s.plan(&config())),
            (Some((alice.to_string(), kept)), Some(listed(millis(kept))))
        );
        // Within it, margin included, or on an anonymous session: nothing.
        let mut s = logged_in(&listed(60_000));
        s.set_max_age(50 * SECOND);
        assert_eq!(extension(s.plan(&config())), (None, None));
        let mut s = logged_in(&listed(60_000));
        s.set_max_age(55 * SECOND);
        assert!(
            extension(s.plan(&config())).0.is_some(),
            "within the margin"
        );
        let (_, mut s) = stored(&[("a", "1")]);
        s.set_max_age(DAY);
        assert_eq!(extension(s.plan(&config())), (None, None));

        // `rolling`: once the session would outlive them, a quarter longer than it.
        let rolling = SessionConfig {
            rolling: true,
            ..config()
        };
        let s = logged_in(&listed(68_000));
        assert_eq!(extension(s.plan(&rolling)), (None, None));
        let kept = MAX_AGE + MAX_AGE / 4;
        for before in [listed(50_000), String::new()] {
            let s = logged_in(&before);
            assert_eq!(
                extension(s.plan(&rolling)),
                (Some((alice.to_string(), kept)), Some(listed(millis(kept))))
            );
        }

        // `absolute_timeout`: the log-in kept them for all of it, whatever the lifetime
        // reset to, on a route that loads the session or (`list_extension` alone) not.
        let capped = SessionConfig {
            absolute_timeout: Some(DAY),
            ..rolling
        };
        let logged_in_at = NOW - 3_600_000;
        let entries = [
            (reserved::USER, alice),
            (reserved::CREATED, &logged_in_at.to_string()),
            (
                reserved::LISTED,
                &(logged_in_at + millis(DAY) + 60_000).to_string(),
            ),
        ];
        let mut s = timed_state(
            Incoming::Session(SessionId::generate()),
            Some(&entries),
            capped.absolute_timeout,
        );
        s.set_max_age(2 * DAY);
        assert_eq!(extension(s.plan(&capped)), (None, None));
        assert_eq!(
            list_extension(&record(&entries), 2 * DAY, &capped, NOW),
            None
        );
    }
}
