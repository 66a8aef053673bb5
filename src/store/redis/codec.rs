//! How a record is laid out in a Redis hash: metadata fields and one field per entry.

use std::io::Write;
use std::time::Duration;

use redis::{RedisWrite, ToRedisArgs};

use crate::error::StoreError;
use crate::record::SessionRecord;
use crate::store::check_version;

/// Hash field of the record format version.
pub(super) const VERSION_FIELD: &str = "m:v";
/// Hash field of the session's lifetime in milliseconds (the COMMIT and TOUCH scripts name it too).
pub(super) const TTL_FIELD: &str = "m:ttl";
/// What the TOUCH script appends to a signed-in session's fields, with a time, when the
/// session now lives past until when it is counted store-wide (its `m:counted` field).
pub(super) const RECOUNT: &str = "m:recount";
/// Prefix of the hash fields that hold entries: `e:<entry key>`. Entries and metadata
/// never share a name, whatever the entry keys.
const ENTRY_PREFIX: &str = "e:";

/// `HGETALL`'s answer: field/value pairs, read off the reply without copying them.
pub(super) type Fields = Vec<(Vec<u8>, Vec<u8>)>;

/// Reads a record from `HGETALL`'s answer; `None` for an empty answer (no such key).
pub(super) fn decode_record(fields: Fields) -> Result<Option<SessionRecord>, StoreError> {
    if fields.is_empty() {
        return Ok(None);
    }

    let number = |field: &str| -> Result<u64, StoreError> {
        let (_, bytes) = fields
            .iter()
            .find(|(name, _)| name == field.as_bytes())
            .ok_or_else(|| StoreError::corrupt(format!("no `{field}` field")))?;
        let text = std::str::from_utf8(bytes).map_err(StoreError::corrupt)?;
        text.parse().map_err(StoreError::corrupt)
    };

    check_version(number(VERSION_FIELD)?)?;

    let mut record = SessionRecord::new(Duration::from_millis(number(TTL_FIELD)?));
    for (field, value) in fields {
        if let Some(key) = field.strip_prefix(ENTRY_PREFIX.as_bytes()) {
            let key = std::str::from_utf8(key).map_err(StoreError::corrupt)?;
            record.insert(key, String::from_utf8(value).map_err(StoreError::corrupt)?);
        }
    }

    Ok(Some(record))
}

/// The hash field of the entry `.0`, `e:<key>`: written straight into the command, where
/// a `String` of its own would cost an allocation per entry per call.
pub(super) struct EntryField<'k>(pub(super) &'k str);

impl ToRedisArgs for EntryField<'_> {
    fn write_redis_args<W: ?Sized + RedisWrite>(&self, out: &mut W) {
        let mut arg = out.writer_for_next_arg();
        // Writing into a command's buffer does not fail.
        let _ = arg
            .write_all(ENTRY_PREFIX.as_bytes())
            .and_then(|()| arg.write_all(self.0.as_bytes()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(pairs: &[(&str, &str)]) -> Fields {
        pairs
            .iter()
            .map(|(k, v)| (k.as_bytes().to_vec(), v.as_bytes().to_vec()))
            .collect()
    }

    #[test]
    fn a_record_reads_back_from_its_fields() {
        let record = decode_record(fields(&[
            ("m:v", "1"),
            ("m:ttl", "1500"),
            ("e:cart", "[1]"),
            ("e:$user", "\"a\""),
        ]))
        .unwrap()
        .unwrap();
        assert_eq!(record.ttl(), Duration::from_millis(1500));
        assert_eq!(
            record.entries().collect::<Vec<_>>(),
            [("$user", "\"a\""), ("cart", "[1]")]
        );
    }

    #[test]
    fn an_entry_field_is_one_argument_of_its_prefix_and_key() {
        let mut cmd = redis::cmd("HSET");
        cmd.arg(EntryField("cart")).arg(EntryField("")).arg("x");
        let args: Vec<_> = cmd.args_iter().collect();
        assert_eq!(
            args[1..],
            [
                redis::Arg::Simple(&b"e:cart"[..]),
                redis::Arg::Simple(&b"e:"[..]),
                redis::Arg::Simple(&b"x"[..])
            ]
        );
    }

    #[test]
    fn no_fields_is_no_session() {
        assert_eq!(decode_record(Vec::new()).unwrap(), None);
    }

    #[test]
    fn unreadable_records_are_corrupt() {
        let cases = [
            fields(&[("m:ttl", "1500")]),
            fields(&[("m:v", "2"), ("m:ttl", "1500")]),
            fields(&[("m:v", "1"), ("m:ttl", "soon")]),
            fields(&[("m:v", "1")]),
            vec![
                (b"m:v".to_vec(), b"1".to_vec()),
                (b"m:ttl".to_vec(), b"5".to_vec()),
                (b"e:x".to_vec(), vec![0xff]),
            ],
            vec![
                (b"m:v".to_vec(), b"1".to_vec()),
                (b"m:ttl".to_vec(), b"5".to_vec()),
                (b"e:\xff".to_vec(), b"1".to_vec()),
            ],
        ];
        for case in cases {
            assert!(matches!(decode_record(case), Err(StoreError::Corrupt(_))));
        }
    }
}
