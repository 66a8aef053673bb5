//! What a store keeps for one session, and what one request changed in it.

use std::time::Duration;

/// The version of the record layout that stores persist. Stores that serialize records
/// write it beside the data and refuse (as [`StoreError::Corrupt`]) a version they do not
/// know, so that an upgrade never misreads old data.
///
/// [`StoreError::Corrupt`]: crate::StoreError::Corrupt
pub const FORMAT_VERSION: u32 = 1;

/// The entry keys this crate keeps in a session. They start with `$`, which application
/// keys may not.
pub(crate) mod reserved {
    /// The logged-in user ([`Auth::login`](crate::Auth::login)).
    pub(crate) const USER: &str = "$user";
    /// The pending flash message ([`Flash`](crate::Flash)).
    pub(crate) const FLASH: &str = "$flash";
    /// Present when the session has a lifetime of its own
    /// ([`Session::set_max_age`](crate::Session::set_max_age)): its cookie persists even
    /// with `browser_session`.
    pub(crate) const LIFETIME: &str = "$lifetime";

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
/// Entries are keyed by [`SessionEntry::KEY`](crate::SessionEntry::KEY), an explicit and
/// stable name, so several typed views share one record and a record survives compiler
/// upgrades.
///
/// # Example
///
/// ```
/// use std::time::Duration;
/// use rocket_server_sessions::{Changes, SessionRecord};
///
/// let mut record = SessionRecord::new(Duration::from_secs(60));
/// let mut changes = Changes::default();
/// changes.set("cart", r#"["apple"]"#);
/// record.apply(&changes);
/// assert_eq!(record.get("cart"), Some(r#"["apple"]"#));
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
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
    pub fn entries(&self) -> impl Iterator<Item = (&str, &str)> {
        self.entries.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// The bytes of every entry's key and JSON text: what `max_session_size` limits.
    pub(crate) fn size(&self) -> usize {
        self.entries.iter().map(|(k, v)| k.len() + v.len()).sum()
    }

    /// `true` when the record holds no entry.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// `true` when a user is logged in to the session ([`Auth::login`](crate::Auth::login)).
    ///
    /// Stores that must evict to stay under their cap evict anonymous sessions first: a
    /// flood of visitors without an account never pushes a logged-in user out while an
    /// anonymous session is left to go.
    pub fn is_authenticated(&self) -> bool {
        self.get(reserved::USER).is_some()
    }

    /// `true` when the record holds entries, all of them the crate's own bookkeeping (a
    /// flash message) rather than the application's data.
    pub(crate) fn is_bookkeeping_only(&self) -> bool {
        !self.is_empty() && !self.holds_app_data()
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

/// A compact in-memory encoding of a record, what the memory store keeps in its slab: the
/// lifetime in milliseconds, then each entry as a length-prefixed key and value (lengths as
/// `u32` LE). Only [`MemoryStore`](crate::MemoryStore) uses it: it never leaves the process.
/// The encoders return a `Vec` as built: the store copies a small one into a slot, and
/// keeps a large one (over 1 KiB) as it is.
impl SessionRecord {
    pub(crate) fn to_bytes(&self) -> Vec<u8> {
        let size = self
            .entries
            .iter()
            .map(|(k, v)| k.len() + v.len())
            .sum::<usize>();
        let mut out = Encoder::new(self.ttl, size + 8 * self.entries.len());
        for (key, value) in &self.entries {
            out.entry(key, value);
        }
        out.finish()
    }

    pub(crate) fn ttl_from_bytes(bytes: &[u8]) -> Option<Duration> {
        let ttl = bytes.first_chunk::<8>()?;
        Some(Duration::from_millis(u64::from_le_bytes(*ttl)))
    }

    pub(crate) fn from_bytes(bytes: &[u8]) -> Option<SessionRecord> {
        let (ttl, entries) = Entries::of(bytes)?;
        let mut record = SessionRecord::new(ttl);
        for entry in entries {
            let (key, value) = entry?;
            record.insert(key, value);
        }
        Some(record)
    }

    /// Applies `changes` to an encoded record without decoding it into owned strings: the
    /// sorted entries and the sorted changes are merged straight into the new encoding.
    pub(crate) fn apply_to_bytes(bytes: &[u8], changes: &Changes) -> Option<Vec<u8>> {
        let (ttl, entries) = Entries::of(bytes)?;
        let added = changes
            .entries
            .iter()
            .map(|(k, v)| k.len() + v.as_ref().map_or(0, String::len) + 8);
        let mut out = Encoder::new(
            changes.ttl.unwrap_or(ttl),
            bytes.len() + added.sum::<usize>(),
        );
        let mut pending = changes.entries.iter().peekable();
        for entry in entries {
            let (key, value) = entry?;
            while let Some((k, v)) = pending.next_if(|(k, _)| k.as_str() < key) {
                if let Some(v) = v {
                    out.entry(k, v);
                }
            }
            match pending.next_if(|(k, _)| k == key) {
                Some((_, Some(new))) => out.entry(key, new),
                Some((_, None)) => {}
                None => out.entry(key, value),
            }
        }
        for (key, value) in pending {
            if let Some(value) = value {
                out.entry(key, value);
            }
        }
        Some(out.finish())
    }
}

struct Encoder(Vec<u8>);

impl Encoder {
    fn new(ttl: Duration, capacity: usize) -> Self {
        let mut bytes = Vec::with_capacity(8 + capacity);
        bytes.extend_from_slice(&crate::time::millis(ttl).to_le_bytes());
        Encoder(bytes)
    }

    fn entry(&mut self, key: &str, value: &str) {
        for text in [key, value] {
            let len = u32::try_from(text.len()).expect("a session entry is under 4 GiB");
            self.0.extend_from_slice(&len.to_le_bytes());
            self.0.extend_from_slice(text.as_bytes());
        }
    }

    fn finish(self) -> Vec<u8> {
        self.0
    }
}

/// The entries of an encoded record, in order; an item is `None` where the bytes are
/// malformed.
struct Entries<'a>(&'a [u8]);

impl<'a> Entries<'a> {
    fn of(bytes: &'a [u8]) -> Option<(Duration, Entries<'a>)> {
        let (ttl, rest) = bytes.split_first_chunk::<8>()?;
        Some((
            Duration::from_millis(u64::from_le_bytes(*ttl)),
            Entries(rest),
        ))
    }

    fn text(&mut self) -> Option<&'a str> {
        let (len, rest) = self.0.split_first_chunk::<4>()?;
        let (text, rest) =
            rest.split_at_checked(usize::try_from(u32::from_le_bytes(*len)).ok()?)?;
        self.0 = rest;
        std::str::from_utf8(text).ok()
    }
}

impl<'a> Iterator for Entries<'a> {
    type Item = Option<(&'a str, &'a str)>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.0.is_empty() {
            return None;
        }

        let entry = self.text().zip(self.text());
        if entry.is_none() {
            // Malformed: report it once and stop.
            self.0 = &[];
        }
        Some(entry)
    }
}

/// What one request changed in a session: the entries it set or removed and, when the
/// expiry is to be reset, the lifetime to reset it to.
///
/// Stores apply changes entry by entry ([`SessionStore::commit`]), so two requests that
/// change different entries of one session both keep their change.
///
/// [`SessionStore::commit`]: crate::SessionStore::commit
#[derive(Clone, Debug, Default, PartialEq, Eq)]
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
    fn bytes_round_trip_and_reject_truncation() {
        let mut record = SessionRecord::new(Duration::from_millis(1500));
        assert_eq!(
            SessionRecord::from_bytes(&record.to_bytes()),
            Some(record.clone())
        );
        record.insert("cart", r#"["apple","żółw"]"#);
        record.insert("", "");
        let bytes = record.to_bytes();
        assert_eq!(
            SessionRecord::ttl_from_bytes(&bytes),
            Some(Duration::from_millis(1500))
        );
        assert_eq!(SessionRecord::from_bytes(&bytes), Some(record));
        // Cutting between entries leaves a shorter valid record; anywhere else, none.
        let between_entries = [8, 8 + 4 + 4];
        for cut in (0..bytes.len()).filter(|cut| !between_entries.contains(cut)) {
            assert_eq!(
                SessionRecord::from_bytes(&bytes[..cut]),
                None,
                "cut at {cut}"
            );
        }
    }

    #[test]
    fn applying_to_bytes_is_applying_to_the_record() {
        let mut record = SessionRecord::new(Duration::from_secs(5));
        for (k, v) in [("b", "2"), ("d", "4"), ("f", "6")] {
            record.insert(k, v);
        }
        let mut changes = Changes::default();
        changes.set("a", "1");
        changes.set("d", "40");
        changes.remove("f");
        changes.remove("zz");
        changes.set("e", "5");
        changes.set("g", "7");

        let bytes = SessionRecord::apply_to_bytes(&record.to_bytes(), &changes).unwrap();
        record.apply(&changes);
        assert_eq!(SessionRecord::from_bytes(&bytes), Some(record.clone()));

        changes.reset_ttl(Duration::from_secs(60));
        let bytes = SessionRecord::apply_to_bytes(&record.to_bytes(), &changes).unwrap();
        record.apply(&changes);
        assert_eq!(SessionRecord::from_bytes(&bytes), Some(record));
        assert_eq!(SessionRecord::apply_to_bytes(&[1, 2, 3], &changes), None);
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
        use super::*;
        use proptest::prelude::*;

        fn entries() -> impl Strategy<Value = Vec<(String, String)>> {
            proptest::collection::vec((".{0,12}", ".{0,40}"), 0..8)
        }

        fn record() -> impl Strategy<Value = SessionRecord> {
            (entries(), any::<u32>()).prop_map(|(entries, ttl)| {
                let mut record = SessionRecord::new(Duration::from_millis(ttl.into()));
                for (key, value) in entries {
                    record.insert(key, value);
                }
                record
            })
        }

        fn changes() -> impl Strategy<Value = Changes> {
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

        proptest! {
            #![proptest_config(crate::proptest_cases::config())]

            #[test]
            fn prop_the_codec_round_trips(record in record()) {
                prop_assert_eq!(SessionRecord::from_bytes(&record.to_bytes()), Some(record));
            }

            #[test]
            fn prop_arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..200), changes in changes()) {
                let _ = SessionRecord::from_bytes(&bytes);
                let _ = SessionRecord::ttl_from_bytes(&bytes);
                let _ = SessionRecord::apply_to_bytes(&bytes, &changes);
            }

            #[test]
            fn prop_applying_to_bytes_is_applying_to_the_record(record in record(), changes in changes()) {
                let bytes = SessionRecord::apply_to_bytes(&record.to_bytes(), &changes);
                let mut applied = record;
                applied.apply(&changes);
                prop_assert_eq!(bytes.and_then(|b| SessionRecord::from_bytes(&b)), Some(applied));
            }

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
