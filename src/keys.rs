//! The keys derived from the secrets, one per purpose: pure data, read from the
//! configuration by `state::secrets` at ignite.

use std::sync::Arc;

use crate::id::{label, Signer};

/// The keys derived from the secrets, one per purpose.
pub(crate) struct Keys {
    /// Signs the ids of stored sessions into session cookies.
    pub(crate) session: Signer,
    /// Signs the id a visitor's session will have, while nothing is stored.
    pub(crate) pending: Signer,
    /// Derives CSRF tokens from session ids.
    pub(crate) csrf: Signer,
    /// Names the records that list a user's sessions, and seals the ids they hold.
    pub(crate) users: UserKeys,
    /// Derives, from each session's id, the key its data is sealed under at rest.
    pub(crate) data: Arc<Signer>,
}

/// The keys of the lists of a user's sessions.
#[derive(Clone)]
pub(crate) struct UserKeys {
    /// Derives the id of a user's list from the user.
    pub(crate) index: Signer,
    /// Seals the session ids in it.
    pub(crate) seal: Signer,
}

impl UserKeys {
    /// The keys for `secrets`, the first of which derives and seals.
    pub(crate) fn new<S: AsRef<[u8]>>(secrets: &[S]) -> Option<Self> {
        Some(UserKeys {
            index: Signer::new(secrets, label::USER_INDEX)?,
            seal: Signer::new(secrets, label::SEAL)?,
        })
    }
}
