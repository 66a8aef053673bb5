//! One-shot flash messages kept in the session.

use std::sync::Arc;

use rocket::request::{FromRequest, Outcome, Request};
use rocket::{Ignite, Rocket, Sentinel};
use serde::{Deserialize, Serialize};

use crate::error::Error;
use crate::state::{fairing_missing, live, Live};

use crate::record::reserved::FLASH as FLASH_KEY;

/// A message for the next page: set it before a redirect, take it on the page it leads to,
/// and it is gone.
///
/// Taking a message from a visitor who has no session creates none.
///
/// # Outcomes
///
/// - **Success**: always, unless the store fails.
/// - **Error** `503 Service Unavailable` with [`Error::Store`] when the store fails.
///
/// # Example
///
/// ```
/// use rocket::{get, post, response::Redirect};
/// use rocket_server_sessions::{Error, SessionFlash};
///
/// #[post("/save")]
/// fn save(mut flash: SessionFlash) -> Result<Redirect, Error> {
///     flash.set("success", "Saved.")?;
///     Ok(Redirect::to("/"))
/// }
///
/// #[get("/")]
/// fn index(mut flash: SessionFlash) -> String {
///     flash.take().map(|f| f.message).unwrap_or_default()
/// }
/// ```
pub struct SessionFlash {
    live: Arc<Live>,
}

/// A flash message: a kind (e.g. `"success"`, `"error"`) for styling, and the text.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FlashNotice {
    /// What sort of message it is, e.g. `"success"`.
    pub kind: String,
    /// The text.
    pub message: String,
}

impl SessionFlash {
    /// Sets the message the next page will show, replacing any pending one.
    ///
    /// # Errors
    ///
    /// [`Error::TooLarge`] when the message would grow the session past
    /// `max_session_size`; nothing changes then.
    pub fn set(&mut self, kind: &str, message: &str) -> Result<(), Error> {
        let flash = FlashNotice {
            kind: kind.into(),
            message: message.into(),
        };
        self.live.set(FLASH_KEY, &flash)
    }

    /// Takes the pending message, if any: it will not be shown again.
    pub fn take(&mut self) -> Option<FlashNotice> {
        self.live.remove(FLASH_KEY)
    }
}

#[rocket::async_trait]
impl<'r> FromRequest<'r> for SessionFlash {
    type Error = Error;

    async fn from_request(req: &'r Request<'_>) -> Outcome<Self, Self::Error> {
        live(req).await.map(|live| SessionFlash { live })
    }
}

impl Sentinel for SessionFlash {
    fn abort(rocket: &Rocket<Ignite>) -> bool {
        fairing_missing(rocket, "SessionFlash")
    }
}

impl std::fmt::Debug for SessionFlash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionFlash").finish_non_exhaustive()
    }
}
