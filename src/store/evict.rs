//! The rule every store that keeps a cap follows, the same for all of them: **a stranger
//! only ever displaces strangers.**
//!
//! - A user's list of sessions (sign out everywhere) is outside the cap: never counted,
//!   never evicted. It lives only as long as its sessions need (its own lifetime), so it
//!   costs nothing once they end, and no number of accounts fills a store with lists.
//! - A new anonymous session in a full store evicts anonymous sessions, closest to expiry
//!   first, a batch at once. When none is left to evict, the store is full of signed-in
//!   sessions and the new one is refused ([`StoreError::Full`](crate::store::StoreError::Full),
//!   a `503`): no stranger ever ends a signed-in session.
//! - A sign-in in a full store evicts anonymous sessions first, and signed-in sessions
//!   closest to expiry only when signed-in sessions fill the store.
//! - Growing a session never evicts: caps count sessions, not bytes.
//!
//! [`room`] is that rule as a pure function; each store counts its sessions and carries out
//! what it answers (Redis mirrors it in its create script).

use crate::record::SessionRecord;

/// How long, in milliseconds, a store that refused a stranger because signed-in sessions
/// fill it refuses strangers at once, without counting or scanning again, while it stays
/// full: a flood of them never queues scans of the whole store ahead of the sign-ins.
/// The file and SQL stores' (the memory store never scans; Redis refuses in its script).
#[cfg(any(
    all(feature = "file", unix),
    feature = "postgres",
    feature = "sqlite",
    feature = "mysql"
))]
pub(crate) const REFUSED_FOR: u64 = 1_000;

/// Whether a refusal of a stranger at `refused_at` (milliseconds, 0 for never) is under
/// [`REFUSED_FOR`] old at `now`. A clock stepped back counts as a refusal long past, not
/// one without end.
#[cfg(any(
    all(feature = "file", unix),
    feature = "postgres",
    feature = "sqlite",
    feature = "mysql"
))]
pub(crate) fn refused_lately(refused_at: u64, now: u64) -> bool {
    refused_at > 0
        && now
            .checked_sub(refused_at)
            .is_some_and(|age| age < REFUSED_FOR)
}

/// What a stored record is to a store's cap.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Class {
    /// A session no user is logged in to.
    Anonymous,
    /// A session a user is logged in to.
    SignedIn,
    /// The list of a user's sessions: outside the cap.
    List,
}

impl Class {
    /// The class of `record`.
    pub(crate) fn of(record: &SessionRecord) -> Class {
        if record.is_user_list() {
            Class::List
        } else if record.is_authenticated() {
            Class::SignedIn
        } else {
            Class::Anonymous
        }
    }

    /// Whether sessions of this class count under the cap.
    pub(crate) fn counts(self) -> bool {
        self != Class::List
    }
}

/// What a full store evicts to make room for one more session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Evict {
    /// How many anonymous sessions go, those closest to expiry.
    pub(crate) anonymous: usize,
    /// How many signed-in sessions go, those closest to expiry.
    pub(crate) signed_in: usize,
}

impl Evict {
    /// Whether nothing is to go.
    pub(crate) fn is_none(self) -> bool {
        self.anonymous == 0 && self.signed_in == 0
    }
}

/// What a store holding `anonymous` and `signed_in` live sessions (expired ones already
/// dropped) under `cap` does for a new session of `class`: `Some` of what to evict first
/// (nothing when there is room), or `None` to refuse it. A full store evicts anonymous
/// sessions `batch` at a time (at least what brings it under the cap), so that a flood of
/// strangers finds room for the next ones without evicting on each.
pub(crate) fn room(
    class: Class,
    anonymous: usize,
    signed_in: usize,
    cap: usize,
    batch: usize,
) -> Option<Evict> {
    let held = anonymous + signed_in;
    if !class.counts() || held < cap {
        return Some(Evict::default());
    }
    let over = held + 1 - cap;
    let anonymous = over.max(batch).min(anonymous);
    match (class, over.saturating_sub(anonymous)) {
        (_, 0) => Some(Evict {
            anonymous,
            signed_in: 0,
        }),
        // Creations in flight took the store past its cap, and the anonymous sessions
        // left do not bring it back under: a stranger takes their place, no more.
        (Class::Anonymous, _) if anonymous > 0 => Some(Evict {
            anonymous,
            signed_in: 0,
        }),
        (Class::Anonymous, _) => None,
        (_, signed_in) => Some(Evict {
            anonymous,
            signed_in,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn evict(anonymous: usize, signed_in: usize) -> Option<Evict> {
        Some(Evict {
            anonymous,
            signed_in,
        })
    }

    #[cfg(any(
        all(feature = "file", unix),
        feature = "postgres",
        feature = "sqlite",
        feature = "mysql"
    ))]
    #[test]
    fn a_refusal_stands_for_a_second_on_a_clock_that_moves_forward() {
        assert!(!refused_lately(0, 5_000), "never refused");
        assert!(refused_lately(5_000, 5_000));
        assert!(refused_lately(5_000, 5_999));
        assert!(!refused_lately(5_000, 6_000));
        assert!(!refused_lately(5_000, 4_000), "a clock stepped back");
    }

    #[test]
    fn a_store_with_room_evicts_nothing() {
        assert_eq!(room(Class::Anonymous, 3, 5, 9, 2), evict(0, 0));
        assert_eq!(room(Class::SignedIn, 0, 8, 9, 2), evict(0, 0));
    }

    #[test]
    fn a_list_never_counts_and_never_evicts() {
        assert_eq!(room(Class::List, 0, 9, 9, 2), evict(0, 0));
        assert_eq!(room(Class::List, 500, 500, 9, 2), evict(0, 0));
    }

    #[test]
    fn a_stranger_only_displaces_strangers() {
        // A batch of anonymous sessions, at least what brings the store under its cap.
        assert_eq!(room(Class::Anonymous, 5, 4, 9, 2), evict(2, 0));
        assert_eq!(room(Class::Anonymous, 5, 8, 9, 2), evict(5, 0));
        // The last anonymous session goes for the stranger, however many signed-in ones.
        assert_eq!(room(Class::Anonymous, 1, 8, 9, 2), evict(1, 0));
        // Signed-in sessions fill the store: the stranger is refused.
        assert_eq!(room(Class::Anonymous, 0, 9, 9, 2), None);
        assert_eq!(room(Class::Anonymous, 0, 30, 9, 2), None);
    }

    #[test]
    fn a_sign_in_evicts_strangers_first_then_the_signed_in_when_they_fill_the_store() {
        assert_eq!(room(Class::SignedIn, 5, 4, 9, 2), evict(2, 0));
        assert_eq!(room(Class::SignedIn, 1, 9, 9, 2), evict(1, 1));
        assert_eq!(room(Class::SignedIn, 0, 9, 9, 2), evict(0, 1));
        assert_eq!(room(Class::SignedIn, 0, 12, 9, 2), evict(0, 4));
    }
}
