//! Shutdown state: the server sets it, on SIGTERM and when the grace period is over; the accept loops,
//! the sessions and the transfers read it.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

#[derive(Debug, Default)]
pub struct Shutdown {
    stopping: AtomicBool,
    aborting: AtomicBool,
}

impl Shutdown {
    /// How often a blocking wait (an accept, a session waiting for its next command) looks at the state.
    pub const POLL: Duration = Duration::from_millis(500);

    /// SIGTERM: no new sessions, idle sessions close, running transfers go on.
    pub fn begin(&self) {
        self.stopping.store(true, Ordering::SeqCst);
    }

    /// The grace period is over: running transfers stop.
    pub fn abort_transfers(&self) {
        self.aborting.store(true, Ordering::SeqCst);
    }

    pub fn is_stopping(&self) -> bool {
        self.stopping.load(Ordering::SeqCst)
    }

    pub fn transfers_aborted(&self) -> bool {
        self.aborting.load(Ordering::Relaxed)
    }
}
