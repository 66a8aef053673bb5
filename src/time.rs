//! Time as the stores keep it: whole milliseconds.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The longest a session can live: 400 days, the longest browsers keep a cookie (and far
/// inside what every store can count in milliseconds).
pub(crate) const MAX_LIFETIME: Duration = Duration::from_secs(400 * 24 * 60 * 60);

/// A duration in whole milliseconds, as stores keep lifetimes and expiry times; a
/// duration beyond `u64` milliseconds (half a billion years) saturates.
pub(crate) fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

/// Milliseconds since the Unix epoch, now: the wall clock, which survives a restart and
/// agrees between the instances of an application (to within their clocks' drift).
pub(crate) fn unix_millis() -> u64 {
    millis(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default(),
    )
}

/// `lifetime` (at most [`MAX_LIFETIME`]) after `now`, both in milliseconds since the Unix
/// epoch.
pub(crate) fn after(now: u64, lifetime: Duration) -> u64 {
    now.saturating_add(millis(lifetime.min(MAX_LIFETIME)))
}
