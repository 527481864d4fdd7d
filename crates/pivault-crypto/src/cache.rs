//! Bounded in-memory cache of unwrapped DEKs.

use std::num::NonZeroUsize;
use std::sync::{Arc, Mutex, MutexGuard};

use lru::LruCache;

use crate::Dek;

/// A bounded least-recently-used cache of unwrapped DEKs, keyed by a caller-chosen string
/// such as `"<subject_id>/<scope>"`.
///
/// Unwrapping costs far more than using a DEK, so callers keep hot DEKs here. Evicted or
/// removed entries are dropped; a [`Dek`] is zeroized when its last `Arc` goes. On erasure
/// of a subject call [`DekCache::evict_prefix`] (and tell other instances to do the same).
///
/// A `Mutex` inside makes it `Send + Sync`; operations are O(1) except
/// [`DekCache::evict_prefix`], which is O(len).
pub struct DekCache {
    inner: Mutex<LruCache<String, Arc<Dek>>>,
}

impl DekCache {
    /// A cache holding at most `capacity` DEKs (a capacity of 0 is treated as 1).
    pub fn new(capacity: usize) -> Self {
        let cap = NonZeroUsize::new(capacity).unwrap_or(NonZeroUsize::MIN);
        DekCache {
            inner: Mutex::new(LruCache::new(cap)),
        }
    }

    fn lock(&self) -> MutexGuard<'_, LruCache<String, Arc<Dek>>> {
        // A panic while holding the lock cannot leave the LRU in a state worse than
        // "some entry missing", so recover from poisoning rather than propagate it.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The DEK under `k`, marking it most recently used.
    pub fn get(&self, k: &str) -> Option<Arc<Dek>> {
        self.lock().get(k).cloned()
    }

    /// Inserts or replaces the DEK under `k`, evicting the least recently used entry
    /// if the cache is full.
    pub fn insert(&self, k: String, d: Arc<Dek>) {
        let evicted = self.lock().push(k, d);
        // Drop the evicted DEK after the lock is released.
        drop(evicted);
    }

    /// Removes the entry under exactly `k`, returning it.
    pub fn remove(&self, k: &str) -> Option<Arc<Dek>> {
        self.lock().pop(k)
    }

    /// Removes every entry whose key starts with `prefix` (e.g. `"<subject_id>/"` on
    /// erasure).
    pub fn evict_prefix(&self, prefix: &str) {
        let removed: Vec<Arc<Dek>> = {
            let mut c = self.lock();
            let keys: Vec<String> = c
                .iter()
                .filter(|(k, _)| k.starts_with(prefix))
                .map(|(k, _)| k.clone())
                .collect();
            keys.iter().filter_map(|k| c.pop(k)).collect()
        };
        drop(removed);
    }

    /// Removes every entry.
    pub fn clear(&self) {
        let mut c = self.lock();
        let cap = c.cap();
        // Swap out the whole cache so the DEKs are dropped outside the lock.
        let old = std::mem::replace(&mut *c, LruCache::new(cap));
        drop(c);
        drop(old);
    }

    /// Number of cached DEKs.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// `true` if no DEK is cached.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Maximum number of cached DEKs.
    pub fn capacity(&self) -> usize {
        self.lock().cap().get()
    }
}

impl std::fmt::Debug for DekCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DekCache")
            .field("len", &self.len())
            .field("capacity", &self.capacity())
            .finish()
    }
}
