//! The file store's index in memory: every session it holds, by storage key, with its
//! expiry and whether someone is logged in to it. The cap, eviction and the sweep read it,
//! never the files.

use std::collections::HashMap;

use rocket::log::private as log;

use super::disk::{self, Bad, Dir};
use crate::record::SessionRecord;
use crate::store::evict::{self, Class};

/// What the index knows of a session.
#[derive(Clone, Copy, Debug)]
pub(super) struct Standing {
    /// Milliseconds since the Unix epoch.
    pub(super) expires: u64,
    /// Anonymous, signed in, or a list: what it is to the cap.
    pub(super) class: Class,
}

impl Standing {
    pub(super) fn of(record: &SessionRecord, expires: u64) -> Self {
        Standing {
            expires,
            class: Class::of(record),
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

/// The sessions a full store removes to make room for a new one of `class`, as
/// [`evict::room`] says: the expired ones, then anonymous ones closest to expiry, a batch at
/// once, and signed-in ones only for a sign-in when signed-in sessions fill the store.
/// `creating` counts the creations in flight, anonymous and signed in: they hold their
/// place already. `None` refuses a stranger's session when signed-in ones fill the store.
pub(super) fn victims(
    index: &HashMap<String, Standing>,
    class: Class,
    creating: [usize; 2],
    cap: usize,
    now: u64,
) -> Option<Vec<String>> {
    let mut chosen = Vec::new();
    let mut live = [Vec::new(), Vec::new()];
    for (key, standing) in index {
        match standing.class {
            _ if standing.expires <= now => chosen.push(key.clone()),
            Class::Anonymous => live[0].push((standing.expires, key)),
            Class::SignedIn => live[1].push((standing.expires, key)),
            Class::List => {}
        }
    }
    let [anonymous, signed_in] = &mut live;
    let batch = (cap / 64).max(1);
    let held = anonymous.len() + signed_in.len() + creating[0] + creating[1];
    let plan = evict::room(
        class,
        anonymous.len() + creating[0],
        signed_in.len() + creating[1],
        cap,
        batch,
    )?;
    let mut evicted = 0;
    for (sessions, wanted) in [(anonymous, plan.anonymous), (signed_in, plan.signed_in)] {
        // Creations in flight hold their place but are not on disk yet: not evictable.
        let wanted = wanted.min(sessions.len());
        if wanted == 0 {
            continue;
        }
        sessions.select_nth_unstable(wanted - 1);
        chosen.extend(sessions.drain(..wanted).map(|(_, key)| key.clone()));
        evicted += wanted;
    }
    // A stranger's session that finds no room once what may go has gone (the rest of it
    // held by creations in flight) is refused, so that the cap does not grow with the
    // creations at once; a sign-in is let in, one over at most per sign-in in flight.
    if class == Class::Anonymous && held + 1 > cap + evicted {
        return None;
    }
    Some(chosen)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn standing(expires: u64, class: Class) -> Standing {
        Standing { expires, class }
    }

    #[test]
    fn a_full_store_removes_the_expired_then_anonymous_sessions_and_never_for_a_stranger_a_signed_in_one(
    ) {
        let mut index = HashMap::new();
        index.insert("expired".to_string(), standing(5, Class::SignedIn));
        index.insert("list".to_string(), standing(5_000, Class::List));
        for i in 0..200u64 {
            index.insert(
                format!("anonymous-{i}"),
                standing(1_000 + i, Class::Anonymous),
            );
            index.insert(format!("alice-{i}"), standing(100 + i, Class::SignedIn));
        }
        // Full at 400 live sessions (the list and the expired one aside): a batch of 6,
        // anonymous ones closest to expiry.
        let chosen = victims(&index, Class::Anonymous, [0, 0], 400, 10).unwrap();
        assert!(chosen.contains(&"expired".to_string()));
        assert_eq!(chosen.len(), 7, "{chosen:?}");
        assert!(chosen.contains(&"anonymous-0".to_string()));
        assert!(chosen.iter().all(|k| !k.starts_with("alice")), "{chosen:?}");

        // Creations in flight hold 30 places past the cap: the anonymous sessions that
        // bring it back under go, and no signed-in one.
        let chosen = victims(&index, Class::Anonymous, [20, 10], 400, 10).unwrap();
        assert_eq!(chosen.len(), 32, "{}", chosen.len());
        assert!(chosen.iter().all(|k| !k.starts_with("alice")));

        // Only signed-in sessions left: a stranger is refused, a sign-in evicts the one
        // closest to expiry.
        index.retain(|key, _| key.starts_with("alice") || key == "list");
        assert_eq!(victims(&index, Class::Anonymous, [0, 0], 200, 10), None);
        let chosen = victims(&index, Class::SignedIn, [0, 0], 200, 10).unwrap();
        assert_eq!(chosen, ["alice-0"]);
        // A list is outside the cap.
        assert_eq!(victims(&index, Class::List, [0, 0], 200, 10), Some(vec![]));
    }

    #[test]
    fn a_stranger_finds_no_room_held_by_creations_in_flight() {
        // A review's case: 19 signed-in sessions under a cap of 20, and a stranger's
        // creation in flight holding the last place: the next stranger is refused, where
        // it was let in (nothing to evict) and the cap grew with the creations at once.
        let index: HashMap<_, _> = (0..19u64)
            .map(|i| (format!("alice-{i}"), standing(1_000 + i, Class::SignedIn)))
            .collect();
        assert_eq!(victims(&index, Class::Anonymous, [1, 0], 20, 10), None);
        assert_eq!(victims(&index, Class::Anonymous, [0, 1], 20, 10), None);
        // A sign-in still gets in, one over the cap at most for each sign-in in flight
        // (the stranger's place is not on disk to evict yet); with no one in flight, by
        // the signed-in session closest to expiry.
        assert_eq!(
            victims(&index, Class::SignedIn, [1, 0], 20, 10),
            Some(vec![])
        );
        let full: HashMap<_, _> = (0..20u64)
            .map(|i| (format!("alice-{i}"), standing(1_000 + i, Class::SignedIn)))
            .collect();
        let chosen = victims(&full, Class::SignedIn, [0, 0], 20, 10).unwrap();
        assert_eq!(chosen, ["alice-0"]);
    }
}
