//! Session data sealed at rest: a store that writes every entry's value through
//! AES-256-GCM to the store it wraps, and opens it again on the way back.
//!
//! Each session's entries are sealed under a key of its own, derived from the session's id
//! and the configured secrets (HMAC-SHA256 under the `sealed-data` key of each secret; the
//! first seals, every one opens, so secrets rotate). The store holds only the hash of the
//! id (its storage key), so a dump of the store opens nothing without the sessions' ids
//! (their cookies), and a session's key needs its id and the secrets together. (A user's
//! list keeps its sessions' ids sealed under the secret: SECURITY.md, "Data at rest", says
//! which sessions a dump together with the secrets opens.) The key binds a value to its
//! record: the record's storage key is the hash of the very id the key is derived from, so
//! a value moved to another session's record is under another key and fails to open. The
//! entry's name, closed by a `0xff` byte, is the associated data: a value moved to another
//! entry fails too.
//!
//! Entry names stay readable. They are the application's constants (`cart`, `$user`),
//! and the stores count signed-in sessions by the presence of `$user` and `$index` (the
//! file store rebuilds its index from them at start-up, the SQL stores query them), which
//! keeps "a stranger only displaces strangers" true without a key. What they hold, the
//! user's name included, is sealed.
//!
//! A sealed value is the text `s2:` and the URL-safe base64 of its 12-byte nonce, drawn at
//! random for each write, the ciphertext and its 16-byte tag. Each session has a key of its
//! own, so a nonce repeats under one key only after billions of writes to one session.
//! Values sealed by the first sealing releases start `s1:` and also carry the record's
//! storage key in their associated data (the storage key, a zero byte, the name): they
//! still open, and their entry is sealed as `s2:` when it is next written. No UTF-8 name
//! holds the `0xff` byte, so the two formats' associated data never match, and a value
//! relabelled from one format to the other does not open. No JSON text
//! starts with `s`, so a value written before sealing (plain JSON) is told apart: it is
//! accepted while [`accept_unsealed`](crate::config::SessionConfig::accept_unsealed) is on,
//! and the request that loads it seals every entry at its commit; otherwise it is dropped.
//! A value that does not open (changed, truncated, moved, or sealed under a secret now
//! gone) is treated as absent and logged at `warn`, never an error.

use std::sync::Arc;

use aes_gcm::aead::consts::U12;
use aes_gcm::aead::{AeadInPlace, KeyInit};
use aes_gcm::aes::Aes256Enc;
use aes_gcm::{AesGcm, Nonce, Tag};
use rand::RngCore;
use rocket::log::private as log;

use crate::base64url;
use crate::error::{StoreError, Throttle};
use crate::id::{SessionId, Signer};
use crate::record::reserved;
use crate::record::{Changes, SessionRecord};

/// AES-256-GCM with a 96-bit nonce. GCM only ever encrypts blocks (its counter mode), so
/// the cipher holds AES's encryption key schedule alone: `Aes256Gcm` also expands the
/// decryption schedule, which GCM never uses.
type Cipher = AesGcm<Aes256Enc, U12>;

/// What starts a sealed value: its associated data is the entry's name.
const SEALED: &str = "s2:";
/// What starts a value sealed by the first sealing releases: its associated data is the
/// record's storage key, a zero byte and the entry's name.
const SEALED_V1: &str = "s1:";
/// The nonce's length: GCM's 96 bits, drawn at random under a key per session.
const NONCE_BYTES: usize = 12;
/// The tag's length.
const TAG_BYTES: usize = 16;
/// The longest sealed value (nonce, ciphertext and tag) sealed and opened on the stack.
const SMALL_SEALED: usize = 512;
/// What ends an `s2:` value's associated data, after the entry's name: a byte no UTF-8
/// text holds, so that no `s1:` associated data (which ends in the name, or in its zero
/// byte when the name is empty) is ever the same bytes, and a value relabelled from one
/// format to the other does not open.
const AAD_END: u8 = 0xff;
/// The length of an `s1:` value's associated data before the entry's name: the storage
/// key's bytes and a zero byte.
const AAD_PREFIX: usize = 32 + 1;
/// The longest associated data built on the stack: entry names up to 63 bytes (`s2:`),
/// or 31 (`s1:`).
const SMALL_AAD: usize = 64;

/// Seals and opens the values of sessions under the secrets' `sealed-data` keys: see the
/// module. The fairing's [`RequestStore`](super::RequestStore) runs every call through
/// it; [`Sealed`] puts it over any store.
pub(crate) struct Sealer {
    keys: Arc<Signer>,
    accept_unsealed: bool,
    /// Values that do not open: one line a second at most, whatever the flood.
    tampered: Throttle,
}

/// One session's cipher: the first secret's key, which seals and opens first, and what
/// binds a value to its place. A request keeps it from its load to its commit.
pub(crate) struct SessionCipher {
    id: SessionId,
    /// The session's key under the first secret.
    key: [u8; 32],
    /// Its cipher, built the first time a value is opened or a change sealed (a commit
    /// that only moves the expiry needs none), then kept for the rest of the request: a
    /// load and the commit after it expand the key once. (A create builds its own on the
    /// stack when none is kept: most often it is the request's only sealing call.) Boxed: a cipher holds its key schedules
    /// (992 bytes, the software one beside AES-NI's), and inline they would put the
    /// request's store past the allocator's fast sizes.
    first: Option<Box<Cipher>>,
    /// The other secrets' ciphers, derived the first time a value does not open under
    /// `first`.
    older: Option<Vec<Cipher>>,
    /// The SHA-256 of the id (the bytes of its storage key), hashed the first time an
    /// `s1:` value is opened: what its associated data starts with.
    storage_key: Option<[u8; 32]>,
}

impl Sealer {
    /// Seals under `keys` (the secrets' `sealed-data` keys), accepting values written
    /// before sealing when `accept_unsealed`.
    pub(crate) fn new(keys: Arc<Signer>, accept_unsealed: bool) -> Self {
        Sealer {
            keys,
            accept_unsealed,
            tampered: Throttle::new(),
        }
    }

    /// The cipher of session `id`.
    pub(crate) fn cipher(&self, id: &SessionId) -> SessionCipher {
        let key = self
            .keys
            .derive_keys(id.as_bytes())
            .next()
            .unwrap_or_default();
        SessionCipher {
            id: id.clone(),
            key,
            first: None,
            older: None,
            storage_key: None,
        }
    }

    /// `record` as its session's store (`cipher`'s) gets it: every value sealed, in place.
    pub(crate) fn seal_record(&self, cipher: &mut SessionCipher, record: &mut SessionRecord) {
        if record.is_empty() {
            return;
        }
        // A create is most often its request's only sealing call: unless the request has
        // built the session's cipher already, it is built here on the stack, not boxed
        // and kept.
        let SessionCipher {
            key: session_key,
            first,
            ..
        } = cipher;
        let built;
        let first = match first {
            Some(first) => &**first,
            None => {
                built = Cipher::new(&(*session_key).into());
                &built
            }
        };
        for (key, value) in record.values_mut() {
            *value = seal(first, key, value);
        }
    }

    /// `changes` as their session's store (`cipher`'s) gets them: every value set sealed,
    /// in place.
    pub(crate) fn seal_changes(&self, cipher: &mut SessionCipher, changes: &mut Changes) {
        for (key, value) in changes.values_mut() {
            *value = cipher.seal(key, value);
        }
    }

    /// `record` as its session's store (`cipher`'s) gave it, every value opened. An entry
    /// of the application's that does not open is left out. One written before sealing is
    /// kept while those are accepted and no other value of the record is sealed (a record
    /// from before sealing is all in the clear), and the record is marked for its commit
    /// to seal it; otherwise it does not open either.
    ///
    /// # Errors
    ///
    /// [`StoreError::Corrupt`] when one of the crate's own entries of a session (`$user`,
    /// `$created`...) does not open: the session is not trusted at all (a tampered
    /// `$created` would restart its absolute timeout), so the request starts a fresh one
    /// and the old one is deleted. A user's list loses the entries that do not open.
    pub(crate) fn open_record(
        &self,
        cipher: &mut SessionCipher,
        mut record: SessionRecord,
    ) -> Result<SessionRecord, StoreError> {
        let all_clear = record.entries().all(|(_, value)| !is_sealed(value));
        let accept_clear = self.accept_unsealed && all_clear;
        let (mut tampered, mut unsealed) = (Vec::new(), false);
        for (key, value) in record.values_mut() {
            let opened = match is_sealed(value) {
                true => cipher.open(&self.keys, key, value),
                false if accept_clear => {
                    unsealed = true;
                    continue;
                }
                false => None,
            };
            if opened.is_none() {
                tampered.push(key.to_string());
            }
        }
        if tampered.is_empty() {
            if unsealed {
                record.insert(reserved::UNSEALED, "1");
            }
            return Ok(record);
        }
        if !record.is_user_list() && tampered.iter().any(|key| key.starts_with('$')) {
            return Err(StoreError::corrupt(
                "one of the session's own entries does not open (changed, moved, in the clear, or sealed under a secret no longer configured)",
            ));
        }
        for key in &tampered {
            record.remove(key);
        }
        if self.tampered.allow() {
            log::warn!("a session entry in the store does not open (changed, moved, in the clear, or sealed under a secret no longer configured); treating it as absent");
        }
        Ok(record)
    }
}

impl SessionCipher {
    /// The first secret's cipher for the session: built the first time.
    fn first<'c>(first: &'c mut Option<Box<Cipher>>, key: &[u8; 32]) -> &'c Cipher {
        first.get_or_insert_with(|| Box::new(Cipher::new(key.into())))
    }

    /// Whether it is session `id`'s.
    pub(crate) fn is_for(&self, id: &SessionId) -> bool {
        self.id == *id
    }

    /// `value` of entry `key`, sealed under the first secret.
    fn seal(&mut self, key: &str, value: &str) -> String {
        let first = Self::first(&mut self.first, &self.key);
        seal(first, key, value)
    }

    /// Opens `value`, sealed, for entry `key`, under the first secret or any other of
    /// `keys`: in place, in its own allocation (a value opens to fewer bytes than it
    /// takes sealed). `None` when it does not open, `value` then unchanged.
    fn open(&mut self, keys: &Signer, key: &str, value: &mut String) -> Option<()> {
        let (sealed, v1) = match value.strip_prefix(SEALED) {
            Some(sealed) => (sealed, false),
            None => (value.strip_prefix(SEALED_V1)?, true),
        };
        let len = base64url::decoded_len(sealed.len())?;
        if len < NONCE_BYTES + TAG_BYTES {
            return None;
        }
        let (mut stack, mut heap) = ([0; SMALL_SEALED], Vec::new());
        let bytes = buffer(&mut stack, &mut heap, len);
        base64url::decode_exact(sealed, bytes)?;
        let (mut aad_stack, mut aad_heap) = ([0; SMALL_AAD], Vec::new());
        let storage_key = match v1 {
            false => None,
            true => Some(
                &*self
                    .storage_key
                    .get_or_insert_with(|| self.id.storage_hash()),
            ),
        };
        let aad = aad(storage_key, key, &mut aad_stack, &mut aad_heap);
        let first = Self::first(&mut self.first, &self.key);
        if let Some(text) = open_with(first, aad, bytes) {
            replace(value, text);
            return Some(());
        }
        if keys.count() == 1 {
            return None;
        }
        let id = &self.id;
        let older = self.older.get_or_insert_with(|| {
            let keys = keys.derive_keys(id.as_bytes()).skip(1);
            keys.map(|key| Cipher::new(&key.into())).collect()
        });
        for cipher in older.iter() {
            // Decoded again for each secret: nothing is assumed of what a failed open
            // leaves in the buffer.
            base64url::decode_exact(sealed, bytes)?;
            if let Some(text) = open_with(cipher, aad, bytes) {
                replace(value, text);
                return Some(());
            }
        }
        None
    }
}

/// Whether `value` is sealed, in either format.
fn is_sealed(value: &str) -> bool {
    value.starts_with(SEALED) || value.starts_with(SEALED_V1)
}

/// `value` of entry `key`, sealed under `cipher` (its session's).
fn seal(cipher: &Cipher, key: &str, value: &str) -> String {
    // Sealed in buffers on the stack when the value is small, as most are: the only
    // allocation is the text returned.
    let len = NONCE_BYTES + value.len() + TAG_BYTES;
    let (mut stack, mut heap) = ([0; SMALL_SEALED], Vec::new());
    let bytes = buffer(&mut stack, &mut heap, len);
    let (nonce, rest) = bytes.split_at_mut(NONCE_BYTES);
    rand::thread_rng().fill_bytes(nonce);
    let (text, tag) = rest.split_at_mut(value.len());
    text.copy_from_slice(value.as_bytes());
    let (mut aad_stack, mut aad_heap) = ([0; SMALL_AAD], Vec::new());
    let aad = aad(None, key, &mut aad_stack, &mut aad_heap);
    // Encryption fails only past 64 GiB of plaintext; then, closed: a value that does not
    // open, never the text in the clear.
    let nonce = Nonce::from_slice(nonce);
    let Ok(sealed_tag) = cipher.encrypt_in_place_detached(nonce, aad, text) else {
        return SEALED.to_string();
    };
    tag.copy_from_slice(&sealed_tag);
    let mut out = String::with_capacity(SEALED.len() + base64url::encoded_len(len));
    out.push_str(SEALED);
    base64url::encode_append(bytes, &mut out);
    out
}

/// The associated data of the value of entry `key`: for `s2:`, the name and
/// [`AAD_END`]; for `s1:`, the record's `storage_key`, a zero byte and the name. In
/// `stack` when it fits, as it does for names up to 63 bytes (31 for `s1:`), or else in
/// `heap`.
fn aad<'b>(
    storage_key: Option<&[u8; 32]>,
    key: &str,
    stack: &'b mut [u8; SMALL_AAD],
    heap: &'b mut Vec<u8>,
) -> &'b [u8] {
    let name = key.as_bytes();
    match storage_key {
        None => {
            let aad = buffer(stack, heap, name.len() + 1);
            let (start, end) = aad.split_at_mut(name.len());
            start.copy_from_slice(name);
            end[0] = AAD_END;
            aad
        }
        Some(storage_key) => {
            let aad = buffer(stack, heap, AAD_PREFIX + name.len());
            let (prefix, rest) = aad.split_at_mut(AAD_PREFIX);
            prefix[..32].copy_from_slice(storage_key);
            prefix[32] = 0;
            rest.copy_from_slice(name);
            aad
        }
    }
}

/// `value` replaced by `text`, in its own allocation when it is large enough.
fn replace(value: &mut String, text: &str) {
    value.clear();
    value.push_str(text);
}

/// The first `len` bytes of `stack`, or, when they do not fit, of `heap` grown to them.
fn buffer<'b, const N: usize>(
    stack: &'b mut [u8; N],
    heap: &'b mut Vec<u8>,
    len: usize,
) -> &'b mut [u8] {
    match stack.get_mut(..len) {
        Some(small) => small,
        None => {
            heap.resize(len, 0);
            &mut heap[..]
        }
    }
}

/// `bytes` (nonce, ciphertext, tag) opened under `cipher` with `aad`, in place: the text,
/// when it opens to UTF-8.
fn open_with<'b>(cipher: &Cipher, aad: &[u8], bytes: &'b mut [u8]) -> Option<&'b str> {
    let (nonce, rest) = bytes.split_at_mut(NONCE_BYTES);
    let (text, tag) = rest.split_at_mut(rest.len() - TAG_BYTES);
    let (nonce, tag) = (Nonce::from_slice(nonce), Tag::from_slice(tag));
    cipher
        .decrypt_in_place_detached(nonce, aad, text, tag)
        .ok()?;
    std::str::from_utf8(text).ok()
}

#[cfg(any(test, feature = "testing"))]
pub(crate) use over::Sealed;

/// The [`Sealer`] over a store, for the store kit and the tests.
#[cfg(any(test, feature = "testing"))]
mod over {
    use std::sync::Arc;
    use std::time::Duration;

    use super::Sealer;
    use crate::error::StoreError;
    use crate::id::{SessionId, Signer};
    use crate::record::{Changes, SessionRecord};
    use crate::store::{CommitOutcome, CreateOutcome, DeleteOutcome, SessionStore};

    /// A store over a store, sealing what goes into it: the [`Sealer`] as a [`SessionStore`],
    /// for the store kit's rule and for tests. (The fairing seals in its
    /// [`RequestStore`](super::RequestStore), which keeps the session's cipher between a
    /// request's calls.)
    pub(crate) struct Sealed {
        store: Arc<dyn SessionStore>,
        pub(super) sealer: Sealer,
    }

    impl Sealed {
        /// `store`, sealing at rest under `keys`, accepting values written before sealing
        /// when `accept_unsealed`.
        pub(crate) fn new(
            store: Arc<dyn SessionStore>,
            keys: Arc<Signer>,
            accept_unsealed: bool,
        ) -> Self {
            Sealed {
                store,
                sealer: Sealer::new(keys, accept_unsealed),
            }
        }

        fn open(
            &self,
            id: &SessionId,
            record: Option<SessionRecord>,
        ) -> Result<Option<SessionRecord>, StoreError> {
            let Some(record) = record else {
                return Ok(None);
            };
            let mut cipher = self.sealer.cipher(id);
            self.sealer.open_record(&mut cipher, record).map(Some)
        }
    }

    #[rocket::async_trait]
    impl SessionStore for Sealed {
        async fn load(&self, id: &SessionId) -> Result<Option<SessionRecord>, StoreError> {
            self.open(id, self.store.load(id).await?)
        }

        async fn create(
            &self,
            id: &SessionId,
            record: &SessionRecord,
        ) -> Result<CreateOutcome, StoreError> {
            let mut sealed = record.clone();
            let mut cipher = self.sealer.cipher(id);
            self.sealer.seal_record(&mut cipher, &mut sealed);
            self.store.create(id, &sealed).await
        }

        async fn commit(
            &self,
            id: &SessionId,
            changes: &Changes,
        ) -> Result<CommitOutcome, StoreError> {
            let mut sealed = changes.clone();
            let mut cipher = self.sealer.cipher(id);
            self.sealer.seal_changes(&mut cipher, &mut sealed);
            self.store.commit(id, &sealed).await
        }

        async fn touch(&self, id: &SessionId) -> Result<Option<SessionRecord>, StoreError> {
            self.open(id, self.store.touch(id).await?)
        }

        async fn delete(&self, id: &SessionId) -> Result<DeleteOutcome, StoreError> {
            self.store.delete(id).await
        }

        fn timeout(&self) -> Option<Duration> {
            self.store.timeout()
        }

        fn at_rest(&self) -> bool {
            self.store.at_rest()
        }

        async fn shutdown(&self) {
            self.store.shutdown().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::error::StoreError;
    use crate::id::label;
    use crate::store::MemoryStore;
    use crate::store::{CommitOutcome, CreateOutcome, SessionStore};

    fn sealed(secrets: &[&str], accept_unsealed: bool) -> (Sealed, Arc<MemoryStore>) {
        let raw = Arc::new(MemoryStore::default());
        let keys = Arc::new(Signer::new(secrets, label::DATA).unwrap());
        (Sealed::new(raw.clone(), keys, accept_unsealed), raw)
    }

    fn record(entries: &[(&str, &str)]) -> SessionRecord {
        let mut record = SessionRecord::new(Duration::from_secs(60));
        for (key, value) in entries {
            record.insert(*key, *value);
        }
        record
    }

    #[rocket::async_test]
    async fn values_of_every_size_seal_on_the_stack_or_the_heap_and_open_as_written() {
        let (store, raw) = sealed(&["first"], false);
        // Around the largest value sealed on the stack, and far past it.
        let largest_on_stack = SMALL_SEALED - NONCE_BYTES - TAG_BYTES;
        let sizes = [0, 1, largest_on_stack - 1, largest_on_stack];
        let sizes = sizes.into_iter().chain([largest_on_stack + 1, 256 * 1024]);
        for size in sizes {
            let id = SessionId::generate();
            let value = "x".repeat(size);
            let written = record(&[("cart", &value)]);
            let created = store.create(&id, &written).await.unwrap();
            assert_eq!(created, CreateOutcome::Created);
            let at_rest = raw.load(&id).await.unwrap().unwrap();
            let sealed = at_rest.get("cart").unwrap().strip_prefix(SEALED).unwrap();
            let bytes = crate::base64url::decoded_len(sealed.len()).unwrap();
            assert_eq!(bytes, NONCE_BYTES + size + TAG_BYTES, "{size}");
            assert_eq!(store.load(&id).await.unwrap(), Some(written), "{size}");
        }
        // Entry names around the longest whose associated data is built on the stack.
        let longest_on_stack = SMALL_AAD - 1;
        for len in [
            0,
            1,
            longest_on_stack - 1,
            longest_on_stack,
            longest_on_stack + 1,
            1000,
        ] {
            let (id, name) = (SessionId::generate(), "n".repeat(len));
            let written = record(&[(&name, "\"value\""), ("cart", "[]")]);
            let created = store.create(&id, &written).await.unwrap();
            assert_eq!(created, CreateOutcome::Created);
            let at_rest = raw.load(&id).await.unwrap().unwrap();
            assert!(at_rest.get(&name).unwrap().starts_with(SEALED), "{len}");
            assert_eq!(store.load(&id).await.unwrap(), Some(written), "{len}");
            // Bound to its name: moved to another entry, it does not open.
            let mut moved = Changes::default();
            moved.set("cart", at_rest.get(&name).unwrap());
            let moved = raw.commit(&id, &moved).await.unwrap();
            assert_eq!(moved, CommitOutcome::Applied);
            let loaded = store.load(&id).await.unwrap().unwrap();
            assert_eq!(loaded.get("cart"), None, "{len}");
            assert_eq!(loaded.get(&name), Some("\"value\""), "{len}");
        }
    }

    /// `value` of entry `key` of session `id` sealed as the first sealing releases wrote it
    /// (`s1:`, the storage key in the associated data), under `keys`' first secret: the
    /// golden value below holds it to their code.
    fn seal_v1(keys: &Signer, id: &SessionId, key: &str, value: &str) -> String {
        let cipher = Cipher::new(&keys.derive_keys(id.as_bytes()).next().unwrap().into());
        let nonce = [9; NONCE_BYTES];
        let mut text = value.as_bytes().to_vec();
        // Built here, not by `aad`: the format as it was written.
        let aad = [&id.storage_hash()[..], &[0], key.as_bytes()].concat();
        let tag = cipher
            .encrypt_in_place_detached(Nonce::from_slice(&nonce), &aad, &mut text)
            .unwrap();
        let bytes = [&nonce[..], &text, &tag].concat();
        format!("{SEALED_V1}{}", base64url::encode(&bytes))
    }

    #[test]
    fn values_of_the_first_format_open_bound_to_their_name_and_record_whatever_the_name() {
        let keys = Arc::new(Signer::new(&["first"], label::DATA).unwrap());
        let sealer = Sealer::new(keys.clone(), false);
        let (id, other) = (SessionId::generate(), SessionId::generate());
        // Names around the longest whose associated data is built on the stack.
        let longest_on_stack = SMALL_AAD - AAD_PREFIX;
        for len in [
            0,
            1,
            longest_on_stack - 1,
            longest_on_stack,
            longest_on_stack + 1,
            1000,
        ] {
            let name = "n".repeat(len);
            let sealed = seal_v1(&keys, &id, &name, "\"value\"");
            let opened = sealer
                .open_record(&mut sealer.cipher(&id), record(&[(&name, &sealed)]))
                .unwrap();
            assert_eq!(opened, record(&[(&name, "\"value\"")]), "{len}");
            let moved = record(&[("elsewhere", &sealed)]);
            let opened = sealer.open_record(&mut sealer.cipher(&id), moved).unwrap();
            assert!(opened.is_empty(), "{len}");
            let moved = record(&[(&name, &sealed)]);
            let opened = sealer
                .open_record(&mut sealer.cipher(&other), moved)
                .unwrap();
            assert!(opened.is_empty(), "{len}");
        }
        // Neither format's value opens relabelled as the other's, under its name or under
        // the name that spells the other format's associated data. (This id's storage key
        // is UTF-8, so that name is one an entry can have: a reviewer searched for it.)
        let id = SessionId::from_bytes([
            1, 0, 0, 0, 0, 0, 0, 0, 116, 210, 81, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
        ]);
        let spelled = [&id.storage_hash()[..], &[0], b"cart"].concat();
        let spelled = String::from_utf8(spelled).unwrap();
        let v1 = seal_v1(&keys, &id, "cart", "[1]");
        let mut v2 = record(&[("cart", "[1]")]);
        sealer.seal_record(&mut sealer.cipher(&id), &mut v2);
        let v2 = v2.get("cart").unwrap().to_string();
        let relabelled = [
            v1.replacen(SEALED_V1, SEALED, 1),
            v2.replacen(SEALED, SEALED_V1, 1),
        ];
        for value in relabelled {
            for name in ["cart", &spelled] {
                let opened = sealer
                    .open_record(&mut sealer.cipher(&id), record(&[(name, &value)]))
                    .unwrap();
                assert!(opened.is_empty(), "{value} as {name:?}");
            }
        }
        // A value in the clear beside `s1:` ones is refused as beside `s2:` ones, even
        // while values from before sealing are accepted.
        let sealer = Sealer::new(keys.clone(), true);
        let planted = record(&[("cart", &v1), ("$user", "\"mallory\"")]);
        let opened = sealer.open_record(&mut sealer.cipher(&id), planted);
        assert!(matches!(opened, Err(StoreError::Corrupt(_))), "{opened:?}");
    }

    #[rocket::async_test]
    async fn values_are_sealed_in_the_store_and_open_as_written() {
        let (store, raw) = sealed(&["first"], true);
        let id = SessionId::generate();
        let written = record(&[("$user", "\"alice\""), ("cart", "[\"apple\"]")]);
        assert_eq!(
            store.create(&id, &written).await.unwrap(),
            CreateOutcome::Created
        );
        let at_rest = raw.load(&id).await.unwrap().unwrap();
        for (key, value) in at_rest.entries() {
            assert!(value.starts_with(SEALED), "{key}: {value}");
            assert!(!value.contains("alice") && !value.contains("apple"));
        }
        // Names stay readable: the store still sees a signed-in session.
        assert!(at_rest.is_authenticated());
        assert_eq!(store.load(&id).await.unwrap(), Some(written.clone()));

        let mut changes = Changes::default();
        changes.set("cart", "[\"pear\"]");
        changes.remove("$user");
        assert_eq!(
            store.commit(&id, &changes).await.unwrap(),
            CommitOutcome::Applied
        );
        let at_rest = raw.load(&id).await.unwrap().unwrap();
        assert!(!at_rest.entries().any(|(_, v)| v.contains("pear")));
        let loaded = store.load(&id).await.unwrap().unwrap();
        assert_eq!(loaded, record(&[("cart", "[\"pear\"]")]));
        // The same value seals differently each time: nothing to compare across records.
        let seal = || {
            let mut sealed = loaded.clone();
            store
                .sealer
                .seal_record(&mut store.sealer.cipher(&id), &mut sealed);
            sealed
        };
        assert_ne!(seal(), seal());
    }

    #[rocket::async_test]
    async fn a_changed_truncated_or_moved_value_is_absent_and_nothing_fails() {
        let (store, raw) = sealed(&["first"], true);
        let (id, other) = (SessionId::generate(), SessionId::generate());
        let mine = record(&[("cart", "[1]"), ("theme", "\"dark\"")]);
        assert_eq!(
            store.create(&id, &mine).await.unwrap(),
            CreateOutcome::Created
        );
        let theirs = record(&[("cart", "[2]")]);
        assert_eq!(
            store.create(&other, &theirs).await.unwrap(),
            CreateOutcome::Created
        );
        let at_rest = raw.load(&id).await.unwrap().unwrap();
        let cart = at_rest.get("cart").unwrap().to_string();
        let theme = at_rest.get("theme").unwrap().to_string();

        let mut flipped = cart.clone().into_bytes();
        let last = flipped.len() - 1;
        flipped[last] = if flipped[last] == b'A' { b'B' } else { b'A' };
        let cases = [
            ("cart", String::from_utf8(flipped).unwrap()),
            ("cart", cart[..cart.len() - 4].to_string()),
            ("cart", "s1:!!".to_string()),
            ("cart", "s2:!!".to_string()),
            ("cart", "s2:".to_string()),
            // Another entry's value, under this entry's name.
            ("cart", theme.clone()),
        ];
        for (key, value) in cases {
            let mut changes = Changes::default();
            changes.set(key, value);
            assert_eq!(
                raw.commit(&id, &changes).await.unwrap(),
                CommitOutcome::Applied
            );
            let loaded = store.load(&id).await.unwrap().unwrap();
            assert_eq!(loaded.get("cart"), None);
            assert_eq!(loaded.get("theme"), Some("\"dark\""));
        }
        // Another session's value, moved into this one.
        let theirs = raw.load(&other).await.unwrap().unwrap();
        let mut changes = Changes::default();
        changes.set("cart", theirs.get("cart").unwrap());
        assert_eq!(
            raw.commit(&id, &changes).await.unwrap(),
            CommitOutcome::Applied
        );
        assert_eq!(store.load(&id).await.unwrap().unwrap().get("cart"), None);
    }

    #[rocket::async_test]
    async fn values_from_before_sealing_are_kept_once_and_marked_or_refused() {
        let (store, raw) = sealed(&["first"], true);
        let id = SessionId::generate();
        assert_eq!(
            raw.create(&id, &record(&[("cart", "[1]")])).await.unwrap(),
            CreateOutcome::Created
        );
        let loaded = store.load(&id).await.unwrap().unwrap();
        assert_eq!(loaded.get("cart"), Some("[1]"));
        assert_eq!(
            loaded.get(reserved::UNSEALED),
            Some("1"),
            "to be sealed at commit"
        );

        let (strict, raw) = sealed(&["first"], false);
        let planted = record(&[("$user", "\"mallory\""), ("cart", "[1]")]);
        assert_eq!(
            raw.create(&id, &planted).await.unwrap(),
            CreateOutcome::Created
        );
        let planted_in = strict.load(&id).await;
        assert!(
            matches!(planted_in, Err(StoreError::Corrupt(_))),
            "{planted_in:?}"
        );
    }

    #[rocket::async_test]
    async fn a_value_in_the_clear_beside_sealed_ones_does_not_open_and_a_crate_entry_ends_the_session(
    ) {
        let (store, raw) = sealed(&["first"], true);
        let id = SessionId::generate();
        let mine = record(&[("$user", "\"alice\""), ("cart", "[1]")]);
        assert_eq!(
            store.create(&id, &mine).await.unwrap(),
            CreateOutcome::Created
        );
        // Planted in the clear into a sealed session: an entry of the application's is
        // absent, even while values from before sealing are accepted.
        let mut changes = Changes::default();
        changes.set("cart", "[\"planted\"]");
        assert_eq!(
            raw.commit(&id, &changes).await.unwrap(),
            CommitOutcome::Applied
        );
        let loaded = store.load(&id).await.unwrap().unwrap();
        assert_eq!(loaded.get("cart"), None);
        assert_eq!(loaded.get(reserved::UNSEALED), None);
        assert_eq!(loaded.get("$user"), Some("\"alice\""));
        // One of the crate's own: the whole session is no longer trusted.
        let mut changes = Changes::default();
        changes.set("$created", "99999999999999");
        assert_eq!(
            raw.commit(&id, &changes).await.unwrap(),
            CommitOutcome::Applied
        );
        assert!(matches!(store.load(&id).await, Err(StoreError::Corrupt(_))));
    }

    #[rocket::async_test]
    async fn an_old_secret_opens_what_it_sealed_and_an_unknown_one_nothing() {
        let (old, raw) = sealed(&["old"], true);
        let id = SessionId::generate();
        assert_eq!(
            old.create(&id, &record(&[("cart", "[1]")])).await.unwrap(),
            CreateOutcome::Created
        );
        let keys = |secrets: &[&str]| Arc::new(Signer::new(secrets, label::DATA).unwrap());
        let rotated = Sealed::new(raw.clone(), keys(&["new", "old"]), true);
        assert_eq!(
            rotated.load(&id).await.unwrap().unwrap().get("cart"),
            Some("[1]")
        );
        let other = Sealed::new(raw.clone(), keys(&["other"]), true);
        assert_eq!(other.load(&id).await.unwrap().unwrap().get("cart"), None);
    }

    #[test]
    fn values_sealed_by_earlier_releases_still_open_bound_to_their_entry_and_session() {
        // Sealed for this id and secret by d780b06's code (`s1:`, Aes256Gcm,
        // data-encoding), and by the code that introduced `s2:`: the formats, the key's
        // derivation and the associated data are pinned.
        const SEALED_BEFORE: [&str; 2] = [
            "s1:4LLTjIs_cqptLrPtE1vqWlXQ0ExPItllSdM9yzcx7Py4VdZk",
            "s2:iUmhMzclwslotIrq4hFC7KWFRQgMRB8L6bZEKv8r0B3bnm17",
        ];
        let keys = Arc::new(Signer::new(&["golden secret"], label::DATA).unwrap());
        let sealer = Sealer::new(keys, false);
        let id = SessionId::from_bytes([7; 24]);
        let other = SessionId::from_bytes([8; 24]);
        for sealed in SEALED_BEFORE {
            let mut cipher = sealer.cipher(&id);
            let opened = sealer
                .open_record(&mut cipher, record(&[("cart", sealed)]))
                .unwrap();
            assert_eq!(opened, record(&[("cart", "[\"pear\"]")]), "{sealed}");
            // Bound to its entry and its session.
            let moved = record(&[("theme", sealed)]);
            let opened = sealer.open_record(&mut cipher, moved).unwrap();
            assert_eq!(opened.get("theme"), None, "{sealed}");
            let opened = sealer
                .open_record(&mut sealer.cipher(&other), record(&[("cart", sealed)]))
                .unwrap();
            assert_eq!(opened.get("cart"), None, "{sealed}");
        }
    }

    #[rocket::async_test]
    async fn any_of_three_secrets_opens_what_it_sealed() {
        let keys = |secrets: &[&str]| Arc::new(Signer::new(secrets, label::DATA).unwrap());
        let raw = Arc::new(MemoryStore::default());
        for (at, secret) in ["new", "mid", "old"].into_iter().enumerate() {
            let id = SessionId::generate();
            let sealing = Sealed::new(raw.clone(), keys(&[secret]), false);
            let created = sealing
                .create(&id, &record(&[("cart", "[1]")]))
                .await
                .unwrap();
            assert_eq!(created, CreateOutcome::Created);
            let all = Sealed::new(raw.clone(), keys(&["new", "mid", "old"]), false);
            let loaded = all.load(&id).await.unwrap().unwrap();
            assert_eq!(loaded.get("cart"), Some("[1]"), "sealed under secret {at}");
        }
    }
}
