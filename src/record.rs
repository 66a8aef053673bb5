//! What a store keeps for one session, and what one request changed in it.

use std::fmt;
use std::time::Duration;

/// The version of the record layout that stores persist. Stores that serialize records
/// write it beside the data and refuse (as [`StoreError::Corrupt`]) a version they do not
/// know, so that an upgrade never misreads old data.
///
/// [`StoreError::Corrupt`]: crate::error::StoreError::Corrupt
pub const FORMAT_VERSION: u32 = 1;

/// The entry keys this crate keeps in a session. They start with `$`, which application
/// keys may not.
pub(crate) mod reserved {
    /// The logged-in user (`AuthSession::login`).
    pub(crate) const USER: &str = "$user";
    /// The pending flash message (`SessionFlash`).
    pub(crate) const FLASH: &str = "$flash";
    /// Present when the session has a lifetime of its own (`SessionHandle::set_max_age`):
    /// its cookie persists even with `browser_session`.
    pub(crate) const LIFETIME: &str = "$lifetime";
    /// When the session began, in milliseconds since the Unix epoch: its creation, or the
    /// log-in that moved it to a new id. Kept when `absolute_timeout` is set, which counts
    /// from it.
    pub(crate) const CREATED: &str = "$created";
    /// When a logged-in session was last written (by a change, or a `rolling` refresh), in
    /// milliseconds since the Unix epoch: its "last seen" in the list of a user's sessions.
    pub(crate) const SEEN: &str = "$seen";
    /// When the session was last refreshed (created, or its lifetime reset), in
    /// milliseconds since the Unix epoch; kept with `touch_after` alone, which refreshes an
    /// unchanged session only once this is that old.
    pub(crate) const TOUCHED: &str = "$touched";
    /// Marks the record that lists a user's sessions, and holds that user: such a record
    /// counts as logged in, so no flood of strangers evicts it before a real session.
    pub(crate) const INDEX: &str = "$index";
    /// On a logged-in session: until when its user's lists are kept (at least), in
    /// milliseconds since the Unix epoch. A refresh that lets the session live past it
    /// keeps the lists longer first.
    pub(crate) const LISTED: &str = "$listed";
    /// On a list of a user's sessions: until when it must live, past every session on it,
    /// in milliseconds since the Unix epoch.
    pub(crate) const UNTIL: &str = "$until";
    /// Set on a loaded record, never stored: it held values written before sealing at
    /// rest, which its commit seals (the store's sealing, `store::sealed`).
    pub(crate) const UNSEALED: &str = "$unsealed";

    /// Whether `key` describes the session rather than holds anything for it: a session
    /// holding only these is not worth storing.
    pub(crate) fn is_metadata(key: &str) -> bool {
        key == LIFETIME || key == CREATED || key == SEEN || key == LISTED || key == TOUCHED
    }

    /// Whether `key` holds what the application stored for the visitor: its own entries
    /// and the logged-in user. The crate's other entries (a flash message) are
    /// bookkeeping: a session holding only those is not worth keeping for long.
    pub(crate) fn is_app_data(key: &str) -> bool {
        !key.starts_with('$') || key == USER
    }
}

/// One session's data: named entries, each the JSON text of one typed value, and the
/// session's lifetime.
///
/// Entries are keyed by `SessionEntry::KEY`, an explicit and
/// stable name, so several typed views share one record and a record survives compiler
/// upgrades.
///
/// # Example
///
/// ```
/// use std::time::Duration;
/// use rocket_server_sessions::store::{Changes, SessionRecord};
///
/// let mut record = SessionRecord::new(Duration::from_secs(60));
/// let mut changes = Changes::default();
/// changes.set("cart", r#"["apple"]"#);
/// record.apply(&changes);
/// assert_eq!(record.get("cart"), Some(r#"["apple"]"#));
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct SessionRecord {
    /// Sorted by key. A session holds a handful of entries: a sorted `Vec` is one small
    /// allocation where a `BTreeMap` allocates a node of eleven slots.
    entries: Vec<(String, String)>,
    ttl: Duration,
}

/// The position of `key` in `entries` (sorted by key), or where it would go.
fn find<V>(entries: &[(String, V)], key: &str) -> Result<usize, usize> {
    entries.binary_search_by(|(k, _)| k.as_str().cmp(key))
}

/// Sets `key` to `value` in `entries`, keeping them sorted. The key is borrowed to look it
/// up and copied only when it is new.
fn put<V>(entries: &mut Vec<(String, V)>, key: impl AsRef<str> + Into<String>, value: V) {
    match find(entries, key.as_ref()) {
        Ok(i) => entries[i].1 = value,
        Err(i) => entries.insert(i, (key.into(), value)),
    }
}

impl SessionRecord {
    /// An empty record that lives for `ttl` after it is stored or touched.
    pub fn new(ttl: Duration) -> Self {
        SessionRecord {
            entries: Vec::new(),
            ttl,
        }
    }

    /// How long the session lives after it is stored or touched.
    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    /// Sets how long the session lives after it is stored or touched.
    pub fn set_ttl(&mut self, ttl: Duration) {
        self.ttl = ttl;
    }

    /// The JSON text of the entry named `key`.
    pub fn get(&self, key: &str) -> Option<&str> {
        find(&self.entries, key)
            .ok()
            .map(|i| self.entries[i].1.as_str())
    }

    /// Sets the entry `key` to the JSON text `value`.
    pub fn insert(&mut self, key: impl AsRef<str> + Into<String>, value: impl Into<String>) {
        put(&mut self.entries, key, value.into());
    }

    /// Removes the entry `key`, returning its JSON text.
    pub fn remove(&mut self, key: &str) -> Option<String> {
        self.take(key).map(|(_, json)| json)
    }

    /// Removes the entry `key`, returning its key and JSON text without copying them.
    pub(crate) fn take(&mut self, key: &str) -> Option<(String, String)> {
        find(&self.entries, key)
            .ok()
            .map(|i| self.entries.remove(i))
    }

    /// The entries, ordered by key, moved out of the record.
    pub(crate) fn into_entries(self) -> Vec<(String, String)> {
        self.entries
    }

    /// Every entry, as `(key, JSON text)`, ordered by key.
    pub fn entries(&self) -> impl ExactSizeIterator<Item = (&str, &str)> {
        self.entries.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// The entries' values, by key, to change in place (sealing at rest).
    pub(crate) fn values_mut(&mut self) -> impl Iterator<Item = (&str, &mut String)> {
        self.entries.iter_mut().map(|(k, v)| (k.as_str(), v))
    }

    /// The bytes of every entry's key and JSON text: what `max_session_size` limits.
    pub(crate) fn size(&self) -> usize {
        self.entries.iter().map(|(k, v)| k.len() + v.len()).sum()
    }

    /// `true` when the record holds no entry.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// `true` when a user is logged in to the session
    /// (`AuthSession::login`).
    ///
    /// Stores that keep a cap let a stranger displace only strangers: a new anonymous
    /// session never evicts one a user is logged in to (a list of a user's sessions,
    /// [`is_user_list`](Self::is_user_list), counts as logged in here).
    pub fn is_authenticated(&self) -> bool {
        self.get(reserved::USER).is_some() || self.get(reserved::INDEX).is_some()
    }

    /// `true` when the record is the list of a user's sessions (sign out everywhere), not
    /// a session. Stores that keep a cap leave lists out of the count and never evict
    /// them: a list lives only as long as its sessions need.
    pub fn is_user_list(&self) -> bool {
        self.get(reserved::INDEX).is_some()
    }

    /// `true` when the record holds the crate's own bookkeeping (a flash message) and none
    /// of the application's data.
    pub(crate) fn is_bookkeeping_only(&self) -> bool {
        self.holds_anything() && !self.holds_app_data()
    }

    /// `true` when the record holds an entry beyond those that describe the session (its
    /// own lifetime, its creation time): something worth storing.
    pub(crate) fn holds_anything(&self) -> bool {
        self.entries.iter().any(|(k, _)| !reserved::is_metadata(k))
    }

    /// When the session began (see [`reserved::CREATED`]), in milliseconds since the Unix
    /// epoch.
    pub(crate) fn created(&self) -> Option<u64> {
        self.get(reserved::CREATED)?.parse().ok()
    }

    /// Until when the logged-in session's user's lists are kept (see
    /// [`reserved::LISTED`]), in milliseconds since the Unix epoch.
    pub(crate) fn listed(&self) -> Option<u64> {
        self.get(reserved::LISTED)?.parse().ok()
    }

    /// `true` when the record holds any of the application's data (see
    /// [`reserved::is_app_data`]).
    pub(crate) fn holds_app_data(&self) -> bool {
        self.entries.iter().any(|(k, _)| reserved::is_app_data(k))
    }

    /// Applies a request's changes: sets and removes entries and, when the changes carry a
    /// new lifetime, takes it.
    pub fn apply(&mut self, changes: &Changes) {
        for (key, value) in &changes.entries {
            match value {
                Some(value) => self.insert(key.as_str(), value.as_str()),
                None => drop(self.remove(key)),
            }
        }

        if let Some(ttl) = changes.ttl {
            self.ttl = ttl;
        }
    }
}

/// How long the session `record` may still live under `absolute_timeout`, seen at `now`
/// (milliseconds since the Unix epoch): `None` without a timeout, zero once it has passed.
/// A session without a creation time (stored before the timeout was set) counts from now.
pub(crate) fn remaining(
    record: &SessionRecord,
    absolute_timeout: Option<Duration>,
    now: u64,
) -> Option<Duration> {
    let timeout = absolute_timeout?;
    let deadline = record
        .created()
        .unwrap_or(now)
        .saturating_add(crate::time::millis(timeout));
    // A start in the future (another instance's clock ahead of ours) grants no more.
    Some(Duration::from_millis(deadline.saturating_sub(now)).min(timeout))
}

/// `ttl`, cut to what remains of the session `record`'s absolute timeout at `now`: no
/// lifetime reaches past it.
pub(crate) fn within_timeout(
    ttl: Duration,
    record: &SessionRecord,
    absolute_timeout: Option<Duration>,
    now: u64,
) -> Duration {
    remaining(record, absolute_timeout, now).map_or(ttl, |left| ttl.min(left))
}

/// Whether the session `record` has passed its absolute timeout at `now`.
pub(crate) fn outlived(
    record: &SessionRecord,
    absolute_timeout: Option<Duration>,
    now: u64,
) -> bool {
    remaining(record, absolute_timeout, now) == Some(Duration::ZERO)
}

/// What one request changed in a session: the entries it set or removed and, when the
/// expiry is to be reset, the lifetime to reset it to.
///
/// Stores apply changes entry by entry (`SessionStore::commit`), so two requests that
/// change different entries of one session both keep their change.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Changes {
    /// Sorted by key; `None` is a removal.
    entries: Vec<(String, Option<String>)>,
    ttl: Option<Duration>,
}

impl Changes {
    /// Records that the entry `key` was set to the JSON text `value`.
    pub fn set(&mut self, key: impl AsRef<str> + Into<String>, value: impl Into<String>) {
        put(&mut self.entries, key, Some(value.into()));
    }

    /// Records that the entry `key` was removed.
    pub fn remove(&mut self, key: impl AsRef<str> + Into<String>) {
        put(&mut self.entries, key, None);
    }

    /// Records that the expiry is to be reset to now + `ttl`, and `ttl` kept as the
    /// session's lifetime.
    pub fn reset_ttl(&mut self, ttl: Duration) {
        self.ttl = Some(ttl);
    }

    /// The changed entries, ordered by key: `Some(json)` for a set, `None` for a removal.
    pub fn entries(&self) -> impl Iterator<Item = (&str, Option<&str>)> {
        self.entries.iter().map(|(k, v)| (k.as_str(), v.as_deref()))
    }

    /// Each value set, with its key, to change in place (sealing at rest).
    pub(crate) fn values_mut(&mut self) -> impl Iterator<Item = (&str, &mut String)> {
        let entries = self.entries.iter_mut();
        entries.filter_map(|(k, v)| Some((k.as_str(), v.as_mut()?)))
    }

    /// The new lifetime, when the expiry is to be reset.
    pub fn ttl(&self) -> Option<Duration> {
        self.ttl
    }

    /// `true` when no entry changed (the lifetime may still be reset).
    pub fn has_no_entries(&self) -> bool {
        self.entries.is_empty()
    }

    /// `true` when nothing changed at all.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty() && self.ttl.is_none()
    }

    /// What the changes do to the logged-in user: `Some(true)` when they log one in,
    /// `Some(false)` when they log one out, `None` when they leave that as it was. See
    /// [`SessionRecord::is_authenticated`].
    pub fn authenticates(&self) -> Option<bool> {
        find(&self.entries, reserved::USER)
            .ok()
            .map(|i| self.entries[i].1.is_some())
    }
}

/// Prints the entries' keys and sizes, never their values: they are session data.
impl fmt::Debug for SessionRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let entries = self.entries.iter().map(|(k, v)| (k, Bytes(v.len())));
        f.debug_struct("SessionRecord")
            .field("entries", &DebugMap(entries))
            .field("ttl", &self.ttl)
            .finish()
    }
}

/// Prints the changed entries' keys and sizes, never their values.
impl fmt::Debug for Changes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let entries = self
            .entries
            .iter()
            .map(|(k, v)| (k, v.as_ref().map(|v| Bytes(v.len()))));
        f.debug_struct("Changes")
            .field("entries", &DebugMap(entries))
            .field("ttl", &self.ttl)
            .finish()
    }
}

/// A value's size, in place of the value.
struct Bytes(usize);

impl fmt::Debug for Bytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "<{} bytes>", self.0)
    }
}

/// Prints key/value pairs as a map.
struct DebugMap<I>(I);

impl<I, K, V> fmt::Debug for DebugMap<I>
where
    I: Iterator<Item = (K, V)> + Clone,
    K: fmt::Debug,
    V: fmt::Debug,
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.0.clone()).finish()
    }
}
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn apply_sets_removes_and_keeps_untouched_entries() {
        let mut record = SessionRecord::new(Duration::from_secs(5));
        record.insert("a", "1");
        record.insert("b", "2");

        let mut changes = Changes::default();
        changes.set("a", "10");
        changes.remove("b");
        changes.set("c", "3");
        record.apply(&changes);

        let entries: Vec<_> = record.entries().collect();
        assert_eq!(entries, [("a", "10"), ("c", "3")]);
        assert_eq!(record.ttl(), Duration::from_secs(5));
    }

    #[test]
    fn debug_prints_keys_and_sizes_never_values() {
        let mut record = SessionRecord::new(Duration::from_secs(5));
        record.insert("cart", r#""secret-item""#);
        let mut changes = Changes::default();
        changes.set("cart", r#""other-secret""#);
        changes.remove("gone");
        for debug in [format!("{record:?}"), format!("{changes:?}")] {
            assert!(debug.contains("\"cart\""), "{debug}");
            assert!(!debug.contains("secret"), "{debug}");
        }
        assert!(format!("{changes:?}").contains("\"gone\": None"));
    }

    #[test]
    fn the_last_change_to_an_entry_wins() {
        let mut changes = Changes::default();
        changes.set("a", "1");
        changes.remove("a");
        assert_eq!(changes.entries().collect::<Vec<_>>(), [("a", None)]);
        changes.set("a", "2");
        assert_eq!(changes.entries().collect::<Vec<_>>(), [("a", Some("2"))]);
    }

    #[test]
    fn a_ttl_reset_is_a_change_without_entries() {
        let mut changes = Changes::default();
        assert!(changes.is_empty());
        changes.reset_ttl(Duration::from_secs(9));
        assert!(!changes.is_empty());
        assert!(changes.has_no_entries());

        let mut record = SessionRecord::new(Duration::from_secs(1));
        record.apply(&changes);
        assert_eq!(record.ttl(), Duration::from_secs(9));
    }

    mod prop {
        use super::super::strategies::{changes, record};
        use super::*;
        use proptest::prelude::*;

        proptest! {
            #![proptest_config(crate::proptest_cases::config())]

            /// Two requests that change different entries of one session both keep their
            /// change, in either order; the entries neither touched stay as they were.
            #[test]
            fn prop_commits_to_different_entries_both_survive(
                record in record(),
                first in changes(),
                second in changes(),
            ) {
                let theirs: Vec<&str> = first.entries().map(|(k, _)| k).collect();
                let mut disjoint = Changes::default();
                for (key, value) in second.entries().filter(|(k, _)| !theirs.contains(k)) {
                    match value {
                        Some(value) => disjoint.set(key, value),
                        None => disjoint.remove(key),
                    }
                }
                let mut one_way = record.clone();
                one_way.apply(&first);
                one_way.apply(&disjoint);
                let mut other_way = record.clone();
                other_way.apply(&disjoint);
                other_way.apply(&first);
                prop_assert_eq!(one_way.entries().collect::<Vec<_>>(), other_way.entries().collect::<Vec<_>>());
                for (key, value) in first.entries().chain(disjoint.entries()) {
                    prop_assert_eq!(one_way.get(key), value);
                }
                for (key, value) in record.entries() {
                    let touched = first.entries().chain(disjoint.entries()).any(|(k, _)| k == key);
                    if !touched {
                        prop_assert_eq!(one_way.get(key), Some(value));
                    }
                }
            }
        }
    }
}

/// Records and changes for property tests.
#[cfg(test)]
pub(crate) mod strategies {
    use super::*;
    use proptest::prelude::*;

    fn entries() -> impl Strategy<Value = Vec<(String, String)>> {
        proptest::collection::vec((".{0,12}", ".{0,40}"), 0..8)
    }

    pub(crate) fn record() -> impl Strategy<Value = SessionRecord> {
        (entries(), any::<u32>()).prop_map(|(entries, ttl)| {
            let mut record = SessionRecord::new(Duration::from_millis(ttl.into()));
            for (key, value) in entries {
                record.insert(key, value);
            }
            record
        })
    }

    pub(crate) fn changes() -> impl Strategy<Value = Changes> {
        let entry = (".{0,12}", proptest::option::of(".{0,40}"));
        let ttl = proptest::option::of(any::<u32>());
        (proptest::collection::vec(entry, 0..8), ttl).prop_map(|(entries, ttl)| {
            let mut changes = Changes::default();
            for (key, value) in entries {
                match value {
                    Some(value) => changes.set(key, value),
                    None => changes.remove(key),
                }
            }
            if let Some(ttl) = ttl {
                changes.reset_ttl(Duration::from_millis(ttl.into()));
            }
            changes
        })
    }
}
