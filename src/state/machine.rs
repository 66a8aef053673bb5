//! The commit machine: every decision between the handler's return and the response.
//!
//! A request's session ends in one of two ways. A guard loaded it: the request's
//! [`State`](super::State) turns into a [`Plan`] (a pure function of what the guards did),
//! and the machine carries the plan out. No guard asked for it: with `rolling`, the
//! machine refreshes the first session the cookies name that the store holds (a
//! *touch*), else it does nothing.
//!
//! The machine decides; it does nothing itself. It is pure data and code: no store, no
//! clock (the caller passes the request's `now`), no metric, no log and no Rocket. Its
//! caller asks it for the next [`Step`], carries the step out, and hands back the
//! [`Answer`], until the machine answers `None`:
//!
//! ```text
//! let mut last = Answer::Start;
//! while let Some(step) = machine.next(last)? {
//!     last = carry_out(step).await?;   // a store error ends the commit: 503
//! }
//! ```
//!
//! # Steps
//!
//! - [`Call`]s, which [`perform`](super::perform) carries out: the store's `load`,
//!   `create`, `commit`, `delete` and `touch`, answered with their outcomes; the lists
//!   of users' sessions (add a session to its user's list, keep the list long enough,
//!   take a session off it), answered [`Answer::Done`].
//! - [`Note`]s, counted metrics and debug lines, written at once: answered
//!   [`Answer::Done`].
//!   A list call is one coarse step: reading a list, writing it and reading it back is
//!   the lists' own IO ([`Users`](crate::store::users::Users)); whether to call, for
//!   which session and user, and for how long, is decided here.
//! - one [`Cookie`] at most, the response's: set the session's or a pending id's, or
//!   expire it.
//!
//! # States
//!
//! Each phase waits for the answer to one step; the steps queued before that one are
//! answered [`Answer::Done`], or their answers decide nothing (a rollback's delete).
//! `[..]` is a step taken only when there is something to do. `Start` is no phase of its
//! own: its steps are queued when the machine is made, so that a phase holds no plan.
//!
//! ```text
//! phase   on the answer                    takes                             then
//! Start   Plan::Nothing                    -                                 done
//!         Plan::Pending                    pending cookie                    done
//!         Plan::Create                     create (the carried id, or fresh) Store
//!         Plan::Update                     [keep list], commit               Update
//!         Plan::Delete                     delete                            Delete
//!         unused, `rolling`, sessions      touch the first                   Touch
//! Store   Created                          [add to list], and when it moves
//!                                            off an old session: delete old  Move
//!                                            else: count, cookie             done
//!         Taken, the carried id            load it                           Find
//!         Taken, a fresh id                create, another fresh id (3 at
//!                                            most, then an error)            Store
//! Find    None (gone again)                create, the carried id again (3
//!                                            tries, then a fresh id)         Store
//!         Some, and it may join it         commit its entries there          Join
//!         Some, and it may not             create, a fresh id                Store
//! Join    Applied                          as Store's Created, carried id
//!         Gone                             as Find's None
//! Move    Absent, and a log-in carried     a debug line, delete the new one,
//!           over without a log-in here       [leave list] (no cookie)        done
//!         otherwise                        [old leaves list], count, cookie  done
//! Update  Applied                          count, [cookie]                   done
//!         Gone (ended meanwhile)           a debug line (no cookie)          done
//! Delete  Deleted                          cookie: pending, else expired;
//!                                            [leave list]                    done
//!         Absent (gone meanwhile)          [leave list] (no cookie)          done
//! Touch   None, a later session cookie     touch the next                    Touch
//!         None, the last                   [expire cookie, when an earlier
//!                                            one's session was deleted]      done
//!         Some, past its absolute timeout  count, delete                     Expire
//!         Some                             [keep list], [commit $created or
//!                                            $listed], cookie                done
//! Expire  any, a later session cookie      touch the next                    Touch
//!         the last, this or an earlier
//!           one Deleted                    expire cookie                     done
//!         the last, none Deleted           -                                 done
//! ```
//!
//! ARCHITECTURE.md ("A request's path") shows where the machine sits between the guards
//! and the store.
//!
//! Each race another request can win shows here as an answer: a creation that finds its id
//! taken (a page and its requests stored a session at once), a session gone before its
//! update (logged out meanwhile), an old session gone before a move (revoked meanwhile).
//! Each is a unit test below; the store kit and `tests/` check the whole end to end.

use std::collections::VecDeque;
use std::time::Duration;

use super::context::max_size;
use super::plan::{cookie_lifetime, list_extension, listed_until, stamp, Lifetime, Plan};
use crate::config::SessionConfig;
use crate::ended::Stamp;
use crate::error::StoreError;
use crate::id::SessionId;
use crate::metrics::{Event, Expiry};
use crate::record::reserved::{self, CREATED, LISTED};
use crate::record::{outlived, within_timeout};
use crate::record::{Changes, SessionRecord};
use crate::store::{CommitOutcome, CreateOutcome, DeleteOutcome};

/// How many times a new session is offered to the store under one id the browser carried,
/// and how many fresh ids it is offered under after that. With 192 random bits, only a
/// broken store takes three fresh ids.
const TRIES: u8 = 3;

/// What the machine asks its caller to do next.
#[derive(Debug, PartialEq)]
pub(crate) enum Step {
    /// A store or list call: [`perform`](super::perform) carries it out.
    Call(Call),
    /// A metric or a log line: [`Note::record`] writes it, at once.
    Note(Note),
    /// The response's cookie: the fairing writes it.
    Cookie(Cookie),
}

/// A call to carry out, and the answer it gets.
#[derive(Debug, PartialEq)]
pub(crate) enum Call {
    /// `load`: [`Answer::Loaded`].
    Load(SessionId),
    /// `create`: [`Answer::Created`], which hands the record back: a retry under another
    /// id copies no entry.
    Create(SessionId, SessionRecord),
    /// `commit`: [`Answer::Committed`].
    Commit(SessionId, Changes),
    /// `delete`: [`Answer::Deleted`].
    Delete(SessionId),
    /// `touch`: [`Answer::Touched`].
    Touch(SessionId),
    /// Put a session on its user's list: [`Answer::Done`]. Boxed: a log-in's rare step
    /// would otherwise size every step.
    AddToList(Box<Listing>),
    /// Keep `user`'s lists at least `lifetime` from now, for their session `id` (put back
    /// on one if it is on none): [`Answer::Done`].
    KeepList {
        user: String,
        id: SessionId,
        lifetime: Duration,
    },
    /// Take session `id` off `user`'s lists: [`Answer::Done`].
    LeaveList { user: String, id: SessionId },
}

/// A note of what the commit did, for the operator: answered [`Answer::Done`].
#[derive(Debug, PartialEq)]
pub(crate) enum Note {
    /// Count a session `Event`.
    Count(Event),
    /// Log a line at debug level.
    Debug(&'static str),
}

/// A session to put on its user's list.
#[derive(Debug, PartialEq)]
pub(crate) struct Listing {
    /// The JSON text of the session's `$user` entry.
    pub(crate) user: String,
    pub(crate) id: SessionId,
    /// The session it moves from (deleted next), whose place on the list it takes.
    pub(crate) replacing: Option<SessionId>,
    /// How long from now the list is kept.
    pub(crate) lifetime: Duration,
}

/// The cookie the response carries.
#[derive(Debug, PartialEq)]
pub(crate) enum Cookie {
    /// The session `id`'s, for that lifetime, with the stamp of a signed-in session.
    Session(SessionId, Lifetime, Option<Stamp>),
    /// The pending id `id`'s: a CSRF token is bound to it, nothing is stored under it.
    Pending(SessionId, Lifetime),
    /// Expire the browser's cookie: its session ended.
    Expire,
}

/// What the last step got.
#[derive(Debug)]
pub(crate) enum Answer {
    /// No step was taken yet: the first question.
    Start,
    /// [`Call::Load`]'s.
    Loaded(Option<SessionRecord>),
    /// [`Call::Create`]'s, with the record it offered.
    Created(CreateOutcome, SessionRecord),
    /// [`Call::Commit`]'s.
    Committed(CommitOutcome),
    /// [`Call::Delete`]'s.
    Deleted(DeleteOutcome),
    /// [`Call::Touch`]'s.
    Touched(Option<SessionRecord>),
    /// A step without an answer of its own (a list's call, a note, the cookie) was
    /// carried out.
    Done,
}

/// The commit of one request's session: ask it [`next`](Machine::next) until it answers
/// `None`.
#[derive(Debug)]
pub(crate) struct Machine<'c> {
    config: &'c SessionConfig,
    /// When the request began, in milliseconds since the Unix epoch.
    now: u64,
    /// Steps decided already whose answers decide nothing, in order.
    queue: Steps,
    /// What the answer to the last of them decides (with an empty queue, the next answer).
    phase: Phase,
    /// The new session being stored: set in the phases `Store`, `Find`, `Join` and `Move`.
    /// Kept here, not in those phases, so that a phase is small to move: the machine
    /// moves its phase on every decision.
    new: Option<New>,
}

/// Where the machine stands: what the next answer it reads decides.
#[derive(Debug)]
enum Phase {
    /// The new session was offered under `Try`'s id: [`Answer::Created`].
    Store(Try),
    /// The id the browser carried was taken: [`Answer::Loaded`], the session that took it.
    Find(Try),
    /// Joining that session: [`Answer::Committed`].
    Join(Try),
    /// The new session `.0` is stored (and listed), and moves off `.1`, deleted:
    /// [`Answer::Deleted`].
    Move(SessionId, SessionId),
    /// Writing the changes of the stored session `id`: [`Answer::Committed`].
    Update(SessionId, Option<(Lifetime, Option<Stamp>)>),
    /// Deleting the stored session `id`: [`Answer::Deleted`].
    Delete {
        id: SessionId,
        pending: Option<(SessionId, Lifetime)>,
        left: Option<String>,
    },
    /// Refreshing the stored session `id`: [`Answer::Touched`]. When it is gone, the
    /// request's later session cookies are tried in turn (`rest`), so that a dead cookie
    /// tossed in before the live one shadows nothing; `expire`: an earlier one's session
    /// was deleted past its absolute timeout, and its cookie is expired unless a later
    /// one is live.
    Touch {
        id: SessionId,
        rest: std::vec::IntoIter<SessionId>,
        expire: bool,
    },
    /// Deleting a session the touch found past its absolute timeout: [`Answer::Deleted`].
    /// `rest` and `expire` as [`Phase::Touch`]'s.
    Expire {
        rest: std::vec::IntoIter<SessionId>,
        expire: bool,
    },
    /// Nothing left to decide: the queued steps, then `None`.
    Done,
}

/// A new session to store: [`Plan::Create`]'s fields but its id.
#[derive(Debug)]
struct New {
    /// The record, while no offer of it to the store is out: each offer moves it into
    /// its `create` call, whose answer hands it back.
    record: Option<SessionRecord>,
    cookie: Lifetime,
    stamp: Option<Stamp>,
    list: Option<(String, Duration)>,
    replaces: Option<SessionId>,
    left: Option<String>,
    needs_old: bool,
}

/// One offer of the new session to the store.
#[derive(Debug, Clone)]
struct Try {
    id: SessionId,
    /// How many offers under this kind of id came before.
    tries: u8,
    /// Whether `id` is the one the browser carried (a pending id, or a gone session's):
    /// another request of the same browser may have stored a session under it meanwhile.
    carried: bool,
}

impl<'c> Machine<'c> {
    /// The commit of `plan`, under `config`, for a request that began at `now`
    /// (milliseconds since the Unix epoch): the `now` the plan was made with.
    pub(crate) fn commit(plan: Plan, config: &'c SessionConfig, now: u64) -> Self {
        let mut machine = Machine::new(config, now);
        machine.phase = machine.start(plan);
        machine
    }

    /// The commit of a request no guard asked for its session: with `rolling`, a touch of
    /// the first session the store holds of those its cookies name (`sessions`: the
    /// first, and the rest in order; read only then), at `now`; otherwise, or without a
    /// session cookie, `None`: nothing to do, no store call.
    pub(crate) fn unused(
        config: &'c SessionConfig,
        now: u64,
        sessions: impl FnOnce() -> Option<(SessionId, Vec<SessionId>)>,
    ) -> Option<Self> {
        // With `touch_after` the fairing cannot tell how old the last refresh is without
        // loading the session: only routes that use it refresh it.
        if !config.rolling || config.touch_after.is_some() {
            return None;
        }
        let (id, rest) = sessions()?;
        let mut machine = Machine::new(config, now);
        machine.phase = machine.touch(id, rest.into_iter(), false);
        Some(machine)
    }

    fn new(config: &'c SessionConfig, now: u64) -> Self {
        Machine {
            config,
            now,
            queue: Steps::default(),
            phase: Phase::Done,
            new: None,
        }
    }

    /// The next step, given `last`, what the step before got ([`Answer::Start`] the first
    /// time); `None` once the commit is done.
    ///
    /// # Errors
    ///
    /// [`StoreError::Unavailable`] when the store took three fresh ids for a new session,
    /// or the answer is not one to the step asked (a caller's bug).
    pub(crate) fn next(&mut self, last: Answer) -> Result<Option<Step>, StoreError> {
        // Only the last queued step's answer decides anything; the first steps were
        // queued when the machine was made.
        if let Some(step) = self.queue.pop_front() {
            return Ok(Some(step));
        }
        if let Phase::Done = self.phase {
            return Ok(None);
        }
        let phase = std::mem::replace(&mut self.phase, Phase::Done);
        self.phase = self.decide(phase, last)?;
        Ok(self.queue.pop_front())
    }

    /// Queues the steps `phase` takes on `last`, and says what their last one's answer
    /// decides.
    fn decide(&mut self, phase: Phase, last: Answer) -> Result<Phase, StoreError> {
        let phase = match (phase, last) {
            (Phase::Store(at), Answer::Created(outcome, record)) => match outcome {
                CreateOutcome::Created => self.stored(at.id)?,
                CreateOutcome::Taken if at.carried => {
                    self.new_session()?.record = Some(record);
                    self.call(Call::Load(at.id.clone()));
                    Phase::Find(at)
                }
                CreateOutcome::Taken => self.fresh(record, at.tries + 1)?,
            },
            (Phase::Find(at), Answer::Loaded(found)) => {
                let record = self.take_record()?;
                match found {
                    // Gone again (deleted, or expired): offer it once more.
                    None => self.offer_again(record, at)?,
                    Some(existing) => match joining(&existing, &record, self.config, self.now) {
                        Some(changes) => {
                            self.new_session()?.record = Some(record);
                            self.call(Call::Commit(at.id.clone(), changes));
                            Phase::Join(at)
                        }
                        None => self.fresh(record, 0)?,
                    },
                }
            }
            (Phase::Join(at), Answer::Committed(outcome)) => match outcome {
                CommitOutcome::Applied => self.stored(at.id)?,
                CommitOutcome::Gone => {
                    let record = self.take_record()?;
                    self.offer_again(record, at)?
                }
            },
            (Phase::Move(id, old), Answer::Deleted(outcome)) => self.moved(id, old, outcome)?,
            (Phase::Update(id, cookie), Answer::Committed(outcome)) => {
                match outcome {
                    // Destroyed (say, logged out) by another request meanwhile: never
                    // resurrect it. Its cookie is that request's to expire, or to replace.
                    CommitOutcome::Gone => self.note(Note::Debug(
                        "the session ended while the request ran; its changes are dropped",
                    )),
                    CommitOutcome::Applied => {
                        self.note(Note::Count(Event::Committed));
                        if let Some((lifetime, stamp)) = cookie {
                            self.cookie(Cookie::Session(id, lifetime, stamp));
                        }
                    }
                }
                Phase::Done
            }
            (Phase::Delete { id, pending, left }, Answer::Deleted(outcome)) => {
                // Only a request whose session was still there sets or expires the
                // cookie: one whose session went meanwhile may be older than the
                // browser's cookie.
                if outcome == DeleteOutcome::Deleted {
                    self.cookie(match pending {
                        Some((id, lifetime)) => Cookie::Pending(id, lifetime),
                        None => Cookie::Expire,
                    });
                }
                if let Some(user) = left {
                    self.call(Call::LeaveList { user, id });
                }
                Phase::Done
            }
            (Phase::Touch { id, rest, expire }, Answer::Touched(Some(record))) => {
                self.touched(id, &record, rest, expire)
            }
            (Phase::Touch { rest, expire, .. }, Answer::Touched(None)) => {
                self.touch_next(rest, expire)
            }
            (Phase::Expire { rest, expire }, Answer::Deleted(outcome)) => {
                self.touch_next(rest, expire || outcome == DeleteOutcome::Deleted)
            }
            (phase, last) => return Err(out_of_turn(phase.name(), &last)),
        };
        Ok(phase)
    }

    /// The first steps of `plan`, queued when the machine is made.
    fn start(&mut self, plan: Plan) -> Phase {
        match plan {
            Plan::Nothing => Phase::Done,
            Plan::Pending { id, cookie } => {
                self.cookie(Cookie::Pending(id, cookie));
                Phase::Done
            }
            Plan::Create {
                id,
                record,
                cookie,
                stamp,
                list,
                replaces,
                left,
                needs_old,
            } => {
                self.new = Some(New {
                    record: None,
                    cookie,
                    stamp,
                    list,
                    replaces,
                    left,
                    needs_old,
                });
                // Under the id the browser carried, if any: see `Phase::Find`.
                let carried = id.is_some();
                let id = id.unwrap_or_else(SessionId::generate);
                let tries = 0;
                self.offer(record, Try { id, tries, carried })
            }
            Plan::Update {
                id,
                changes,
                cookie,
                stamp,
                lists_until,
            } => {
                // The list first: a failure then leaves the session as it was, answered
                // 503.
                if let Some((user, lifetime)) = lists_until {
                    let id = id.clone();
                    self.call(Call::KeepList { user, id, lifetime });
                }
                self.call(Call::Commit(id.clone(), changes));
                Phase::Update(id, cookie.map(|lifetime| (lifetime, stamp)))
            }
            Plan::Delete { id, pending, left } => {
                self.call(Call::Delete(id.clone()));
                Phase::Delete { id, pending, left }
            }
        }
    }

    /// The new session, in a phase that stores one.
    fn new_session(&mut self) -> Result<&mut New, StoreError> {
        self.new
            .as_mut()
            .ok_or_else(|| out_of_turn("store", &Answer::Start))
    }

    /// The new session's record, back from the store and not offered again yet.
    fn take_record(&mut self) -> Result<SessionRecord, StoreError> {
        let new = self.new_session()?;
        new.record
            .take()
            .ok_or_else(|| out_of_turn("find", &Answer::Start))
    }

    /// Offers the new session, `record`, to the store under `at`'s id.
    fn offer(&mut self, record: SessionRecord, at: Try) -> Phase {
        self.call(Call::Create(at.id.clone(), record));
        Phase::Store(at)
    }

    /// The id the browser carried is free again, or the session under it ended before
    /// this joined it: offers it again, up to [`TRIES`] times, then a fresh id.
    fn offer_again(&mut self, record: SessionRecord, at: Try) -> Result<Phase, StoreError> {
        match at.tries + 1 < TRIES {
            true => Ok(self.offer(
                record,
                Try {
                    tries: at.tries + 1,
                    ..at
                },
            )),
            false => self.fresh(record, 0),
        }
    }

    /// Offers the new session under a fresh id, the `tries`th: an error past [`TRIES`].
    fn fresh(&mut self, record: SessionRecord, tries: u8) -> Result<Phase, StoreError> {
        if tries >= TRIES {
            return Err(StoreError::unavailable(
                "the store reported three fresh session ids as taken",
            ));
        }
        let at = Try {
            id: SessionId::generate(),
            tries,
            carried: false,
        };
        Ok(self.offer(record, at))
    }

    /// The new session is stored as `id`: it goes on its user's list, then (when it
    /// replaces one) the old session is deleted; else its cookie is sent.
    fn stored(&mut self, id: SessionId) -> Result<Phase, StoreError> {
        let new = self.new_session()?;
        let listing = new.list.as_ref().map(|(user, lifetime)| Listing {
            user: user.clone(),
            id: id.clone(),
            // The session it moves from is deleted next: it leaves no room to make.
            replacing: new
                .replaces
                .clone()
                .filter(|_| new.left.as_ref() == Some(user)),
            lifetime: *lifetime,
        });
        let (replaces, cookie, stamp) = (new.replaces.clone(), new.cookie, new.stamp);
        if let Some(listing) = listing {
            self.call(Call::AddToList(Box::new(listing)));
        }
        match replaces {
            // On the user's list before the old one goes: "sign out everywhere", listing
            // meanwhile, finds one or the other.
            Some(old) => {
                self.call(Call::Delete(old.clone()));
                Ok(Phase::Move(id, old))
            }
            None => {
                self.new = None;
                self.created(id, cookie, stamp);
                Ok(Phase::Done)
            }
        }
    }

    /// The new session `id` moved off `old`, which the store `outcome` deleted, or had no
    /// longer.
    fn moved(
        &mut self,
        id: SessionId,
        old: SessionId,
        outcome: DeleteOutcome,
    ) -> Result<Phase, StoreError> {
        let new = self
            .new
            .take()
            .ok_or_else(|| out_of_turn("move", &Answer::Start))?;
        if new.needs_old && outcome != DeleteOutcome::Deleted {
            // A log-in carried over without a log-in here lives on only if its session
            // does: one revoked while this request ran stays revoked.
            self.note(Note::Debug(
                "the session ended while the request ran; it is not moved",
            ));
            self.call(Call::Delete(id.clone()));
            if let Some((user, _)) = new.list {
                self.call(Call::LeaveList { user, id });
            }
            return Ok(Phase::Done);
        }
        if let Some(user) = new.left {
            self.call(Call::LeaveList { user, id: old });
        }
        self.created(id, new.cookie, new.stamp);
        Ok(Phase::Done)
    }

    /// The new session `id` is there to stay: counted, and its cookie sent.
    fn created(&mut self, id: SessionId, cookie: Lifetime, stamp: Option<Stamp>) {
        self.note(Note::Count(Event::Created));
        self.cookie(Cookie::Session(id, cookie, stamp));
    }

    /// A touch of session `id`, the request's later session cookies `rest` tried after
    /// it when it is gone; `expire`, as [`Phase::Touch`]'s.
    fn touch(&mut self, id: SessionId, rest: std::vec::IntoIter<SessionId>, expire: bool) -> Phase {
        self.call(Call::Touch(id.clone()));
        Phase::Touch { id, rest, expire }
    }

    /// The touch of the next of the request's session cookies, `rest`; after the last, its
    /// cookie expired when `expire` (an earlier one's session was deleted).
    fn touch_next(&mut self, mut rest: std::vec::IntoIter<SessionId>, expire: bool) -> Phase {
        match rest.next() {
            Some(id) => self.touch(id, rest, expire),
            None => {
                if expire {
                    self.cookie(Cookie::Expire);
                }
                Phase::Done
            }
        }
    }

    /// `rolling` for the session `id`, which the touch found as `record`: its cookie sent
    /// again, as its lifetime now runs. A session past its absolute timeout is deleted
    /// instead, and the request's later session cookies (`rest`) tried.
    fn touched(
        &mut self,
        id: SessionId,
        record: &SessionRecord,
        rest: std::vec::IntoIter<SessionId>,
        expire: bool,
    ) -> Phase {
        let (config, now) = (self.config, self.now);
        if outlived(record, config.absolute_timeout, now) {
            self.note(Note::Count(Event::Expired(Expiry::AbsoluteTimeout)));
            self.call(Call::Delete(id));
            return Phase::Expire { rest, expire };
        }
        let mut changes = Changes::default();
        // A session stored before `absolute_timeout` was set starts its count now, on a
        // route without a guard too.
        if config.absolute_timeout.is_some() && record.created().is_none() {
            changes.set(CREATED, now.to_string());
        }
        // A logged-in session now living past the time its user's lists are kept until:
        // they are kept longer first.
        if let Some((user, lifetime)) = list_extension(record, record.ttl(), config, now) {
            let id = id.clone();
            self.call(Call::KeepList { user, id, lifetime });
            changes.set(LISTED, listed_until(now, lifetime));
        }
        if !changes.is_empty() {
            self.call(Call::Commit(id.clone(), changes));
        }
        let lifetime = cookie_lifetime(record, config, now);
        let stamp = stamp(record, record.ttl(), config, now);
        self.cookie(Cookie::Session(id, lifetime, stamp));
        Phase::Done
    }

    fn call(&mut self, call: Call) {
        self.queue.push_back(Step::Call(call));
    }

    fn note(&mut self, note: Note) {
        self.queue.push_back(Step::Note(note));
    }

    fn cookie(&mut self, cookie: Cookie) {
        self.queue.push_back(Step::Cookie(cookie));
    }
}

/// The error of an answer the machine did not ask for, in `phase`: a caller's bug.
fn out_of_turn(phase: &str, last: &Answer) -> StoreError {
    StoreError::unavailable(format!(
        "the commit machine got the answer of {} in its {phase} phase",
        last.name(),
    ))
}

/// How many steps one decision queues without allocating: the most the table above takes
/// at once is three (a debug line, a delete and a list's call); a decision past it spills.
const INLINE_STEPS: usize = 3;

/// The steps of one decision, in order, kept inline: a commit allocates no queue. The
/// machine decides only once the steps before are all taken, so a decision always finds
/// the queue empty.
#[derive(Debug, Default)]
struct Steps {
    inline: [Option<Step>; INLINE_STEPS],
    /// The next inline step to take, and how many were queued.
    taken: usize,
    queued: usize,
    /// The steps past [`INLINE_STEPS`] of one decision.
    spilled: VecDeque<Step>,
}

impl Steps {
    fn push_back(&mut self, step: Step) {
        match self.inline.get_mut(self.queued) {
            Some(free) if self.spilled.is_empty() => {
                *free = Some(step);
                self.queued += 1;
            }
            _ => self.spilled.push_back(step),
        }
    }

    fn pop_front(&mut self) -> Option<Step> {
        if self.taken < self.queued {
            let step = self.inline[self.taken].take();
            self.taken += 1;
            if self.taken == self.queued {
                (self.taken, self.queued) = (0, 0);
            }
            return step;
        }
        self.spilled.pop_front()
    }
}

impl Answer {
    /// The answer's name, for the error of an answer out of turn.
    fn name(&self) -> &'static str {
        match self {
            Answer::Start => "no step",
            Answer::Loaded(_) => "a load",
            Answer::Created(..) => "a create",
            Answer::Committed(_) => "a commit",
            Answer::Deleted(_) => "a delete",
            Answer::Touched(_) => "a touch",
            Answer::Done => "a call without an answer",
        }
    }
}

impl Phase {
    /// The phase's name, for the error of an answer out of turn.
    fn name(&self) -> &'static str {
        match self {
            Phase::Store(..) => "store",
            Phase::Find(..) => "find",
            Phase::Join(..) => "join",
            Phase::Move(..) => "move",
            Phase::Update(..) => "update",
            Phase::Delete { .. } => "delete",
            Phase::Touch { .. } => "touch",
            Phase::Expire { .. } => "expire",
            Phase::Done => "done",
        }
    }
}

/// How the new session `record` joins `existing`, the session a concurrent request of the
/// same browser stored under its id, at `now`, as an update of it would: its entries (not
/// the crate's record of when the session began or how long it asked to live, which stay
/// the existing one's), and, when `existing` held only bookkeeping and `record` holds the
/// application's data, its full lifetime. `None` when it may not join: `existing` is
/// logged in or a user's list (a new session never joins one), past its absolute
/// timeout, or would grow past `max_session_size`.
fn joining(
    existing: &SessionRecord,
    record: &SessionRecord,
    config: &SessionConfig,
    now: u64,
) -> Option<Changes> {
    let timeout = config.absolute_timeout;
    if existing.is_authenticated() || outlived(existing, timeout, now) {
        return None;
    }
    let mut changes = Changes::default();
    for (key, json) in record.entries() {
        if !reserved::is_metadata(key) {
            changes.set(key, json);
        }
    }
    if !existing.holds_app_data() && record.holds_app_data() {
        changes.reset_ttl(within_timeout(record.ttl(), existing, timeout, now));
    }
    let mut joined = existing.clone();
    joined.apply(&changes);
    let max_size = max_size(config);
    let grows_past = joined.size() > max_size && joined.size() > existing.size();
    (!grows_past).then_some(changes)
}

#[cfg(test)]
mod tests {
    use super::super::plan::tests::{config, record, MAX_AGE, NOW};
    use super::*;
    use crate::record::reserved::{FLASH, USER};
    use crate::time::millis;

    const SECOND: Duration = Duration::from_secs(1);
    const ALICE: &str = "\"alice\"";

    fn id() -> SessionId {
        SessionId::generate()
    }

    /// A new session to store: `record`, under `id` (the one the browser carried) or a
    /// fresh one, with nothing to list or replace.
    fn create(id: Option<SessionId>, record: SessionRecord) -> Plan {
        Plan::Create {
            id,
            record,
            cookie: Some(MAX_AGE),
            stamp: None,
            list: None,
            replaces: None,
            left: None,
            needs_old: false,
        }
    }

    /// A store's answer to a create: [`run`] hands the offered record back.
    fn created() -> Answer {
        Answer::Created(CreateOutcome::Created, SessionRecord::new(Duration::ZERO))
    }

    /// A store's answer to a create under a taken id.
    fn taken() -> Answer {
        Answer::Created(CreateOutcome::Taken, SessionRecord::new(Duration::ZERO))
    }

    /// Runs `machine` against a store that gives `answers`, in order, to its store calls
    /// (list, count and log calls are simply done): every step it took.
    fn run(mut machine: Machine<'_>, answers: Vec<Answer>) -> Result<Vec<Step>, StoreError> {
        let mut answers = answers.into_iter();
        let mut steps = Vec::new();
        let mut last = Answer::Start;
        while let Some(step) = machine.next(last)? {
            last = match &step {
                // The store hands the record it was offered back.
                Step::Call(Call::Create(_, record)) => match answers.next() {
                    Some(Answer::Created(outcome, _)) => Answer::Created(outcome, record.clone()),
                    other => other.expect("an answer for each store call"),
                },
                Step::Call(Call::Load(_) | Call::Commit(..) | Call::Delete(_) | Call::Touch(_)) => {
                    answers.next().expect("an answer for each store call")
                }
                _ => Answer::Done,
            };
            steps.push(step);
        }
        assert!(answers.next().is_none(), "an answer left over: {steps:?}");
        assert!(machine.next(Answer::Done)?.is_none(), "done stays done");
        Ok(steps)
    }

    /// The steps as short lines, each id by its name in `named`, any other by the order
    /// it first appears in (`fresh1`, `fresh2`...).
    fn script(steps: &[Step], named: &[(&SessionId, &str)]) -> Vec<String> {
        let mut fresh: Vec<SessionId> = Vec::new();
        let mut name = |id: &SessionId| match named.iter().find(|(known, _)| *known == id) {
            Some((_, name)) => name.to_string(),
            None => {
                let n = match fresh.iter().position(|f| f == id) {
                    Some(n) => n,
                    None => {
                        fresh.push(id.clone());
                        fresh.len() - 1
                    }
                };
                format!("fresh{}", n + 1)
            }
        };
        let user = |user: &str| user.trim_matches('"').to_string();
        steps
            .iter()
            .map(|step| match step {
                Step::Call(Call::Load(id)) => format!("load {}", name(id)),
                Step::Call(Call::Create(id, _)) => format!("create {}", name(id)),
                Step::Call(Call::Commit(id, _)) => format!("commit {}", name(id)),
                Step::Call(Call::Delete(id)) => format!("delete {}", name(id)),
                Step::Call(Call::Touch(id)) => format!("touch {}", name(id)),
                Step::Call(Call::AddToList(listing)) => match &listing.replacing {
                    Some(old) => format!(
                        "list {} for {} in place of {}",
                        name(&listing.id),
                        user(&listing.user),
                        name(old)
                    ),
                    None => format!("list {} for {}", name(&listing.id), user(&listing.user)),
                },
                Step::Call(Call::KeepList { user: u, id, .. }) => {
                    format!("keep {}'s list for {}", user(u), name(id))
                }
                Step::Call(Call::LeaveList { user: u, id }) => {
                    format!("unlist {} from {}", name(id), user(u))
                }
                Step::Note(Note::Count(event)) => format!("count {event:?}"),
                Step::Note(Note::Debug(_)) => "debug".to_string(),
                Step::Cookie(Cookie::Session(id, _, _)) => format!("cookie {}", name(id)),
                Step::Cookie(Cookie::Pending(id, _)) => format!("pending cookie {}", name(id)),
                Step::Cookie(Cookie::Expire) => "expire cookie".to_string(),
            })
            .collect()
    }

    fn commit(plan: Plan, config: &SessionConfig) -> Machine<'_> {
        Machine::commit(plan, config, NOW)
    }

    #[test]
    fn nothing_to_commit_takes_no_step_and_a_pending_id_only_its_cookie() {
        let config = config();
        assert!(run(commit(Plan::Nothing, &config), vec![])
            .unwrap()
            .is_empty());

        let pending = id();
        let plan = Plan::Pending {
            id: pending.clone(),
            cookie: Some(MAX_AGE),
        };
        let steps = run(commit(plan, &config), vec![]).unwrap();
        assert_eq!(
            steps,
            [Step::Cookie(Cookie::Pending(pending, Some(MAX_AGE)))]
        );
    }

    #[test]
    fn a_new_session_is_stored_counted_and_sent() {
        let config = config();
        let new = record(&[("cart", "[1]")]);
        let steps = run(commit(create(None, new.clone()), &config), vec![created()]).unwrap();
        assert_eq!(
            script(&steps, &[]),
            ["create fresh1", "count Created", "cookie fresh1"]
        );
        let (Step::Call(Call::Create(_, stored)), Step::Cookie(Cookie::Session(_, cookie, _))) =
            (&steps[0], &steps[2])
        else {
            panic!("{steps:?}");
        };
        assert_eq!((stored, *cookie), (&new, Some(MAX_AGE)));
    }

    #[test]
    fn a_fresh_id_the_store_has_is_replaced_by_another_three_times_at_most() {
        let config = config();
        let plan = || create(None, record(&[("a", "1")]));
        let taken = || taken();
        let created = created();
        let steps = run(commit(plan(), &config), vec![taken(), taken(), created]).unwrap();
        assert_eq!(
            script(&steps, &[]),
            [
                "create fresh1",
                "create fresh2",
                "create fresh3",
                "count Created",
                "cookie fresh3"
            ]
        );

        let broken = run(commit(plan(), &config), vec![taken(), taken(), taken()]);
        assert!(
            matches!(broken, Err(StoreError::Unavailable(_))),
            "{broken:?}"
        );
    }

    /// af30cab, 8aa97c5: a page and its requests, sent at once under one pending cookie,
    /// each store a new session under its id: the one that finds it taken joins the
    /// session the other stored, as an update would, and sends the same cookie.
    #[test]
    fn a_new_session_whose_carried_id_was_taken_meanwhile_joins_that_session() {
        let config = config();
        let carried = id();
        let other = record(&[("count", "1"), (CREATED, "1")]);
        let mut new = record(&[("cart", "[1]"), (CREATED, "2")]);
        new.insert(reserved::LIFETIME, "5000");
        let steps = run(
            commit(create(Some(carried.clone()), new), &config),
            vec![
                taken(),
                Answer::Loaded(Some(other)),
                Answer::Committed(CommitOutcome::Applied),
            ],
        )
        .unwrap();
        assert_eq!(
            script(&steps, &[(&carried, "carried")]),
            [
                "create carried",
                "load carried",
                "commit carried",
                "count Created",
                "cookie carried"
            ]
        );
        let Step::Call(Call::Commit(_, changes)) = &steps[2] else {
            panic!("{steps:?}");
        };
        // Its entries, not its start or its own lifetime; the other's lifetime stays.
        let entries: Vec<_> = changes.entries().collect();
        assert_eq!(entries, [("cart", Some("[1]"))]);
        assert_eq!(changes.ttl(), None);
    }

    #[test]
    fn a_carried_id_free_again_or_a_join_ended_meanwhile_is_offered_again() {
        let config = config();
        let carried = id();
        let plan = || create(Some(carried.clone()), record(&[("a", "1")]));
        let named = [(&carried, "carried")];

        // Gone again before the load (deleted, or expired).
        let steps = run(
            commit(plan(), &config),
            vec![taken(), Answer::Loaded(None), created()],
        )
        .unwrap();
        assert_eq!(
            script(&steps, &named),
            [
                "create carried",
                "load carried",
                "create carried",
                "count Created",
                "cookie carried"
            ]
        );

        // Gone before the join's commit.
        let steps = run(
            commit(plan(), &config),
            vec![
                taken(),
                Answer::Loaded(Some(record(&[("b", "2")]))),
                Answer::Committed(CommitOutcome::Gone),
                created(),
            ],
        )
        .unwrap();
        assert_eq!(
            script(&steps, &named)[..4],
            [
                "create carried",
                "load carried",
                "commit carried",
                "create carried"
            ]
        );

        // Three times taken and gone: a fresh id.
        let taken_and_gone = || [taken(), Answer::Loaded(None)];
        let mut answers: Vec<Answer> = (0..3).flat_map(|_| taken_and_gone()).collect();
        answers.push(created());
        let steps = run(commit(plan(), &config), answers).unwrap();
        assert_eq!(
            script(&steps, &named)[5..],
            [
                "load carried",
                "create fresh1",
                "count Created",
                "cookie fresh1"
            ]
        );
    }

    #[test]
    fn a_new_session_never_joins_a_logged_in_one_one_past_its_timeout_or_one_too_large() {
        let config = SessionConfig {
            absolute_timeout: Some(100 * SECOND),
            max_session_size: rocket::data::ByteUnit::Byte(70),
            ..config()
        };
        let new = record(&[("cart", "[1]")]);
        let started = |at: u64| (CREATED, at.to_string());
        let logged_in = record(&[(USER, ALICE)]);
        let list = record(&[(reserved::INDEX, ALICE)]);
        let (key, at) = started(NOW - 100_000);
        let outlived = record(&[("count", "1"), (key, &at)]);
        let large = record(&[("count", &"1".repeat(60))]);
        for existing in [logged_in, list, outlived, large] {
            assert_eq!(joining(&existing, &new, &config, NOW), None, "{existing:?}");
        }
        // One that grows no larger than it is, even past the limit, joins.
        let same = record(&[("cart", "[1]"), ("count", &"1".repeat(60))]);
        assert!(joining(&same, &new, &config, NOW).is_some());

        // The machine then stores its own session under a fresh id.
        let carried = id();
        let steps = run(
            commit(create(Some(carried.clone()), new), &config),
            vec![
                taken(),
                Answer::Loaded(Some(record(&[(USER, ALICE)]))),
                created(),
            ],
        )
        .unwrap();
        assert_eq!(
            script(&steps, &[(&carried, "carried")]),
            [
                "create carried",
                "load carried",
                "create fresh1",
                "count Created",
                "cookie fresh1"
            ]
        );
    }

    /// 8aa97c5: a join of a session that held only a flash, by a request with the
    /// application's data, gives it the full lifetime, but never past the absolute timeout
    /// the joined session started (replaying a pending cookie extends nothing).
    #[test]
    fn a_join_gives_a_flash_the_full_lifetime_within_its_absolute_timeout() {
        let config = SessionConfig {
            absolute_timeout: Some(100 * SECOND),
            ..config()
        };
        let new = record(&[("cart", "[1]")]);
        let mut flash = record(&[(FLASH, "{}")]);
        flash.set_ttl(5 * SECOND);
        let changes = joining(&flash, &new, &config, NOW).expect("it joins");
        assert_eq!(changes.ttl(), Some(MAX_AGE));

        let born = (NOW - 70_000).to_string();
        flash.insert(CREATED, born.as_str());
        let changes = joining(&flash, &new, &config, NOW).expect("it joins");
        assert_eq!(changes.ttl(), Some(30 * SECOND), "what is left of 100 s");
        assert!(changes.entries().all(|(key, _)| key != CREATED));

        // One with the application's data keeps its lifetime.
        let data = record(&[("count", "1")]);
        let changes = joining(&data, &new, &config, NOW).expect("it joins");
        assert_eq!(changes.ttl(), None);
    }

    /// A log-in: the new session is stored and on its user's list before the old one is
    /// deleted and taken off, so that "sign out everywhere" finds one or the other.
    fn log_in(old: &SessionId, left: Option<&str>, needs_old: bool) -> Plan {
        Plan::Create {
            id: None,
            record: record(&[(USER, ALICE)]),
            cookie: Some(MAX_AGE),
            stamp: None,
            list: Some((ALICE.to_string(), 2 * MAX_AGE)),
            replaces: Some(old.clone()),
            left: left.map(String::from),
            needs_old,
        }
    }

    /// bd26f3c.
    #[test]
    fn a_moved_log_in_is_listed_before_its_old_session_is_deleted_and_unlisted() {
        let config = config();
        let old = id();
        let named = [(&old, "old")];
        let answers = || vec![created(), Answer::Deleted(DeleteOutcome::Deleted)];
        let steps = run(commit(log_in(&old, Some(ALICE), false), &config), answers()).unwrap();
        assert_eq!(
            script(&steps, &named),
            [
                "create fresh1",
                "list fresh1 for alice in place of old",
                "delete old",
                "unlist old from alice",
                "count Created",
                "cookie fresh1"
            ]
        );
        let Step::Call(Call::AddToList(listing)) = &steps[1] else {
            panic!("{steps:?}");
        };
        assert_eq!(listing.lifetime, 2 * MAX_AGE);

        // Another user's old session makes no room on alice's list; an anonymous one
        // leaves no list.
        let steps = run(
            commit(log_in(&old, Some("\"bob\""), false), &config),
            answers(),
        );
        assert_eq!(
            script(&steps.unwrap(), &named)[1..4],
            ["list fresh1 for alice", "delete old", "unlist old from bob"]
        );
        let steps = run(commit(log_in(&old, None, false), &config), answers()).unwrap();
        assert_eq!(
            script(&steps, &named),
            [
                "create fresh1",
                "list fresh1 for alice",
                "delete old",
                "count Created",
                "cookie fresh1"
            ]
        );
    }

    /// d897cb7, 28b1306: a regenerate carries a log-in over without a log-in here; when the old
    /// session was revoked ("sign out everywhere") while the request ran, the new one is
    /// deleted and unlisted again, and no cookie is sent: the revocation stands.
    #[test]
    fn a_carried_log_in_whose_old_session_was_revoked_meanwhile_is_rolled_back() {
        let config = config();
        let old = id();
        let named = [(&old, "old")];
        let answers = || {
            vec![
                created(),
                Answer::Deleted(DeleteOutcome::Absent),
                Answer::Deleted(DeleteOutcome::Deleted),
            ]
        };
        let steps = run(commit(log_in(&old, Some(ALICE), true), &config), answers()).unwrap();
        assert_eq!(
            script(&steps, &named),
            [
                "create fresh1",
                "list fresh1 for alice in place of old",
                "delete old",
                "debug",
                "delete fresh1",
                "unlist fresh1 from alice"
            ]
        );

        // A log-in here proves itself: the old session gone changes nothing.
        let mut answers = answers();
        answers.pop();
        let steps = run(commit(log_in(&old, Some(ALICE), false), &config), answers).unwrap();
        assert_eq!(
            script(&steps, &named)[2..],
            [
                "delete old",
                "unlist old from alice",
                "count Created",
                "cookie fresh1"
            ]
        );
    }

    fn update(id: &SessionId, lists_until: bool) -> Plan {
        let mut changes = Changes::default();
        changes.set("cart", "[2]");
        Plan::Update {
            id: id.clone(),
            changes,
            cookie: Some(Some(MAX_AGE)),
            stamp: None,
            lists_until: lists_until.then(|| (ALICE.to_string(), 2 * MAX_AGE)),
        }
    }

    /// An update keeps its user's lists long enough first (a failure leaves the session
    /// as it was), and resends the cookie only when its session was still there: one
    /// logged out meanwhile is never resurrected, its cookie that request's to expire.
    #[test]
    fn an_update_keeps_the_list_first_and_sends_the_cookie_only_when_it_applied() {
        let config = config();
        let stored = id();
        let named = [(&stored, "id")];
        let applied = vec![Answer::Committed(CommitOutcome::Applied)];
        let steps = run(commit(update(&stored, true), &config), applied).unwrap();
        assert_eq!(
            script(&steps, &named),
            [
                "keep alice's list for id",
                "commit id",
                "count Committed",
                "cookie id"
            ]
        );
        assert_eq!(
            steps[0],
            Step::Call(Call::KeepList {
                user: ALICE.to_string(),
                id: stored.clone(),
                lifetime: 2 * MAX_AGE
            })
        );

        let gone = vec![Answer::Committed(CommitOutcome::Gone)];
        let steps = run(commit(update(&stored, false), &config), gone).unwrap();
        assert_eq!(script(&steps, &named), ["commit id", "debug"]);
    }

    /// A destroy sets the pending cookie, or expires the cookie, only when its session was
    /// still there (one gone meanwhile may be older than the browser's cookie); it leaves
    /// its user's list either way.
    #[test]
    fn a_delete_answers_with_the_cookie_only_when_its_session_was_there() {
        let config = config();
        let (stored, pending) = (id(), id());
        let named = [(&stored, "id"), (&pending, "pending")];
        let plan = |pending: Option<&SessionId>| Plan::Delete {
            id: stored.clone(),
            pending: pending.map(|id| (id.clone(), Some(MAX_AGE))),
            left: Some(ALICE.to_string()),
        };
        let deleted = || vec![Answer::Deleted(DeleteOutcome::Deleted)];
        let steps = run(commit(plan(None), &config), deleted()).unwrap();
        assert_eq!(
            script(&steps, &named),
            ["delete id", "expire cookie", "unlist id from alice"]
        );
        let steps = run(commit(plan(Some(&pending)), &config), deleted()).unwrap();
        assert_eq!(
            script(&steps, &named),
            [
                "delete id",
                "pending cookie pending",
                "unlist id from alice"
            ]
        );
        let absent = vec![Answer::Deleted(DeleteOutcome::Absent)];
        let steps = run(commit(plan(None), &config), absent).unwrap();
        assert_eq!(
            script(&steps, &named),
            ["delete id", "unlist id from alice"]
        );
    }

    #[test]
    fn a_route_without_a_guard_touches_its_session_only_with_rolling() {
        let rolling = SessionConfig {
            rolling: true,
            ..config()
        };
        let stored = id();
        // Without `rolling` the cookie is not even read.
        let unread = || -> Option<(SessionId, Vec<SessionId>)> { panic!("the cookie is read") };
        assert!(Machine::unused(&config(), NOW, unread).is_none());
        // No session cookie (none, or a pending id's).
        assert!(Machine::unused(&rolling, NOW, || None).is_none());
        // With `touch_after` only a route that loads the session knows its last refresh.
        let lazy = SessionConfig {
            touch_after: Some(Duration::from_secs(1)),
            ..rolling.clone()
        };
        assert!(Machine::unused(&lazy, NOW, unread).is_none());

        let touch = || Machine::unused(&rolling, NOW, || Some((stored.clone(), Vec::new())));
        let named = [(&stored, "id")];
        let steps = run(touch().unwrap(), vec![Answer::Touched(None)]).unwrap();
        assert_eq!(script(&steps, &named), ["touch id"]);

        let found = Answer::Touched(Some(record(&[("a", "1")])));
        let steps = run(touch().unwrap(), vec![found]).unwrap();
        assert_eq!(
            steps,
            [
                Step::Call(Call::Touch(stored.clone())),
                Step::Cookie(Cookie::Session(stored.clone(), Some(MAX_AGE), None))
            ]
        );
    }

    #[test]
    fn a_touch_past_the_absolute_timeout_deletes_the_session_and_expires_its_cookie() {
        let config = SessionConfig {
            rolling: true,
            absolute_timeout: Some(100 * SECOND),
            ..config()
        };
        let stored = id();
        let named = [(&stored, "id")];
        let born = (NOW - 100_000).to_string();
        let outlived = || Answer::Touched(Some(record(&[("a", "1"), (CREATED, &born)])));
        let touch = || Machine::unused(&config, NOW, || Some((stored.clone(), Vec::new())));
        let deleted = Answer::Deleted(DeleteOutcome::Deleted);
        let steps = run(touch().unwrap(), vec![outlived(), deleted]).unwrap();
        assert_eq!(
            script(&steps, &named),
            [
                "touch id",
                "count Expired(AbsoluteTimeout)",
                "delete id",
                "expire cookie"
            ]
        );
        let absent = Answer::Deleted(DeleteOutcome::Absent);
        let steps = run(touch().unwrap(), vec![outlived(), absent]).unwrap();
        assert_eq!(script(&steps, &named).len(), 3, "no cookie: {steps:?}");
    }

    /// A dead cookie (tossed in by a sibling subdomain) before the live one shadows
    /// nothing: each of the request's session cookies is touched in turn until one's
    /// session is there; a session past its absolute timeout is deleted on the way.
    #[test]
    fn a_touch_tries_each_session_cookie_until_one_is_there() {
        let config = SessionConfig {
            rolling: true,
            absolute_timeout: Some(100 * SECOND),
            ..config()
        };
        let (dead, old, live) = (id(), id(), id());
        let named = [(&dead, "dead"), (&old, "old"), (&live, "live")];
        let touch = |ids: &[&SessionId]| {
            let rest: Vec<SessionId> = ids[1..].iter().map(|id| (*id).clone()).collect();
            Machine::unused(&config, NOW, || Some((ids[0].clone(), rest))).unwrap()
        };
        let now = NOW.to_string();
        let found = || Answer::Touched(Some(record(&[("a", "1"), (CREATED, &now)])));
        let born = (NOW - 100_000).to_string();
        let outlived = || Answer::Touched(Some(record(&[("a", "1"), (CREATED, &born)])));
        let deleted = || Answer::Deleted(DeleteOutcome::Deleted);
        let gone = || Answer::Touched(None);

        let steps = run(touch(&[&dead, &live]), vec![gone(), found()]).unwrap();
        assert_eq!(
            script(&steps, &named),
            ["touch dead", "touch live", "cookie live"]
        );
        let steps = run(touch(&[&old, &live]), vec![outlived(), deleted(), found()]).unwrap();
        assert_eq!(
            script(&steps, &named),
            [
                "touch old",
                "count Expired(AbsoluteTimeout)",
                "delete old",
                "touch live",
                "cookie live"
            ]
        );
        // None there: the deleted one's cookie expired after the last.
        let steps = run(touch(&[&old, &dead]), vec![outlived(), deleted(), gone()]).unwrap();
        assert_eq!(script(&steps, &named).last().unwrap(), "expire cookie");
        // One deleted, the next found past its timeout but gone meanwhile: still expired.
        let absent = || Answer::Deleted(DeleteOutcome::Absent);
        let steps = run(
            touch(&[&old, &live]),
            vec![outlived(), deleted(), outlived(), absent()],
        )
        .unwrap();
        assert_eq!(script(&steps, &named).last().unwrap(), "expire cookie");
        // Only one gone meanwhile: the browser's cookie may be newer, kept.
        let steps = run(touch(&[&old]), vec![outlived(), absent()]).unwrap();
        assert_eq!(script(&steps, &named).last().unwrap(), "delete old");
        let steps = run(touch(&[&dead, &live]), vec![gone(), gone()]).unwrap();
        assert_eq!(script(&steps, &named), ["touch dead", "touch live"]);
    }

    /// bd1bfcb, 3150225: a logged-in session that `rolling` makes outlive the time its
    /// user's lists are kept until keeps them longer first, then records it; a session
    /// stored before `absolute_timeout` was set starts its count.
    #[test]
    fn a_touch_keeps_a_logged_in_sessions_list_longer_and_starts_its_count() {
        let rolling = SessionConfig {
            rolling: true,
            ..config()
        };
        let stored = id();
        let named = [(&stored, "id")];
        let touch = |config| Machine::unused(config, NOW, || Some((stored.clone(), Vec::new())));
        let logged_in = || Answer::Touched(Some(record(&[(USER, ALICE)])));
        let done = || Answer::Committed(CommitOutcome::Applied);
        let steps = run(touch(&rolling).unwrap(), vec![logged_in(), done()]).unwrap();
        assert_eq!(
            script(&steps, &named),
            [
                "touch id",
                "keep alice's list for id",
                "commit id",
                "cookie id"
            ]
        );
        let kept = MAX_AGE + MAX_AGE / 4;
        let Step::Call(Call::Commit(_, changes)) = &steps[2] else {
            panic!("{steps:?}");
        };
        let listed = (NOW + millis(kept)).to_string();
        assert_eq!(
            changes.entries().collect::<Vec<_>>(),
            [(LISTED, Some(listed.as_str()))]
        );
        assert_eq!(changes.ttl(), None, "a touch resets the expiry itself");

        // Listed that long already: only the cookie.
        let listed_then = Answer::Touched(Some(record(&[(USER, ALICE), (LISTED, &listed)])));
        let steps = run(touch(&rolling).unwrap(), vec![listed_then]).unwrap();
        assert_eq!(script(&steps, &named), ["touch id", "cookie id"]);

        let capped = SessionConfig {
            absolute_timeout: Some(100 * SECOND),
            ..rolling.clone()
        };
        let anonymous = Answer::Touched(Some(record(&[("a", "1")])));
        let steps = run(touch(&capped).unwrap(), vec![anonymous, done()]).unwrap();
        let Step::Call(Call::Commit(_, changes)) = &steps[1] else {
            panic!("{steps:?}");
        };
        let now = NOW.to_string();
        assert_eq!(
            changes.entries().collect::<Vec<_>>(),
            [(CREATED, Some(now.as_str()))]
        );
    }

    #[test]
    fn an_answer_out_of_turn_is_an_error_not_a_guess() {
        let config = config();
        let mut machine = commit(update(&id(), false), &config);
        assert!(matches!(machine.next(Answer::Start), Ok(Some(_))));
        let wrong = machine.next(created());
        assert!(matches!(wrong, Err(StoreError::Unavailable(_))));
    }

    #[test]
    fn the_steps_of_a_decision_come_out_in_order_past_the_inline_ones() {
        let mut steps = Steps::default();
        let line = |n: usize| Step::Note(Note::Debug(["a", "b", "c", "d", "e", "f", "g"][n]));
        for n in 0..6 {
            steps.push_back(line(n));
        }
        assert_eq!(steps.pop_front(), Some(line(0)));
        steps.push_back(line(6));
        let rest: Vec<_> = std::iter::from_fn(|| steps.pop_front()).collect();
        assert_eq!(rest, (1..7).map(line).collect::<Vec<_>>());
        // Empty again: the next decision starts inline.
        steps.push_back(line(0));
        assert_eq!(steps.queued, 1);
        assert_eq!(steps.pop_front(), Some(line(0)));
        assert_eq!(steps.pop_front(), None);
    }

    #[test]
    fn steps_and_phases_stay_small_to_move() {
        // Each `next` moves its phase and a step: past 128 bytes, a move is a call to
        // memcpy (the commit machine's cost per request, BENCHMARKS.md).
        assert!(std::mem::size_of::<Step>() <= 72);
        assert!(std::mem::size_of::<Phase>() <= 96);
    }
}
