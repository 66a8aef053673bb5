//! Batching the commands of concurrent requests to a standalone server.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use redis::aio::{ConnectionLike, ConnectionManager};
use redis::{Cmd, ErrorKind, Pipeline, RedisError, RedisResult, Value};
use tokio::sync::oneshot;

/// Sends the commands of concurrent requests to a standalone server together.
///
/// One pipeline is in flight at a time. A command that finds none goes out at once; the
/// commands that arrive while one is in flight go out together when its replies are in,
/// in one write. Under load that is one system call, one wake-up and one read of replies
/// for many requests instead of one each. A command waits for at most the pipeline in
/// flight and its own: two round trips, within the one `timeout`. The sending runs in a
/// task of its own, so that a request that gives up (a timeout, a dropped connection)
/// never strands the commands queued behind its own; and a command whose request gave up
/// before it went out is not sent at all. (One already sent still runs: Redis cannot be
/// told to drop it.)
pub(super) struct Batcher {
    connection: ConnectionManager,
    queue: Mutex<Batch>,
}

#[derive(Default)]
struct Batch {
    /// The queued commands, each with where its reply goes.
    queued: Vec<(Cmd, oneshot::Sender<RedisResult<Value>>)>,
    /// Whether a task is sending; it takes what is queued here when its replies are in.
    sending: bool,
}

impl Batcher {
    pub(super) fn new(connection: ConnectionManager) -> Self {
        Batcher {
            connection,
            queue: Mutex::default(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Batch> {
        // Every change to a batch is a plain push or take: a panic cannot leave it torn.
        self.queue.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(super) async fn query(self: &Arc<Self>, cmd: Cmd) -> RedisResult<Value> {
        let (reply, answer) = oneshot::channel();
        let start = {
            let mut batch = self.lock();
            batch.queued.push((cmd, reply));
            !std::mem::replace(&mut batch.sending, true)
        };
        if start {
            tokio::spawn(Sending::new(self.clone()).run());
        }

        answer.await.unwrap_or_else(|_| {
            Err(RedisError::from((
                ErrorKind::Io,
                "the batch of commands was dropped before it was answered",
            )))
        })
    }
}

/// The task that sends batches until none is queued. Should it be dropped before then
/// (its runtime shutting down), it fails the queued commands and lets the next command
/// start a new one.
struct Sending {
    batcher: Arc<Batcher>,
    finished: bool,
}

impl Sending {
    fn new(batcher: Arc<Batcher>) -> Self {
        Sending {
            batcher,
            finished: false,
        }
    }

    async fn run(mut self) {
        loop {
            let queued = {
                let mut batch = self.batcher.lock();
                if batch.queued.is_empty() {
                    batch.sending = false;
                    self.finished = true;
                    return;
                }
                std::mem::take(&mut batch.queued)
            };

            // Requests that stopped waiting (a timeout) were answered 503: theirs stay unsent.
            let mut commands = Pipeline::with_capacity(queued.len());
            let mut replies = Vec::with_capacity(queued.len());
            for (cmd, reply) in queued {
                if !reply.is_closed() {
                    commands.add_command(cmd);
                    replies.push(reply);
                }
            }
            if replies.is_empty() {
                continue;
            }

            let mut connection = self.batcher.connection.clone();
            let sent = connection.req_packed_commands(&commands, 0, replies.len());
            match sent.await {
                Ok(values) if values.len() == replies.len() => {
                    for (reply, value) in replies.into_iter().zip(values) {
                        // The request may have stopped waiting: nothing to do then.
                        let _ = reply.send(Ok(value));
                    }
                }
                result => {
                    let error = result.err().unwrap_or_else(|| {
                        RedisError::from((
                            ErrorKind::Client,
                            "a pipeline's replies do not match its commands",
                        ))
                    });
                    for reply in replies {
                        let _ = reply.send(Err(error.clone()));
                    }
                }
            }
        }
    }
}

impl Drop for Sending {
    fn drop(&mut self) {
        if !self.finished {
            let mut batch = self.batcher.lock();
            // Dropping the senders answers their requests with an error.
            *batch = Batch::default();
        }
    }
}
