//! The keys epoch watcher: what makes a revoked API key refused, and a rotated KEK or
//! blind-index key known, on every instance within a poll.
//!
//! Invariants:
//! - Every transaction that revokes or rotates an API key or changes a key generation bumps
//!   `audit_head.keys_epoch` in the same commit (migration 0006).
//! - Each instance polls it every [`KEYS_EPOCH_POLL`] (100 ms). When it moves, the key
//!   generations are reloaded into the key ring, and the principals cache stops trusting every
//!   entry stamped with an older epoch. While the epoch cannot be read, nothing cached is
//!   trusted (authentication asks the database).

use pivault_crypto::{GenerationState, KeyGeneration, KeyKind, KeyRing};
use pivault_store::{KeyGenRow, Store};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// How often each instance reads the keys epoch. A revoked key is refused everywhere within
/// about this long (plus one database round trip).
pub const KEYS_EPOCH_POLL: Duration = Duration::from_millis(100);

/// The last keys epoch read (`i64::MIN`: unknown).
#[derive(Debug)]
pub(crate) struct KeyWatch {
    epoch: AtomicI64,
}

impl KeyWatch {
    /// A watcher polling `store` until it is dropped; reloads `keys`' generations on a change.
    pub(crate) fn spawn(store: Store, keys: Arc<KeyRing>) -> Arc<Self> {
        let me = Arc::new(Self {
            epoch: AtomicI64::new(i64::MIN),
        });
        let weak = Arc::downgrade(&me);
        tokio::spawn(async move {
            while let Some(watch) = weak.upgrade() {
                match store.keys_epoch().await {
                    Ok(e) => {
                        if e != watch.epoch.load(Ordering::SeqCst) {
                            // Generations first: once the new epoch is published, a read of a
                            // row rewrapped under a new KEK must find it loaded.
                            match store.key_generations().await {
                                Ok(rows) => {
                                    install(&keys, &rows);
                                    watch.epoch.store(e, Ordering::SeqCst);
                                }
                                Err(_) => watch.epoch.store(i64::MIN, Ordering::SeqCst),
                            }
                        }
                    }
                    Err(_) => watch.epoch.store(i64::MIN, Ordering::SeqCst),
                }
                drop(watch);
                tokio::time::sleep(KEYS_EPOCH_POLL).await;
            }
        });
        me
    }

    /// The last epoch read; `i64::MIN` while unknown.
    pub(crate) fn epoch(&self) -> i64 {
        self.epoch.load(Ordering::SeqCst)
    }
}

fn state(s: &str) -> GenerationState {
    match s {
        "current" => GenerationState::Current,
        "retired" => GenerationState::Retired,
        _ => GenerationState::Active,
    }
}

/// Loads the recorded key generations (`key_generations` rows) into `keys`.
pub(crate) fn install(keys: &KeyRing, rows: &[KeyGenRow]) {
    for (kind, name) in [(KeyKind::Kek, "kek"), (KeyKind::BlindIndex, "index")] {
        let gens: Vec<KeyGeneration> = rows
            .iter()
            .filter(|r| r.kind == name)
            .map(|r| KeyGeneration {
                generation: r.generation,
                salt: r.salt.clone(),
                state: state(&r.state),
            })
            .collect();
        keys.install_generations(kind, &gens);
    }
}
