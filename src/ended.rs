//! Why a signed-in session ended, as its cookie tells: pure data.
//!
//! A signed-in session's cookie carries, signed with the id, a *stamp*: when the session
//! ends in the store as of its last write, and what ends it then (inactivity, its fixed
//! lifetime, or its absolute timeout). The stamp is sent again with every write that moves
//! the end, so the cookie and the store agree on it. When a request's cookie names a
//! session the store no longer holds, the stamp tells why: past its end, the session timed
//! out; before it, something else ended it (signed out everywhere, revoked, displaced).
//! Nothing is stored for this, and a stranger's cookie carries no stamp.

use crate::time::MAX_LIFETIME;

/// How far past a stamp's end a session counts as timed out, not revoked: the store's
/// clock and expiry rounding (Redis rounds nothing, but a store may sweep a second early),
/// and the clocks of instances that disagree by that much.
const SLACK_MILLIS: u64 = 2_000;

/// Why the signed-in session a request's cookie named has ended:
/// [`SessionHandle::ended`](crate::SessionHandle::ended).
///
/// # Example
///
/// ```
/// use rocket_server_sessions::{Ended, SessionHandle};
///
/// #[rocket::get("/login")]
/// fn login_page(session: SessionHandle) -> String {
///     let notice = match session.ended() {
///         Some(Ended::Inactivity) => "Your session ended after a period of inactivity.",
///         Some(Ended::Expired | Ended::AbsoluteTimeout) => "Your session expired.",
///         Some(Ended::Revoked) => "You were signed out.",
///         Some(_) | None => "",
///     };
///     format!("{notice} Please sign in.")
/// }
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Ended {
    /// No request came within its idle lifetime: `idle_timeout`, or the session's lifetime
    /// under `rolling`.
    Inactivity,
    /// Its lifetime, fixed when it was written last (no `rolling`, no `idle_timeout`), ran
    /// out.
    Expired,
    /// It reached `absolute_timeout`, counted from its log-in.
    AbsoluteTimeout,
    /// It ended before its time, and not by this browser's log-out: signed out
    /// everywhere, revoked, or displaced by other sign-ins from a full store.
    Revoked,
}

/// What ends a session at its stamp's time, when nothing ends it earlier.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Cause {
    /// Requests refresh it: it ends after that long without one.
    Inactivity,
    /// Its lifetime is fixed: it ends then.
    Expiry,
    /// Its absolute timeout.
    AbsoluteTimeout,
}

/// When a signed-in session ends in the store, as of its last write, and what ends it
/// then: signed into its cookie.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Stamp {
    /// In whole seconds since the Unix epoch, rounded up.
    pub(crate) until: u64,
    pub(crate) cause: Cause,
}

impl Stamp {
    /// The stamp of a session that ends at `end` (milliseconds since the Unix epoch) for
    /// `cause`.
    pub(crate) fn new(end: u64, cause: Cause) -> Self {
        Stamp {
            until: end.div_ceil(1000),
            cause,
        }
    }

    /// The stamp as its cookie carries it: the seconds, then a letter for the cause.
    pub(crate) fn encode(&self) -> String {
        let letter = match self.cause {
            Cause::Inactivity => 'i',
            Cause::Expiry => 'e',
            Cause::AbsoluteTimeout => 'a',
        };
        format!("{}{letter}", self.until)
    }

    /// The stamp `text` encodes; `None` for anything [`encode`](Stamp::encode) does not
    /// write.
    pub(crate) fn parse(text: &str) -> Option<Self> {
        let (digits, letter) = text.split_at_checked(text.len().checked_sub(1)?)?;
        let cause = match letter {
            "i" => Cause::Inactivity,
            "e" => Cause::Expiry,
            "a" => Cause::AbsoluteTimeout,
            _ => return None,
        };
        let canonical = !digits.is_empty()
            && digits.bytes().all(|b| b.is_ascii_digit())
            && (digits == "0" || !digits.starts_with('0'));
        let until = canonical.then(|| digits.parse().ok()).flatten()?;
        Some(Stamp { until, cause })
    }

    /// Why the session ended, found gone at `now` (milliseconds since the Unix epoch).
    pub(crate) fn ended(&self, now: u64) -> Ended {
        let end = self.until.saturating_mul(1000);
        if now.saturating_add(SLACK_MILLIS) < end {
            return Ended::Revoked;
        }
        match self.cause {
            Cause::Inactivity => Ended::Inactivity,
            Cause::Expiry => Ended::Expired,
            Cause::AbsoluteTimeout => Ended::AbsoluteTimeout,
        }
    }
}

/// The longest a stamp's text is: the seconds of the farthest end a session can have,
/// and its letter. A cookie value past that is refused before its tag is checked.
pub(crate) const MAX_STAMP_CHARS: usize = 12;

const _: () = assert!(MAX_LIFETIME.as_secs() < 10_000_000_000);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stamp_reads_back_as_written_and_nothing_else_reads() {
        for cause in [Cause::Inactivity, Cause::Expiry, Cause::AbsoluteTimeout] {
            let stamp = Stamp::new(1_765_000_000_500, cause);
            assert_eq!(stamp.until, 1_765_000_001);
            assert!(stamp.encode().len() <= MAX_STAMP_CHARS);
            assert_eq!(Stamp::parse(&stamp.encode()), Some(stamp));
        }
        for junk in [
            "",
            "i",
            "12",
            "12x",
            "012i",
            "-1i",
            "1 i",
            "+1i",
            "99999999999999999999i",
        ] {
            assert_eq!(Stamp::parse(junk), None, "{junk:?}");
        }
        assert_eq!(Stamp::parse("0e").map(|s| s.until), Some(0));
    }

    #[test]
    fn a_session_gone_before_its_end_was_revoked_and_one_gone_after_timed_out() {
        let end = 1_765_000_000_000;
        let idle = Stamp::new(end, Cause::Inactivity);
        assert_eq!(idle.ended(end - 60_000), Ended::Revoked);
        assert_eq!(idle.ended(end - SLACK_MILLIS - 1), Ended::Revoked);
        // Within the slack, a store that swept it a moment early.
        assert_eq!(idle.ended(end - SLACK_MILLIS), Ended::Inactivity);
        assert_eq!(idle.ended(end + 3_600_000), Ended::Inactivity);
        let fixed = Stamp::new(end, Cause::Expiry);
        assert_eq!(fixed.ended(end), Ended::Expired);
        let absolute = Stamp::new(end, Cause::AbsoluteTimeout);
        assert_eq!(absolute.ended(end), Ended::AbsoluteTimeout);
    }
}
