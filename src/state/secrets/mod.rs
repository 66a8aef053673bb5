//! Reading the secrets that sign cookies and key CSRF tokens, and refusing guessable ones.

mod entropy;

use std::sync::Arc;

use rocket::figment::{value::Value, Figment};
use rocket::log::private as log;

use crate::config::SessionConfig;
use crate::error::Error;
use crate::id::{label, Signer};
use crate::keys::{Keys, UserKeys};

/// The keys: derived from `sessions.secrets` when set, else from Rocket's `secret_key`,
/// else (debug only) from a random secret that lasts as long as the process. Outside
/// debug, a guessable secret (see [`entropy`]) stops launch.
pub(crate) fn keys(config: &SessionConfig, figment: &Figment, debug: bool) -> Result<Keys, Error> {
    let secrets: Vec<Vec<u8>> = if config.secrets.is_empty() {
        let secret_key = match figment.find_value("secret_key") {
            Ok(value) => secret_key_bytes(&value).map_err(|()| {
                Error::config(
                    "secrets",
                    "unset, and Rocket's `secret_key` is not 32 or 64 bytes of base64 or hex: set one of them",
                )
            })?,
            Err(_) => None,
        };
        match secret_key {
            Some(key) => {
                if let Some(problem) = guessable(&key) {
                    let message = format!("unset, and Rocket's `secret_key` is {problem}");
                    refuse("secrets", message, debug)?;
                }
                vec![key]
            }
            None if !debug => {
                return Err(Error::config(
                    "secrets",
                    format!(
                        "the `{}` profile needs a real secret: set `sessions.secrets` or Rocket's `secret_key` (e.g. ROCKET_SECRET_KEY=$(openssl rand -base64 32))",
                        figment.profile()
                    ),
                ));
            }
            None => {
                log::warn!("sessions are signed with a random key and end when the app restarts: set `sessions.secrets` or `secret_key`");
                vec![rand::random::<[u8; 32]>().to_vec()]
            }
        }
    } else {
        for (i, secret) in config.secrets.iter().enumerate() {
            if let Some(problem) = guessable(secret.as_bytes()) {
                refuse(&format!("secrets[{i}]"), problem, debug)?;
            }
        }
        config
            .secrets
            .iter()
            .map(|s| s.as_bytes().to_vec())
            .collect()
    };

    let signer = |label| Signer::new(&secrets, label).expect("at least one secret");
    Ok(Keys {
        session: signer(label::SESSION),
        pending: signer(label::PENDING),
        csrf: signer(label::CSRF),
        users: UserKeys::new(&secrets).expect("at least one secret"),
        data: Arc::new(signer(label::DATA)),
    })
}

/// Why `secret` may not sign outside debug, if it may not: its estimated entropy is under
/// [`entropy::MIN_BITS`].
fn guessable(secret: &[u8]) -> Option<String> {
    let bits = entropy::estimated_bits(secret);
    (bits < entropy::MIN_BITS).then(|| {
        format!(
            "guessable: an estimated {bits:.0} bits of entropy, fewer than {}: generate a secret with `openssl rand -base64 32`",
            entropy::MIN_BITS
        )
    })
}

/// Stops launch with `message` about `sessions.<key>`, or in debug only warns.
fn refuse(key: &str, message: String, debug: bool) -> Result<(), Error> {
    if debug {
        log::warn!("`sessions.{key}`: {message}; this stops launch outside the debug profile");
        return Ok(());
    }
    Err(Error::config(key, message))
}

/// Rocket's `secret_key` read as Rocket reads it: 32 or 64 bytes, as base64 (44 or 88
/// characters), hex (64 or 128) or an array. `Ok(None)` for the all-zero key, which is
/// Rocket's "unset"; `Err` for anything else.
fn secret_key_bytes(value: &Value) -> Result<Option<Vec<u8>>, ()> {
    use data_encoding::{BASE64, HEXLOWER_PERMISSIVE};

    let bytes = match value.as_str() {
        Some(text) => match text.len() {
            44 | 88 => BASE64.decode(text.as_bytes()).map_err(|_| ())?,
            64 | 128 => HEXLOWER_PERMISSIVE
                .decode(text.as_bytes())
                .map_err(|_| ())?,
            _ => return Err(()),
        },
        None => value.deserialize::<Vec<u8>>().map_err(|_| ())?,
    };

    if !matches!(bytes.len(), 32 | 64) {
        return Err(());
    }

    Ok(bytes.iter().any(|b| *b != 0).then_some(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_key_reads_like_rocket_does() {
        let len = |value: Value| secret_key_bytes(&value).map(|key| key.map(|k| k.len()));
        assert_eq!(
            len("hPRYyVRiMyxpw5sBB1XeCMN1kFsDCqKvBi2QJxBVHQk=".into()),
            Ok(Some(32))
        );
        assert_eq!(len("ab".repeat(64).into()), Ok(Some(64)));
        assert_eq!(len(vec![7u8; 32].into()), Ok(Some(32)));
        assert_eq!(
            len(vec![0u8; 64].into()),
            Ok(None),
            "the zero key is Rocket's unset"
        );
        assert_eq!(len("short".into()), Err(()));
        assert_eq!(len("x".repeat(44).into()), Err(()));
        assert_eq!(len(vec![1u8; 16].into()), Err(()));
    }
}
