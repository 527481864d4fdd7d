//! Cache of the facts decisions read about a subject (consent state, erased flag, chosen
//! region, birth date), for the decision API.
//!
//! Invariants:
//! - An entry is used only while it is current: loaded under the present facts epoch (a
//!   counter every fact-changing transaction bumps in the same commit, in any process or
//!   instance) and the present local generation (bumped by this process's own changes at once),
//!   and not past the first consent event that was still in the future when it was loaded.
//! - Changes made in this process invalidate immediately. Changes made by another process or
//!   instance are seen when the epoch watcher next polls (every 20 ms).
//! - Doors that release PI (reads, provisions, the privacy center) do not trust the watcher:
//!   they read the facts epoch in the same statement as the subject's sealed fields
//!   (`Store::fields_at_epoch`) and use an entry only if it was stamped with that very epoch,
//!   so they see every change committed before that statement, as if they had loaded the
//!   facts themselves.
//! - Entries hold a birth date (PI) in memory only, like the DEK cache; bounded in size.

use pivault_crypto::Dek;
use pivault_domain::consent::ConsentState;
use pivault_domain::decision::SubjectFacts;
use pivault_store::FieldRow;
use pivault_store::Store;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use time::Date;

/// Entries kept at most.
const CAPACITY: usize = 100_000;
/// How often another process's or instance's changes are looked for.
pub const EPOCH_POLL: Duration = Duration::from_millis(20);
/// Longest an entry lives, whatever happens, in seconds.
const MAX_AGE_SECS: i64 = 60;

/// Facts of one subject as decisions need them.
#[derive(Debug)]
pub(crate) struct CachedFacts {
    pub(crate) erased: bool,
    /// A misuse report's security lock is on (policy §8.7).
    pub(crate) locked: bool,
    pub(crate) home_region: Option<String>,
    pub(crate) consent: ConsentState,
    pub(crate) birth_date: Option<Date>,
    stamp: (i64, u64),
    valid_until: i64,
}

impl CachedFacts {
    /// The cached part of `f`, stamped; it lives until the first consent event that was still
    /// in the future at `now`, and at most `MAX_AGE_SECS`.
    fn of(f: LoadedFacts, stamp: (i64, u64), now: i64) -> Self {
        let valid_until = f
            .next_consent_at
            .map_or(now + MAX_AGE_SECS, |t| t.min(now + MAX_AGE_SECS));
        Self {
            erased: f.erased,
            locked: f.locked,
            home_region: f.home_region,
            consent: f.consent,
            birth_date: f.birth_date,
            stamp,
            valid_until,
        }
    }
}

/// The cache and its epoch watcher.
#[derive(Debug)]
pub(crate) struct FactsCache {
    map: Mutex<lru::LruCache<String, Arc<CachedFacts>>>,
    db_epoch: AtomicI64,
    local_gen: AtomicU64,
}

impl FactsCache {
    /// A cache whose watcher polls `store` for the facts epoch until the cache is dropped.
    pub(crate) fn spawn(store: Store) -> Arc<Self> {
        let cap = std::num::NonZeroUsize::new(CAPACITY).unwrap_or(std::num::NonZeroUsize::MIN);
        let me = Arc::new(Self {
            map: Mutex::new(lru::LruCache::new(cap)),
            db_epoch: AtomicI64::new(i64::MIN),
            local_gen: AtomicU64::new(0),
        });
        let weak = Arc::downgrade(&me);
        tokio::spawn(async move {
            loop {
                let Some(cache) = weak.upgrade() else { break };
                match store.facts_epoch().await {
                    Ok(e) => cache.db_epoch.store(e, Ordering::SeqCst),
                    // Unknown epoch: nothing cached is trusted until the store answers again.
                    Err(_) => cache.db_epoch.store(i64::MIN, Ordering::SeqCst),
                }
                drop(cache);
                tokio::time::sleep(EPOCH_POLL).await;
            }
        });
        me
    }

    /// The current (epoch, generation) stamp; read it BEFORE loading facts.
    pub(crate) fn stamp(&self) -> (i64, u64) {
        (
            self.db_epoch.load(Ordering::SeqCst),
            self.local_gen.load(Ordering::SeqCst),
        )
    }

    /// A current entry for `subject`, if any.
    pub(crate) fn get(
        &self,
        subject: &str,
        stamp: (i64, u64),
        now: i64,
    ) -> Option<Arc<CachedFacts>> {
        if stamp.0 == i64::MIN {
            return None;
        }
        let mut map = self.map.lock().ok()?;
        let hit = map.get(subject)?;
        (hit.stamp == stamp && now < hit.valid_until).then(|| Arc::clone(hit))
    }

    /// Keeps freshly loaded facts (only if nothing changed since `stamp` was read) and returns
    /// them.
    pub(crate) fn insert(
        &self,
        subject: &str,
        stamp: (i64, u64),
        now: i64,
        f: LoadedFacts,
    ) -> Arc<CachedFacts> {
        let entry = Arc::new(CachedFacts::of(f, stamp, now));
        if stamp.0 != i64::MIN && self.stamp() == stamp {
            if let Ok(mut map) = self.map.lock() {
                map.put(subject.to_string(), Arc::clone(&entry));
            }
        }
        entry
    }

    /// This process's generation of local changes; read it BEFORE the statement that reads
    /// the facts epoch ([`FactsCache::get_at`], [`FactsCache::insert_at`]).
    pub(crate) fn local_gen(&self) -> u64 {
        self.local_gen.load(Ordering::SeqCst)
    }

    /// A cached entry for `subject` that is current at the facts epoch `epoch` the caller
    /// has just read from the database (not the watcher's, which may lag): its facts are those
    /// of that epoch exactly, since every change to them bumps it.
    pub(crate) fn get_at(
        &self,
        subject: &str,
        epoch: i64,
        gen: u64,
        now: i64,
    ) -> Option<Arc<CachedFacts>> {
        let mut map = self.map.lock().ok()?;
        let hit = map.get(subject)?;
        (hit.stamp == (epoch, gen) && gen == self.local_gen() && now < hit.valid_until)
            .then(|| Arc::clone(hit))
    }

    /// Keeps facts loaded AFTER the database's facts epoch `epoch` was read (so they are of
    /// that epoch or newer), unless this process changed facts since `gen` was read.
    pub(crate) fn insert_at(
        &self,
        subject: &str,
        epoch: i64,
        gen: u64,
        now: i64,
        f: LoadedFacts,
    ) -> Arc<CachedFacts> {
        let entry = Arc::new(CachedFacts::of(f, (epoch, gen), now));
        if self.local_gen() == gen {
            if let Ok(mut map) = self.map.lock() {
                map.put(subject.to_string(), Arc::clone(&entry));
            }
        }
        entry
    }

    /// After a local change to `subject`'s facts: drop its entry, and make every entry loaded
    /// before now stale (a concurrent load may be about to insert old facts).
    pub(crate) fn invalidate(&self, subject: &str) {
        self.local_gen.fetch_add(1, Ordering::SeqCst);
        if let Ok(mut map) = self.map.lock() {
            map.pop(subject);
        }
    }
}

/// What [`Facts::load`] loads.
pub(crate) struct LoadedFacts {
    /// The earliest consent event still in the future (clock skew), unix seconds: the folded
    /// state changes then.
    pub(crate) next_consent_at: Option<i64>,
    pub(crate) erased: bool,
    /// A misuse report's security lock is on (policy §8.7): only the security role may read.
    pub(crate) locked: bool,
    pub(crate) home_region: Option<String>,
    pub(crate) consent: ConsentState,
    pub(crate) dek: Option<Arc<Dek>>,
    pub(crate) birth_date: Option<Date>,
}

/// What [`Facts::for_release`](super::facts::Facts::for_release) returns: the decision facts
/// (cached or just loaded), the subject's sealed fields read with the epoch they are current
/// at, and the DEK that opens them (`None` once shredded).
pub(crate) struct ReleaseFacts {
    pub(crate) facts: Arc<CachedFacts>,
    pub(crate) fields: Vec<FieldRow>,
    pub(crate) dek: Option<Arc<Dek>>,
}

/// The facts a decision reads, borrowed from what was loaded or cached.
macro_rules! subject_facts_view {
    ($t:ty) => {
        impl $t {
            /// The decision's view of these facts.
            pub(crate) fn view(&self) -> SubjectFacts<'_> {
                SubjectFacts {
                    consent: &self.consent,
                    birth_date: self.birth_date,
                    erased: self.erased,
                    home_region: self.home_region.as_deref(),
                }
            }
        }
    };
}
subject_facts_view!(CachedFacts);
subject_facts_view!(LoadedFacts);
