//! Time as the stores keep it: whole milliseconds.

use std::time::Duration;

/// The longest a session can live: 400 days, the longest browsers keep a cookie (and far
/// inside what every store can count in milliseconds).
pub(crate) const MAX_LIFETIME: Duration = Duration::from_secs(400 * 24 * 60 * 60);

/// A duration in whole milliseconds, as stores keep lifetimes and expiry times; a
/// duration beyond `u64` milliseconds (half a billion years) saturates.
pub(crate) fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}
