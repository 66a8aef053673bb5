//! The IO side of the commit [`Machine`](super::Machine): carries out its calls on the
//! request's store and the lists of users' sessions, and decides nothing.

use rocket::log::private as log;

use super::machine::{Answer, Call, Listing, Note};
use super::Context;
use crate::error::StoreError;
use crate::metrics;
use crate::store::users::Users;
use crate::store::RequestStore;
use crate::time::unix_millis;

/// Carries out `call` on `store` (the request's: what is left of its store time), and
/// answers what it got.
///
/// # Errors
///
/// The store's, as it answered the call (or a list's call): the commit ends there.
pub(crate) async fn perform(
    ctx: &Context,
    store: &RequestStore,
    call: Call,
) -> Result<Answer, StoreError> {
    let users = || Users::new(store, &ctx.keys.users, ctx.config.absolute_timeout);
    let answer = match call {
        Call::Load(id) => Answer::Loaded(store.load(&id).await?),
        Call::Create(id, record) => {
            let (outcome, record) = store.create(&id, record).await?;
            Answer::Created(outcome, record)
        }
        Call::Commit(id, changes) => Answer::Committed(store.commit(&id, changes).await?),
        Call::Delete(id) => Answer::Deleted(store.delete(&id).await?),
        Call::Touch(id) => Answer::Touched(store.touch(&id).await?),
        Call::AddToList(listing) => {
            let Listing {
                user,
                id,
                replacing,
                lifetime,
            } = *listing;
            // The member's log-in time is the list's write, as `keep_for` stamps its own.
            let (replacing, now) = (replacing.as_ref(), unix_millis());
            // The lists' calls are boxed: the rare ones, they would size every call's future.
            Box::pin(users().add(&user, &id, replacing, now, lifetime)).await?;
            Answer::Done
        }
        Call::KeepList { user, id, lifetime } => {
            Box::pin(users().keep_for(&user, &id, lifetime)).await?;
            Answer::Done
        }
        Call::LeaveList { user, id } => {
            Box::pin(users().remove(&user, &id)).await?;
            Answer::Done
        }
    };
    Ok(answer)
}

impl Note {
    /// Writes the note: counts its event, or logs its line at debug level.
    pub(crate) fn record(self) {
        match self {
            Note::Count(event) => metrics::count(event, 1),
            Note::Debug(line) => log::debug!("{line}"),
        }
    }
}
