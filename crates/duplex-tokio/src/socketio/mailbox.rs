//! A socket's handler calls, run one after another in arrival order by a
//! task of their own: sockets progress side by side on every worker of
//! the runtime, a slow handler holds back only its own socket, and no lock
//! is held while a handler runs.
//!
//! The task exists only while there is work: the first call queued on an
//! idle mailbox spawns it, and it ends when the queue is empty, so an idle
//! socket costs no task.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, PoisonError};

use super::handler::BoxFuture;

/// Most handler calls one socket may have waiting by default; past it the
/// server takes the socket out of its namespace (see
/// [`SocketIoConfig::max_queued_events`](super::SocketIoConfig::max_queued_events)).
pub const DEFAULT_MAX_QUEUED_EVENTS: usize = 4096;

/// The calls of one socket.
#[derive(Debug)]
pub(crate) struct Mailbox {
    state: Mutex<State>,
    limit: usize,
}

#[derive(Default)]
struct State {
    jobs: VecDeque<BoxFuture<()>>,
    /// A task is draining the queue.
    running: bool,
}

impl std::fmt::Debug for State {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("State")
            .field("jobs", &self.jobs.len())
            .field("running", &self.running)
            .finish()
    }
}

/// The queue was full; the call was not queued.
#[derive(Debug)]
pub(crate) struct Full;

impl Mailbox {
    pub(crate) fn new(limit: usize) -> Arc<Self> {
        Arc::new(Self {
            state: Mutex::new(State::default()),
            limit,
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Queues `job` after the ones waiting (`force`: even past the limit,
    /// for the connect and disconnect handlers, which must not be lost),
    /// starting a task on `runtime` if none is draining.
    pub(crate) fn push(
        self: &Arc<Self>,
        job: BoxFuture<()>,
        force: bool,
        runtime: &tokio::runtime::Handle,
    ) -> Result<(), Full> {
        let mut state = self.lock();
        if !force && state.jobs.len() >= self.limit {
            return Err(Full);
        }
        state.jobs.push_back(job);
        if !state.running {
            state.running = true;
            runtime.spawn(drain(self.clone()));
        }
        Ok(())
    }
}

impl Mailbox {
    /// Whether a call is running or waiting.
    pub(crate) fn is_busy(&self) -> bool {
        let state = self.lock();
        state.running || !state.jobs.is_empty()
    }
}

/// Runs the queued calls in order until none is left.
async fn drain(mailbox: Arc<Mailbox>) {
    let mut guard = Draining {
        mailbox: mailbox.clone(),
        done: false,
    };
    loop {
        let job = {
            let mut state = mailbox.lock();
            match state.jobs.pop_front() {
                Some(job) => job,
                None => {
                    state.running = false;
                    guard.done = true;
                    return;
                }
            }
        };
        job.await;
    }
}

/// Keeps the mailbox alive when a handler panics (or the task is dropped
/// unfinished): the queue is handed to a fresh task, so the socket's later
/// events still run.
struct Draining {
    mailbox: Arc<Mailbox>,
    done: bool,
}

impl Drop for Draining {
    fn drop(&mut self) {
        if self.done {
            return;
        }
        let mut state = self.mailbox.lock();
        state.running = false;
        if state.jobs.is_empty() {
            return;
        }
        // Outside a runtime (it is shutting down), the calls are dropped
        // with it.
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            state.running = true;
            runtime.spawn(drain(self.mailbox.clone()));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn record(log: &Arc<Mutex<Vec<u32>>>, n: u32, delay_ms: u64) -> BoxFuture<()> {
        let log = log.clone();
        Box::pin(async move {
            tokio::time::sleep(Duration::from_millis(delay_ms)).await;
            log.lock().unwrap().push(n);
        })
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn calls_run_in_order_even_when_earlier_ones_are_slower() {
        let runtime = tokio::runtime::Handle::current();
        let mailbox = Mailbox::new(16);
        let log = Arc::new(Mutex::new(Vec::new()));
        for (n, delay) in [(1, 30), (2, 0), (3, 10), (4, 0)] {
            mailbox
                .push(record(&log, n, delay), false, &runtime)
                .unwrap();
        }
        tokio::time::timeout(Duration::from_secs(5), async {
            while log.lock().unwrap().len() < 4 {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        })
        .await
        .unwrap();
        assert_eq!(*log.lock().unwrap(), vec![1, 2, 3, 4]);
        assert!(!mailbox.lock().running);
    }

    #[tokio::test]
    async fn a_full_mailbox_refuses_all_but_forced_calls() {
        let runtime = tokio::runtime::Handle::current();
        let mailbox = Mailbox::new(2);
        let log = Arc::new(Mutex::new(Vec::new()));
        // The current-thread runtime does not run the drain task until this
        // test yields, so the queue fills up.
        assert!(mailbox.push(record(&log, 1, 0), false, &runtime).is_ok());
        assert!(mailbox.push(record(&log, 2, 0), false, &runtime).is_ok());
        assert!(mailbox.push(record(&log, 3, 0), false, &runtime).is_err());
        assert!(mailbox.push(record(&log, 4, 0), true, &runtime).is_ok());
        tokio::time::timeout(Duration::from_secs(5), async {
            while log.lock().unwrap().len() < 3 {
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        })
        .await
        .unwrap();
        assert_eq!(*log.lock().unwrap(), vec![1, 2, 4]);
    }

    #[tokio::test]
    async fn a_panicking_call_does_not_stop_the_ones_after_it() {
        let runtime = tokio::runtime::Handle::current();
        let mailbox = Mailbox::new(8);
        let log = Arc::new(Mutex::new(Vec::new()));
        mailbox
            .push(Box::pin(async { panic!("handler bug") }), false, &runtime)
            .unwrap();
        mailbox.push(record(&log, 2, 0), false, &runtime).unwrap();
        tokio::time::timeout(Duration::from_secs(5), async {
            while log.lock().unwrap().is_empty() {
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        })
        .await
        .unwrap();
        assert_eq!(*log.lock().unwrap(), vec![2]);
    }
}
