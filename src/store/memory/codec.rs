//! The memory store's encoding of a record, what it keeps in its slab: the lifetime in
//! milliseconds, then each entry as a length-prefixed key and value (lengths as `u32`
//! LE). It never leaves the process. The encoders return a `Vec` as built: the store copies
//! a small one into a slot, and keeps a large one (over 1 KiB) as it is.

use std::time::Duration;

use crate::record::{Changes, SessionRecord};
use crate::time::millis;

/// `record`, encoded.
pub(super) fn encode(record: &SessionRecord) -> Vec<u8> {
    let entries = record.entries();
    let mut out = Encoder::new(record.ttl(), record.size() + 8 * entries.len());
    for (key, value) in entries {
        out.entry(key, value);
    }
    out.finish()
}

/// An encoded record, decoded; `None` when the bytes are malformed.
pub(super) fn decode(bytes: &[u8]) -> Option<SessionRecord> {
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
pub(super) fn apply(bytes: &[u8], changes: &Changes) -> Option<Vec<u8>> {
    let (ttl, entries) = Entries::of(bytes)?;
    let added = changes
        .entries()
        .map(|(k, v)| k.len() + v.map_or(0, str::len) + 8);
    let mut out = Encoder::new(
        changes.ttl().unwrap_or(ttl),
        bytes.len() + added.sum::<usize>(),
    );
    let mut pending = changes.entries().peekable();
    for entry in entries {
        let (key, value) = entry?;
        while let Some((k, v)) = pending.next_if(|(k, _)| *k < key) {
            if let Some(v) = v {
                out.entry(k, v);
            }
        }
        match pending.next_if(|(k, _)| *k == key) {
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

struct Encoder(Vec<u8>);

impl Encoder {
    fn new(ttl: Duration, capacity: usize) -> Self {
        let mut bytes = Vec::with_capacity(8 + capacity);
        bytes.extend_from_slice(&millis(ttl).to_le_bytes());
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_round_trip_and_reject_truncation() {
        let mut record = SessionRecord::new(Duration::from_millis(1500));
        assert_eq!(decode(&encode(&record)), Some(record.clone()));
        record.insert("cart", r#"["apple","żółw"]"#);
        record.insert("", "");
        let bytes = encode(&record);
        assert_eq!(decode(&bytes), Some(record));
        // Cutting between entries leaves a shorter valid record; anywhere else, none.
        let between_entries = [8, 8 + 4 + 4];
        for cut in (0..bytes.len()).filter(|cut| !between_entries.contains(cut)) {
            assert_eq!(decode(&bytes[..cut]), None, "cut at {cut}");
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

        let bytes = apply(&encode(&record), &changes).unwrap();
        record.apply(&changes);
        assert_eq!(decode(&bytes), Some(record.clone()));

        changes.reset_ttl(Duration::from_secs(60));
        let bytes = apply(&encode(&record), &changes).unwrap();
        record.apply(&changes);
        assert_eq!(decode(&bytes), Some(record));
        assert_eq!(apply(&[1, 2, 3], &changes), None);
    }

    mod prop {
        use super::*;
        use crate::record::strategies::{changes, record};
        use proptest::prelude::*;

        proptest! {
            #![proptest_config(crate::proptest_cases::config())]

            #[test]
            fn prop_the_codec_round_trips(record in record()) {
                prop_assert_eq!(decode(&encode(&record)), Some(record));
            }

            #[test]
            fn prop_arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..200), changes in changes()) {
                let _ = decode(&bytes);
                let _ = apply(&bytes, &changes);
            }

            #[test]
            fn prop_applying_to_bytes_is_applying_to_the_record(record in record(), changes in changes()) {
                let bytes = apply(&encode(&record), &changes);
                let mut applied = record;
                applied.apply(&changes);
                prop_assert_eq!(bytes.and_then(|b| decode(&b)), Some(applied));
            }
        }
    }
}
