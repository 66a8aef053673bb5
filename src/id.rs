//! Session ids and the signed cookie value that carries them.
//!
//! A session id is 192 bits from a cryptographically secure generator. The cookie carries
//! `<id>.<tag>`, both URL-safe base64 without padding, where `tag` is HMAC-SHA256 of the id
//! under a key derived from one of the configured secrets. The first secret signs; every
//! secret verifies, so secrets can be rotated without logging anyone out.

use std::fmt;

use data_encoding::HEXLOWER;
use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::base64url::{self, decode_exact};

/// How many random bytes make an id: 192 bits, above the 128 bits OWASP asks for.
const ID_BYTES: usize = 24;
/// Length of an id in URL-safe base64 without padding.
const ID_CHARS: usize = 32;
/// Length of an HMAC-SHA256 tag in URL-safe base64 without padding.
const TAG_CHARS: usize = 43;
/// Length of the whole cookie value: `<id>.<tag>`.
const COOKIE_VALUE_CHARS: usize = ID_CHARS + 1 + TAG_CHARS;
/// Domain separation: each purpose derives its key from a secret with a label of its own,
/// so the secret is never used raw and what one purpose signs never verifies for another.
pub(crate) mod label {
    /// Signs the ids of stored sessions into session cookies.
    pub(crate) const SESSION: &[u8] = b"rocket_server_sessions/v1/cookie-signature";
    /// Signs the id a visitor's session will have, before anything is stored: the cookie
    /// that carries a CSRF token's binding for a visitor without a session.
    pub(crate) const PENDING: &[u8] = b"rocket_server_sessions/v1/pending-session";
    /// Derives CSRF tokens from session ids.
    pub(crate) const CSRF: &[u8] = b"rocket_server_sessions/v1/csrf-token";
    /// Derives the id of the record that lists a user's sessions from the user.
    pub(crate) const USER_INDEX: &[u8] = b"rocket_server_sessions/v1/user-index";
    /// Seals the session ids that record lists, so that the store holds none in the clear.
    pub(crate) const SEAL: &[u8] = b"rocket_server_sessions/v1/sealed-id";
    /// Derives, from a session's id, the key its entries are sealed under at rest.
    pub(crate) const DATA: &[u8] = b"rocket_server_sessions/v1/sealed-data";
}

/// How many hex digits of the storage key make a session's [public id](SessionId::public_id).
const PUBLIC_ID_CHARS: usize = 32;

/// A session's identifier: 192 random bits.
///
/// The id on its own is not a credential: a cookie is accepted only with a valid signature,
/// which needs the application's secret. Stores should still key records by
/// [`SessionId::storage_key`], so that a dump of the store hands out nothing that looks like
/// a cookie. `Debug` never prints the id.
///
/// # Example
///
/// ```
/// use rocket_server_sessions::store::SessionId;
///
/// let id = SessionId::generate();
/// assert_ne!(id, SessionId::generate());
/// assert_eq!(id.storage_key().len(), 64);
/// ```
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SessionId([u8; ID_BYTES]);

impl SessionId {
    /// Generates a new id from the thread-local cryptographically secure generator.
    pub fn generate() -> Self {
        let mut bytes = [0; ID_BYTES];
        rand::thread_rng().fill_bytes(&mut bytes);
        SessionId(bytes)
    }

    /// Which of `n` shards holds this id: ids are uniformly random, so their
    /// first bytes spread sessions evenly.
    pub(crate) fn shard(&self, n: usize) -> usize {
        usize::from(u16::from_be_bytes([self.0[0], self.0[1]])) % n
    }

    /// The id of these bytes: for tests that need one fixed id.
    #[cfg(test)]
    pub(crate) fn from_bytes(bytes: [u8; ID_BYTES]) -> Self {
        SessionId(bytes)
    }

    /// The id's raw bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// A stable key for storing this session: lowercase hex of SHA-256 of the id.
    ///
    /// It is safe to use as a file name or a database key, and it cannot be turned back
    /// into the id.
    pub fn storage_key(&self) -> String {
        HEXLOWER.encode(&self.storage_hash())
    }

    /// The bytes [`SessionId::storage_key`] spells in hex: the SHA-256 of the id.
    pub(crate) fn storage_hash(&self) -> [u8; 32] {
        Sha256::digest(self.0).into()
    }

    /// An opaque name for the session that gives nobody the id: the first 128 bits of its
    /// [storage key](SessionId::storage_key), in hex. It lists a user's sessions to that
    /// user, who may revoke one by it.
    pub(crate) fn public_id(&self) -> String {
        let mut key = self.storage_key();
        key.truncate(PUBLIC_ID_CHARS);
        key
    }

    fn encode(&self) -> String {
        base64url::encode(&self.0)
    }
}

impl fmt::Debug for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SessionId(..)")
    }
}

/// Displays the id as URL-safe base64, as it appears in the cookie before the signature.
impl fmt::Display for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.encode())
    }
}

/// Signs ids for one purpose (a [`label`]) and verifies them back.
#[derive(Clone)]
pub(crate) struct Signer {
    /// One keyed MAC per secret, the signing one first.
    keys: Vec<Hmac<Sha256>>,
}

impl Signer {
    /// Builds a signer from secrets, the first of which signs. Each key is derived from its
    /// secret with `label`.
    ///
    /// Returns `None` when `secrets` is empty.
    pub(crate) fn new<S: AsRef<[u8]>>(secrets: &[S], label: &[u8]) -> Option<Self> {
        let keys = secrets
            .iter()
            .map(|secret| {
                let mut derive = new_mac(secret.as_ref());
                derive.update(label);
                new_mac(&derive.finalize().into_bytes())
            })
            .collect::<Vec<_>>();

        (!keys.is_empty()).then_some(Signer { keys })
    }

    /// The tag of `id` under the signing (first) secret: HMAC-SHA256, URL-safe base64.
    pub(crate) fn tag(&self, id: &SessionId) -> String {
        let mut tag = String::with_capacity(TAG_CHARS);
        self.append_tag(0, id, &mut tag);
        tag
    }

    /// Whether `tag` is the tag of `id` under any secret, compared in constant time.
    pub(crate) fn verify_tag(&self, id: &SessionId, tag: &str) -> bool {
        let mut bytes = [0; 32];
        decode_exact(tag, &mut bytes).is_some() && self.verify_bytes(&id.0, &bytes)
    }

    fn append_tag(&self, key: usize, id: &SessionId, out: &mut String) {
        let mut mac = self.keys[key].clone();
        mac.update(&id.0);
        base64url::encode_append(&mac.finalize().into_bytes(), out);
    }

    fn verify_bytes(&self, id: &[u8], tag: &[u8; 32]) -> bool {
        self.keys.iter().any(|key| {
            let mut mac = key.clone();
            mac.update(id);
            tags_match(&mac.finalize().into_bytes().into(), tag)
        })
    }

    /// What `data` derives under each secret, the signing one first: 192 bits of its HMAC
    /// each.
    fn derive_all<'a>(&'a self, data: &'a [u8]) -> impl Iterator<Item = [u8; ID_BYTES]> + 'a {
        self.keys.iter().map(move |key| {
            let mut mac = key.clone();
            mac.update(data);
            let mut out = [0; ID_BYTES];
            out.copy_from_slice(&mac.finalize().into_bytes()[..ID_BYTES]);
            out
        })
    }

    /// How many secrets it holds.
    pub(crate) fn count(&self) -> usize {
        self.keys.len()
    }

    /// The 256-bit keys `data` derives under each secret, the signing one first: HMAC-SHA256
    /// of `data`.
    pub(crate) fn derive_keys<'a>(&'a self, data: &'a [u8]) -> impl Iterator<Item = [u8; 32]> + 'a {
        self.keys.iter().map(move |key| {
            let mut mac = key.clone();
            mac.update(data);
            mac.finalize().into_bytes().into()
        })
    }

    /// The ids `data` derives under each secret, the signing one first: the names of
    /// records of the crate's own (a user's list of sessions) that no one can guess
    /// without the secret. Each secret's is kept, so rotating secrets loses none.
    pub(crate) fn derive_ids(&self, data: &[u8]) -> Vec<SessionId> {
        self.derive_all(data).map(SessionId).collect()
    }

    /// `id` sealed under the signing secret: the id XOR a pad derived from its handle (a
    /// one-time pad, since each id has a handle of its own), in URL-safe base64. The store
    /// that keeps it holds no usable id.
    pub(crate) fn seal(&self, id: &SessionId) -> String {
        let handle = id.public_id();
        let pad = self
            .derive_all(handle.as_bytes())
            .next()
            .unwrap_or([0; ID_BYTES]);
        let sealed: Vec<u8> = id.0.iter().zip(pad).map(|(b, p)| b ^ p).collect();
        base64url::encode(&sealed)
    }

    /// The id that `sealed` holds for `handle`, under any secret: `None` when it does not
    /// open to an id of that handle (tampered with, or sealed under a secret now gone).
    pub(crate) fn unseal(&self, sealed: &str, handle: &str) -> Option<SessionId> {
        let mut bytes = [0; ID_BYTES];
        decode_exact(sealed, &mut bytes)?;
        self.derive_all(handle.as_bytes()).find_map(|pad| {
            let mut id = bytes;
            id.iter_mut().zip(pad).for_each(|(b, p)| *b ^= p);
            let id = SessionId(id);
            (id.public_id() == handle).then_some(id)
        })
    }

    /// The cookie value for `id`: `<id>.<tag>`, signed with the first secret.
    pub(crate) fn sign(&self, id: &SessionId) -> String {
        let mut value = String::with_capacity(COOKIE_VALUE_CHARS);
        base64url::encode_append(&id.0, &mut value);
        value.push('.');
        self.append_tag(0, id, &mut value);
        value
    }

    /// The cookie value for `id` with `extra`, a short text signed with it (a signed-in
    /// session's [stamp](crate::ended::Stamp)): `<id>.<extra>.<tag>`, the tag over the
    /// id's bytes, a `.` and `extra`. An empty `extra` signs as [`sign`](Signer::sign).
    pub(crate) fn sign_with(&self, id: &SessionId, extra: &str) -> String {
        if extra.is_empty() {
            return self.sign(id);
        }
        let mut value = String::with_capacity(COOKIE_VALUE_CHARS + 1 + extra.len());
        base64url::encode_append(&id.0, &mut value);
        value.push('.');
        value.push_str(extra);
        value.push('.');
        let mut mac = self.keys[0].clone();
        mac.update(&id.0);
        mac.update(b".");
        mac.update(extra.as_bytes());
        base64url::encode_append(&mac.finalize().into_bytes(), &mut value);
        value
    }

    /// Whether `value` has a length that a value of [`sign`](Signer::sign) or of
    /// [`sign_with`](Signer::sign_with) with at most `max_extra` bytes of extra text can
    /// have: what a caller checks before it spends an HMAC on the value.
    pub(crate) fn may_verify(value: &str, max_extra: usize) -> bool {
        let len = value.len();
        len == COOKIE_VALUE_CHARS
            || (COOKIE_VALUE_CHARS + 2..=COOKIE_VALUE_CHARS + 1 + max_extra).contains(&len)
    }

    /// The id in a cookie value [`sign_with`](Signer::sign_with) wrote, and its extra text
    /// (empty for one [`sign`](Signer::sign) wrote), if the value is well formed, its extra
    /// text at most `max_extra` bytes of URL-safe characters, and signed by any secret.
    pub(crate) fn verify_with<'v>(
        &self,
        value: &'v str,
        max_extra: usize,
    ) -> Option<(SessionId, &'v str)> {
        if value.len() == COOKIE_VALUE_CHARS {
            return self.verify(value).map(|id| (id, ""));
        }
        if value.len() > COOKIE_VALUE_CHARS + 1 + max_extra {
            return None;
        }
        let (id, rest) = value.split_once('.')?;
        let (extra, tag) = rest.split_once('.')?;
        if extra.is_empty() || !extra.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return None;
        }
        let mut id_bytes = [0; ID_BYTES];
        let mut tag_bytes = [0; 32];
        decode_exact(id, &mut id_bytes)?;
        decode_exact(tag, &mut tag_bytes)?;
        let signed = self.keys.iter().any(|key| {
            let mut mac = key.clone();
            mac.update(&id_bytes);
            mac.update(b".");
            mac.update(extra.as_bytes());
            tags_match(&mac.finalize().into_bytes().into(), &tag_bytes)
        });
        signed.then_some((SessionId(id_bytes), extra))
    }

    /// The id in a cookie value, if the value is well formed and signed by any secret.
    ///
    /// Anything else (wrong length, wrong alphabet, a non-canonical encoding, a tag from an
    /// unknown secret) is `None`, checked without touching any store.
    pub(crate) fn verify(&self, value: &str) -> Option<SessionId> {
        if value.len() != COOKIE_VALUE_CHARS {
            return None;
        }

        let (id, tag) = value.split_once('.')?;
        let mut id_bytes = [0; ID_BYTES];
        let mut tag_bytes = [0; 32];
        decode_exact(id, &mut id_bytes)?;
        decode_exact(tag, &mut tag_bytes)?;

        self.verify_bytes(&id_bytes, &tag_bytes)
            .then_some(SessionId(id_bytes))
    }
}

/// Whether two tags are equal, in constant time: compared as four words with `subtle`,
/// where `Mac::verify_slice` compares 32 bytes one at a time (about 350 instructions,
/// against some 50 here, on every request that carries a cookie).
fn tags_match(a: &[u8; 32], b: &[u8; 32]) -> bool {
    fn words(tag: &[u8; 32]) -> [u64; 4] {
        std::array::from_fn(|i| {
            let mut word = [0; 8];
            word.copy_from_slice(&tag[8 * i..8 * i + 8]);
            u64::from_ne_bytes(word)
        })
    }
    words(a).ct_eq(&words(b)).into()
}

fn new_mac(key: &[u8]) -> Hmac<Sha256> {
    <Hmac<Sha256> as Mac>::new_from_slice(key).expect("HMAC accepts keys of every length")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn signer(secrets: &[&str]) -> Signer {
        Signer::new(secrets, label::SESSION).expect("secrets are not empty")
    }

    #[test]
    fn tags_match_only_when_every_bit_of_every_word_is_equal() {
        let tag: [u8; 32] = std::array::from_fn(|i| i as u8 * 7 + 1);
        assert!(tags_match(&tag, &tag.clone()));
        for byte in 0..32 {
            for bit in 0..8 {
                let mut other = tag;
                other[byte] ^= 1 << bit;
                assert!(!tags_match(&tag, &other), "byte {byte}, bit {bit}");
                assert!(!tags_match(&other, &tag), "byte {byte}, bit {bit}");
            }
        }
    }

    #[test]
    fn a_sealed_id_opens_for_its_handle_alone_and_under_any_secret() {
        let old = Signer::new(&["the old secret, thirty-two bytes long"], label::SEAL).unwrap();
        let rotated = Signer::new(
            &[
                "the new secret, thirty-two bytes long",
                "the old secret, thirty-two bytes long",
            ],
            label::SEAL,
        )
        .unwrap();
        let id = SessionId::generate();
        let sealed = old.seal(&id);
        assert!(!sealed.contains(&id.to_string()));
        assert_eq!(old.unseal(&sealed, &id.public_id()), Some(id.clone()));
        assert_eq!(rotated.unseal(&sealed, &id.public_id()), Some(id.clone()));
        assert_eq!(
            old.unseal(&sealed, &SessionId::generate().public_id()),
            None
        );
        let other = Signer::new(&["another secret, thirty-two bytes long"], label::SEAL).unwrap();
        assert_eq!(other.unseal(&sealed, &id.public_id()), None);
        assert_eq!(old.unseal("garbage", &id.public_id()), None);
        assert_eq!(id.public_id().len(), PUBLIC_ID_CHARS);
    }

    #[test]
    fn derived_ids_differ_by_data_and_secret() {
        let signer = Signer::new(
            &[
                "a secret of at least thirty-two bytes!",
                "an older secret of thirty-two bytes",
            ],
            label::USER_INDEX,
        )
        .unwrap();
        let alice = signer.derive_ids(b"\"alice\"");
        assert_eq!(alice.len(), 2);
        assert_ne!(alice[0], alice[1]);
        assert_eq!(alice, signer.derive_ids(b"\"alice\""));
        assert_ne!(alice[0], signer.derive_ids(b"\"bob\"")[0]);
    }

    #[test]
    fn signed_value_verifies_to_the_same_id() {
        let signer = signer(&["a secret of at least thirty-two bytes!"]);
        let id = SessionId::generate();
        let value = signer.sign(&id);
        assert_eq!(value.len(), COOKIE_VALUE_CHARS);
        assert_eq!(signer.verify(&value), Some(id));
    }

    #[test]
    fn ids_are_unique_and_url_safe() {
        let ids: std::collections::HashSet<_> = (0..1000).map(|_| SessionId::generate()).collect();
        assert_eq!(ids.len(), 1000);
        for id in ids {
            let text = id.to_string();
            assert_eq!(text.len(), ID_CHARS);
            assert!(text
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
        }
    }

    #[test]
    fn old_secrets_verify_but_only_the_first_signs() {
        let old = signer(&["the old secret, thirty-two bytes long"]);
        let rotated = signer(&[
            "the new secret, thirty-two bytes long",
            "the old secret, thirty-two bytes long",
        ]);
        let id = SessionId::generate();
        assert_eq!(rotated.verify(&old.sign(&id)), Some(id.clone()));
        assert_eq!(old.verify(&rotated.sign(&id)), None);
    }

    #[test]
    fn extra_text_is_signed_with_the_id_and_verifies_with_it_alone() {
        let keys = signer(&["first", "second"]);
        let id = SessionId::generate();
        let value = keys.sign_with(&id, "1765000000i");
        assert_eq!(
            keys.verify_with(&value, 12),
            Some((id.clone(), "1765000000i"))
        );
        // A plain value verifies with no extra text; an empty extra signs plainly.
        assert_eq!(
            keys.verify_with(&keys.sign(&id), 12),
            Some((id.clone(), ""))
        );
        assert_eq!(keys.sign_with(&id, ""), keys.sign(&id));
        // The extra text is under the tag: changed, moved or dropped, nothing verifies.
        let forged = value.replace("1765000000i", "1865000000i");
        assert_eq!(keys.verify_with(&forged, 12), None);
        let (head, tag) = value.rsplit_once('.').unwrap();
        let (plain_id, _) = head.split_once('.').unwrap();
        assert_eq!(keys.verify_with(&format!("{plain_id}.{tag}"), 12), None);
        let other = keys.sign_with(&SessionId::generate(), "1765000000i");
        let swapped = format!("{plain_id}.{}", other.split_once('.').unwrap().1);
        assert_eq!(keys.verify_with(&swapped, 12), None);
        // Too long, or not plain letters and digits: refused before any MAC.
        assert_eq!(keys.verify_with(&value, 10), None);
        let dotted = keys.sign_with(&id, "17.5i");
        assert_eq!(keys.verify_with(&dotted, 12), None);
        // A rotated secret still verifies; an unknown one does not.
        let rotated = signer(&["new", "first"]);
        assert!(rotated.verify_with(&value, 12).is_some());
        assert_eq!(signer(&["other"]).verify_with(&value, 12), None);
        // The plain verifier takes no stamped value.
        assert_eq!(keys.verify(&value), None);
    }

    #[test]
    fn unknown_secret_does_not_verify() {
        let ours = signer(&["our secret, thirty-two bytes long!!"]);
        let theirs = signer(&["their secret, thirty-two bytes long"]);
        assert_eq!(ours.verify(&theirs.sign(&SessionId::generate())), None);
    }

    #[test]
    fn tampered_values_do_not_verify() {
        let signer = signer(&["a secret of at least thirty-two bytes!"]);
        let value = signer.sign(&SessionId::generate());
        let (id, tag) = value.split_once('.').unwrap();
        let other_id = SessionId::generate().to_string();
        let flipped_last = {
            let mut v = value.clone().into_bytes();
            let last = v.last_mut().unwrap();
            *last = if *last == b'A' { b'B' } else { b'A' };
            String::from_utf8(v).unwrap()
        };
        let cases = [
            String::new(),
            ".".into(),
            id.to_string(),
            format!("{id}."),
            format!(".{tag}"),
            format!("{other_id}.{tag}"),
            format!("{id}.{}", &tag[..tag.len() - 1]),
            format!("{value}A"),
            format!("{id}:{tag}"),
            value.replace('.', "="),
            value.to_uppercase(),
            flipped_last,
            "x".repeat(COOKIE_VALUE_CHARS),
            "é".repeat(COOKIE_VALUE_CHARS / 2),
            "\0".repeat(COOKIE_VALUE_CHARS),
            "A".repeat(10_000),
        ];
        for case in cases {
            assert_eq!(signer.verify(&case), None, "{case:?} verified");
        }
    }

    #[test]
    fn storage_key_is_stable_and_hides_the_id() {
        let id = SessionId::generate();
        assert_eq!(id.storage_key(), id.storage_key());
        // The SHA-256 of the id, never the id in any encoding.
        assert_eq!(
            id.storage_key(),
            HEXLOWER.encode(&Sha256::digest(id.as_bytes()))
        );
        assert_ne!(id.storage_key()[..48], HEXLOWER.encode(id.as_bytes()));
        assert_eq!(format!("{id:?}"), "SessionId(..)");
    }

    mod prop {
        use super::*;
        use proptest::prelude::*;

        fn id() -> impl Strategy<Value = SessionId> {
            any::<[u8; ID_BYTES]>().prop_map(SessionId)
        }

        fn secret() -> impl Strategy<Value = Vec<u8>> {
            proptest::collection::vec(any::<u8>(), 32..96)
        }

        proptest! {
            #![proptest_config(crate::proptest_cases::config())]

            #[test]
            fn prop_arbitrary_cookies_never_panic_or_verify(
                secret in secret(),
                value in ".{0,100}",
                bytes in proptest::collection::vec(any::<u8>(), 0..100),
            ) {
                let signer = Signer::new(&[secret], label::SESSION).unwrap();
                prop_assert_eq!(signer.verify(&value), None);
                prop_assert_eq!(signer.verify(&String::from_utf8_lossy(&bytes)), None);
                prop_assert_eq!(signer.verify_with(&value, 12), None);
                let lossy = String::from_utf8_lossy(&bytes);
                prop_assert_eq!(signer.verify_with(&lossy, 12), None);
                let id = SessionId::generate();
                prop_assert!(!signer.verify_tag(&id, &value));
            }

            #[test]
            fn prop_what_is_signed_verifies_to_the_same_id(
                secrets in proptest::collection::vec(secret(), 1..4),
                id in id(),
                signer_index in 0usize..4,
            ) {
                let all = Signer::new(&secrets, label::SESSION).unwrap();
                let one = Signer::new(&secrets[signer_index % secrets.len()..], label::SESSION).unwrap();
                // Any of the secrets verifies what the first of them signed.
                prop_assert_eq!(all.verify(&one.sign(&id)), Some(id.clone()));
                prop_assert!(all.verify_tag(&id, &one.tag(&id)));
                // Another purpose's key never verifies it.
                let csrf = Signer::new(&secrets, label::CSRF).unwrap();
                prop_assert_eq!(csrf.verify(&all.sign(&id)), None);
            }

            #[test]
            fn prop_any_change_to_a_signed_value_fails(
                secret in secret(),
                id in id(),
                position in 0usize..COOKIE_VALUE_CHARS,
                replacement in any::<char>(),
                cut in 0usize..COOKIE_VALUE_CHARS,
            ) {
                let signer = Signer::new(&[secret], label::SESSION).unwrap();
                let value = signer.sign(&id);
                let mut chars: Vec<char> = value.chars().collect();
                prop_assume!(chars[position] != replacement);
                chars[position] = replacement;
                let changed: String = chars.into_iter().collect();
                prop_assert_eq!(signer.verify(&changed), None);
                prop_assert_eq!(signer.verify(&value[..cut]), None);
                let tag = signer.tag(&id);
                let mut tag_chars: Vec<char> = tag.chars().collect();
                let at = position % tag_chars.len();
                prop_assume!(tag_chars[at] != replacement);
                tag_chars[at] = replacement;
                prop_assert!(!signer.verify_tag(&id, &tag_chars.into_iter().collect::<String>()));
            }

            #[test]
            fn prop_any_change_to_a_stamped_value_fails(
                secret in secret(),
                id in id(),
                stamp in "[0-9]{1,10}[iea]",
                position in 0usize..100,
                replacement in any::<char>(),
                cut in 0usize..100,
            ) {
                let signer = Signer::new(&[secret], label::SESSION).unwrap();
                let value = signer.sign_with(&id, &stamp);
                prop_assert_eq!(signer.verify_with(&value, 12), Some((id.clone(), stamp.as_str())));
                let mut chars: Vec<char> = value.chars().collect();
                let at = position % chars.len();
                prop_assume!(chars[at] != replacement);
                chars[at] = replacement;
                let changed: String = chars.into_iter().collect();
                prop_assert_eq!(signer.verify_with(&changed, 12), None);
                prop_assert_eq!(signer.verify_with(&value[..cut % value.len()], 12), None);
            }
        }
    }
}
