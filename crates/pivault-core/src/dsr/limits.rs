//! Rate limits of the keyless DSR intake (`POST /v1/dsr`): token buckets per client address
//! and per claimed identity, in this process.
//!
//! Each bucket holds up to `limit` tokens and refills continuously at `limit` per window
//! (a minute per address, an hour per identity: `[dsr]` `intake_per_address_per_minute`,
//! `intake_per_identity_per_hour`). A filing takes one token from each; with none left it is
//! refused with 429 `dsr_rate_limited` and `Retry-After` (the seconds until a token is back).
//!
//! The buckets live in memory, per instance: with N instances behind a balancer a client gets
//! at most N times the limit, and a restart refills every bucket. What bounds a person's inbox
//! for good is kept in the database and holds across instances: one live request per identical
//! filing (later ones are folded into it), at most 5 code sends per request and a per-person
//! daily send limit.

use std::collections::HashMap;
use std::hash::Hash;
use std::net::IpAddr;
use std::sync::Mutex;

/// Buckets kept before idle (full) ones are dropped.
const MAX_BUCKETS: usize = 100_000;

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: f64,
}

/// Token buckets keyed by `K`: `limit` per `window_secs`.
#[derive(Debug)]
struct Buckets<K> {
    map: Mutex<HashMap<K, Bucket>>,
}

impl<K: Hash + Eq + Clone> Buckets<K> {
    fn new() -> Self {
        Self {
            map: Mutex::new(HashMap::new()),
        }
    }

    /// Takes a token for `key` at `now` (seconds, any monotone origin). `Err(secs)` is the
    /// wait until one is back, at least 1.
    fn take(&self, key: &K, limit: u32, window_secs: f64, now: f64) -> Result<(), u64> {
        let cap = f64::from(limit.max(1));
        let rate = cap / window_secs;
        let Ok(mut map) = self.map.lock() else {
            return Ok(()); // a poisoned lock must not close the intake
        };
        if map.len() >= MAX_BUCKETS {
            map.retain(|_, b| b.tokens + (now - b.at) * rate < cap);
        }
        let b = map.entry(key.clone()).or_insert(Bucket {
            tokens: cap,
            at: now,
        });
        b.tokens = (b.tokens + (now - b.at).max(0.0) * rate).min(cap);
        b.at = now;
        if b.tokens >= 1.0 {
            b.tokens -= 1.0;
            Ok(())
        } else {
            #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
            let wait = ((1.0 - b.tokens) / rate).ceil().max(1.0) as u64;
            Err(wait)
        }
    }
}

/// The intake's limiters (one per [`crate::Vault`]).
#[derive(Debug)]
pub(crate) struct IntakeLimits {
    by_address: Buckets<IpAddr>,
    by_identity: Buckets<[u8; 32]>,
    origin: std::time::Instant,
}

impl IntakeLimits {
    pub(crate) fn new() -> Self {
        Self {
            by_address: Buckets::new(),
            by_identity: Buckets::new(),
            origin: std::time::Instant::now(),
        }
    }

    fn now(&self) -> f64 {
        self.origin.elapsed().as_secs_f64()
    }

    /// One filing from `addr`, at most `per_minute` a minute. `Err(retry_after_secs)`.
    pub(crate) fn address(&self, addr: IpAddr, per_minute: u32) -> Result<(), u64> {
        self.by_address.take(&addr, per_minute, 60.0, self.now())
    }

    /// One filing naming the identity with keyed digest `id`, at most `per_hour` an hour.
    pub(crate) fn identity(&self, id: [u8; 32], per_hour: u32) -> Result<(), u64> {
        self.by_identity.take(&id, per_hour, 3600.0, self.now())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bucket_allows_its_limit_then_refuses_until_it_refills() {
        let b = Buckets::<u8>::new();
        for _ in 0..3 {
            assert_eq!(b.take(&1, 3, 60.0, 0.0), Ok(()));
        }
        // 3 a minute: one token back every 20 s.
        assert_eq!(b.take(&1, 3, 60.0, 0.5), Err(20));
        assert_eq!(
            b.take(&2, 3, 60.0, 0.5),
            Ok(()),
            "another key has its own bucket"
        );
        assert_eq!(b.take(&1, 3, 60.0, 20.6), Ok(()));
        assert!(b.take(&1, 3, 60.0, 20.7).is_err());
    }
}
