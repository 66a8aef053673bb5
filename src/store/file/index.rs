//! The file store's index in memory: every session it holds, by storage key, with its
//! expiry and whether someone is logged in to it. The cap, eviction and the sweep read it,
//! never the files.

use std::collections::HashMap;

use rocket::log::private as log;

use super::disk::{self, Bad, Dir};
use crate::store::evict;
use crate::SessionRecord;

/// What the index knows of a session.
#[derive(Clone, Copy)]
pub(super) struct Standing {
    /// Milliseconds since the Unix epoch.
    pub(super) expires: u64,
    /// Whether a user is logged in to it: anonymous sessions are evicted first.
    pub(super) signed_in: bool,
}

impl Standing {
    pub(super) fn of(record: &SessionRecord, expires: u64) -> Self {
        Standing {
            expires,
            signed_in: record.is_authenticated(),
        }
    }
}

/// The live sessions in `dir`, read at opening. Expired and undecodable session files are
/// removed; anything else that is not a session file of ours is skipped, with a warning
/// for what sits where a session file would.
pub(super) fn scan(dir: &Dir, limit: u64) -> std::io::Result<HashMap<String, Standing>> {
    let now = disk::now();
    let mut index = HashMap::new();
    for entry in dir.entries()? {
        let Some(key) = disk::session_key(&entry.name) else {
            continue;
        };
        match dir.read(&entry.name, limit) {
            Ok(Some(found)) if found.expires > now => {
                index.insert(key.to_owned(), Standing::of(&found.record, found.expires));
            }
            Ok(Some(_)) | Err(Bad::Garbage(_)) => {
                let _ = dir.remove(&entry.name);
            }
            Ok(None) => {}
            Err(bad) => log::warn!(
                "skipping {}: it {bad}",
                dir.path().join(&entry.name).display()
            ),
        }
    }
    Ok(index)
}

/// The sessions a full store removes to make room, a batch at once: the expired ones,
/// then anonymous ones closest to expiry, and logged-in ones only as many as it takes to
/// bring the store under its cap when no anonymous one is left. Creations in flight can
/// take the store past its cap: the batch is at least what brings it back under.
pub(super) fn victims(index: &HashMap<String, Standing>, cap: usize, now: u64) -> Vec<String> {
    let over = (index.len() + 1).saturating_sub(cap);
    let batch = (cap / 64).max(over);
    let mut chosen: Vec<String> = index
        .iter()
        .filter(|(_, s)| s.expires <= now)
        .map(|(key, _)| key.clone())
        .collect();
    for signed_in in evict::ORDER {
        let wanted = match signed_in {
            false => batch.saturating_sub(chosen.len()),
            true => over.saturating_sub(chosen.len()),
        };
        if wanted == 0 {
            continue;
        }
        let mut class: Vec<(u64, &String)> = index
            .iter()
            .filter(|(_, s)| s.signed_in == signed_in && s.expires > now)
            .map(|(key, s)| (s.expires, key))
            .collect();
        if class.len() > wanted {
            class.select_nth_unstable(wanted - 1);
            class.truncate(wanted);
        }
        chosen.extend(class.into_iter().map(|(_, key)| key.clone()));
    }
    chosen
}

#[cfg(test)]
mod tests {
    use super::*;

    fn standing(expires: u64, signed_in: bool) -> Standing {
        Standing { expires, signed_in }
    }

    #[test]
    fn a_full_store_removes_the_expired_then_anonymous_then_logged_in_sessions() {
        let mut index = HashMap::new();
        index.insert("expired".to_string(), standing(5, true));
        for i in 0..200u64 {
            index.insert(format!("anonymous-{i}"), standing(1_000 + i, false));
            index.insert(format!("alice-{i}"), standing(100 + i, true));
        }
        // Full at 401 sessions: a batch of 6, anonymous ones first.
        let chosen = victims(&index, 401, 10);
        assert!(chosen.contains(&"expired".to_string()));
        assert!(chosen.len() >= 6, "{chosen:?}");
        assert!(chosen.iter().all(|k| !k.starts_with("alice")), "{chosen:?}");

        // Creations in flight took the store 30 past its cap: the anonymous sessions
        // that bring it back under go, and no logged-in one.
        let chosen = victims(&index, 371, 10);
        assert!(chosen.len() >= 31, "{}", chosen.len());
        assert!(chosen.iter().all(|k| !k.starts_with("alice")));

        // Only logged-in sessions left: just enough of them go for the cap to hold,
        // those closest to expiry.
        index.retain(|key, _| key.starts_with("alice"));
        let chosen = victims(&index, 200, 10);
        assert_eq!(chosen, ["alice-0"]);
    }
}
