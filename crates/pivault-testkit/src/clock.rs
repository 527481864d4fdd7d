//! The fixed clock the tests run at.

use std::sync::Arc;
use time::macros::datetime;
use time::OffsetDateTime;

pub use pivault_domain::clock::FixedClock;

/// The instant every test vault starts at (after the data set's last event).
pub const TEST_NOW: OffsetDateTime = datetime!(2026-11-29 00:00 UTC);

/// A [`FixedClock`] at [`TEST_NOW`]; advance it with `set` / `advance`.
#[must_use]
pub fn fixed_clock() -> Arc<FixedClock> {
    fixed_clock_at(TEST_NOW)
}

/// A [`FixedClock`] at `at`.
#[must_use]
pub fn fixed_clock_at(at: OffsetDateTime) -> Arc<FixedClock> {
    Arc::new(FixedClock::new(at))
}
