//! The order in which a full store makes room, the same for every store that evicts:
//! expired sessions first, then anonymous sessions closest to expiry, and logged-in
//! sessions only when no anonymous one is left.

/// How many sessions' expiry times are sampled to choose what to evict.
const EXPIRY_SAMPLE: usize = 256;

/// The classes of session, in the order they are evicted: anonymous, then logged in.
pub(crate) const ORDER: [bool; 2] = [false, true];

/// An expiry time at or below which about `count` of the sessions in `expiries` (the
/// expiry times of one class, `len` sessions of any class in all) expire, estimated from
/// a sample spread over them. `u64::MAX` when the class has no session (nothing to
/// pick), and every expiry of the class when `count` covers them all.
pub(crate) fn expiry_quantile(
    expiries: impl Iterator<Item = u64>,
    len: usize,
    count: usize,
) -> u64 {
    let step = (len / EXPIRY_SAMPLE).max(1);
    let mut members = 0;
    let mut sample = Vec::with_capacity(EXPIRY_SAMPLE + 1);
    for expires in expiries {
        if members % step == 0 {
            sample.push(expires);
        }
        members += 1;
    }
    sample.sort_unstable();
    let rank = (sample.len() * count / members.max(1)).min(sample.len());
    sample
        .get(rank.saturating_sub(1))
        .copied()
        .unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_quantile_covers_about_count_of_the_class() {
        let expiries = (0..10_000u64).rev();
        let threshold = expiry_quantile(expiries, 10_000, 1_000);
        assert!((900..1_100).contains(&threshold), "{threshold}");
        assert_eq!(expiry_quantile([5, 3].into_iter(), 2, 10), 5, "all of them");
        assert_eq!(expiry_quantile([5, 3].into_iter(), 2, 1), 3);
        assert_eq!(expiry_quantile(std::iter::empty(), 10, 1), u64::MAX);
    }
}
