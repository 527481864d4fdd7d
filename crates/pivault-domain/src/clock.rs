//! Time source for every rule that depends on "now" (consent state, minors' age, retention,
//! deadlines). Decisions take the instant as an argument, so they stay pure; callers get it from
//! a [`Clock`]. All instants are UTC with second precision.

use std::sync::atomic::{AtomicI64, Ordering};
use time::OffsetDateTime;

/// A source of the current instant (UTC).
pub trait Clock: Send + Sync {
    /// The current instant, UTC, truncated to whole seconds.
    fn now(&self) -> OffsetDateTime;
}

/// The system wall clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> OffsetDateTime {
        let now = OffsetDateTime::now_utc();
        now.replace_nanosecond(0).unwrap_or(now)
    }
}

/// A clock that returns a settable instant; for tests and for replaying history.
#[derive(Debug)]
pub struct FixedClock(AtomicI64);

impl FixedClock {
    /// A clock stopped at `at` (sub-second part dropped).
    #[must_use]
    pub fn new(at: OffsetDateTime) -> Self {
        Self(AtomicI64::new(at.unix_timestamp()))
    }
    /// Moves the clock to `at`.
    pub fn set(&self, at: OffsetDateTime) {
        self.0.store(at.unix_timestamp(), Ordering::SeqCst);
    }
    /// Moves the clock forward by `secs` seconds (negative moves it back).
    pub fn advance(&self, secs: i64) {
        self.0.fetch_add(secs, Ordering::SeqCst);
    }
}

impl Clock for FixedClock {
    fn now(&self) -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp(self.0.load(Ordering::SeqCst))
            .unwrap_or(OffsetDateTime::UNIX_EPOCH)
    }
}
