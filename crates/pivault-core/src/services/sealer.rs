//! The sealer: the key ring and the DEK cache; seals and opens field rows.

use crate::error::CoreError;
use crate::services::key_watch::install;
use crate::values::FieldValue;
use pivault_crypto::{Aad, Dek, WrappedDek};
use pivault_crypto::{DekCache, KeyRing};
use pivault_store::Store;
use pivault_store::{FieldRow, KeyRow, StoreError, WriteTx};
use std::sync::Arc;
use zeroize::Zeroizing;

pub(crate) const SCOPE_PRIMARY: &str = "primary";

pub(crate) const SCOPE_RESTRICTED: &str = "restricted";

/// Whether `e` is a DEK wrapped under a KEK this ring has not loaded.
fn unknown_kek(e: &CoreError) -> bool {
    matches!(
        e,
        CoreError::Crypto(pivault_crypto::CryptoError::UnknownKey { .. })
    )
}

/// Inserts blind-index rows `(generation, kind, digest, subject)`, each under the key
/// generation that computed its digest (see `KeyRing::blind_index_current`).
///
/// # Errors
/// Database failure.
pub(crate) async fn insert_index(
    tx: &mut WriteTx,
    rows: &[(i64, &str, [u8; 32], &str)],
) -> Result<(), StoreError> {
    let mut gens: Vec<i64> = rows.iter().map(|r| r.0).collect();
    gens.sort_unstable();
    gens.dedup();
    for g in gens {
        let of_gen: Vec<(&str, [u8; 32], &str)> = rows
            .iter()
            .filter(|r| r.0 == g)
            .map(|r| (r.1, r.2, r.3))
            .collect();
        tx.insert_blind_index(g, &of_gen).await?;
    }
    Ok(())
}

/// The key ring and the DEK cache. Every field is sealed and opened here; DEKs are unwrapped
/// under the key ring's KEK and cached (bounded, in memory only).
pub(crate) struct Sealer {
    keys: Arc<KeyRing>,
    cache: DekCache,
    store: Store,
    metrics: Arc<crate::metrics::Metrics>,
}

impl Sealer {
    /// A sealer over `keys`, reading wrapped DEKs from `store`; caches up to 100,000 DEKs and
    /// counts the cache's hits and misses into `metrics`.
    pub(crate) fn new(keys: KeyRing, store: Store, metrics: Arc<crate::metrics::Metrics>) -> Self {
        Self {
            keys: Arc::new(keys),
            cache: DekCache::new(100_000),
            store,
            metrics,
        }
    }

    /// The cached DEK of `key` (`subject/scope`), counting the hit or miss.
    fn cached(&self, key: &str) -> Option<Arc<Dek>> {
        let d = self.cache.get(key);
        self.metrics.dek_cache(d.is_some());
        d
    }

    /// The key ring (blind index, code digests, receipt signer, audit key).
    pub(crate) fn keys(&self) -> &KeyRing {
        &self.keys
    }

    /// A shared handle on the key ring (for the keys epoch watcher, which loads new key
    /// generations into it).
    pub(crate) fn keys_arc(&self) -> Arc<KeyRing> {
        Arc::clone(&self.keys)
    }

    /// Forgets every cached DEK of a subject (after its primary DEK was destroyed).
    pub(crate) fn forget(&self, subject_id: &str) {
        self.cache.evict_prefix(&format!("{subject_id}/"));
    }

    /// Forgets the cached DEK of one scope of a subject.
    pub(crate) fn forget_scope(&self, subject_id: &str, scope: &str) {
        self.cache.remove(&Self::cache_key(subject_id, scope));
    }

    pub(crate) fn cache_key(subject_id: &str, scope: &str) -> String {
        format!("{subject_id}/{scope}")
    }

    /// The subject's DEK for `scope`, from the cache or unwrapped from the store.
    pub(crate) async fn dek(
        &self,
        subject_id: &str,
        scope: &str,
    ) -> Result<Option<Arc<Dek>>, CoreError> {
        if let Some(d) = self.cached(&Self::cache_key(subject_id, scope)) {
            return Ok(Some(d));
        }
        let row = self.store.subject_key(subject_id, scope).await?;
        match self.cache_unwrapped(subject_id, scope, row.clone()) {
            // Wrapped under a KEK generation another process created since the keys epoch was
            // last read: load the generations now and try once more.
            Err(e) if unknown_kek(&e) => {
                install(&self.keys, &self.store.key_generations().await?);
                self.cache_unwrapped(subject_id, scope, row)
            }
            r => r,
        }
    }

    /// Unwraps a key row read after a cache miss and caches the DEK.
    pub(crate) fn cache_unwrapped(
        &self,
        subject_id: &str,
        scope: &str,
        row: Option<KeyRow>,
    ) -> Result<Option<Arc<Dek>>, CoreError> {
        let Some(row) = row else {
            return Ok(None);
        };
        let d = Arc::new(self.unwrap_row(&row)?);
        self.cache
            .insert(Self::cache_key(subject_id, scope), Arc::clone(&d));
        Ok(Some(d))
    }

    /// The subject's DEK for `scope` inside a write transaction: from the cache, else unwrapped
    /// from the key row read through `tx` (never through the pool: see
    /// `pivault_store::StoreError::NestedAcquire`). A key read this way is cached, so call it
    /// before, not after, inserting a key of the same subject and scope in `tx`.
    pub(crate) async fn dek_in(
        &self,
        tx: &mut WriteTx,
        subject_id: &str,
        scope: &str,
    ) -> Result<Option<Arc<Dek>>, CoreError> {
        if let Some(d) = self.cached(&Self::cache_key(subject_id, scope)) {
            return Ok(Some(d));
        }
        let row = tx.subject_key(subject_id, scope).await?;
        match self.cache_unwrapped(subject_id, scope, row.clone()) {
            Err(e) if unknown_kek(&e) => {
                let mut gens = tx.key_generations("kek").await?;
                gens.extend(tx.key_generations("index").await?);
                install(&self.keys, &gens);
                self.cache_unwrapped(subject_id, scope, row)
            }
            r => r,
        }
    }

    /// DEKs of `scope` for many subjects: cache hits, plus one query for the misses.
    pub(crate) async fn deks_many(
        &self,
        subject_ids: &[&str],
        scope: &str,
    ) -> Result<std::collections::HashMap<String, Arc<Dek>>, CoreError> {
        let mut out = std::collections::HashMap::with_capacity(subject_ids.len());
        let mut missing = Vec::new();
        for s in subject_ids {
            match self.cached(&Self::cache_key(s, scope)) {
                Some(d) => {
                    out.insert((*s).to_string(), d);
                }
                None => missing.push(*s),
            }
        }
        missing.sort_unstable();
        missing.dedup();
        if !missing.is_empty() {
            let rows = self.store.subject_keys_many(&missing, scope).await?;
            let known = self.keys.kek_ids();
            if rows.iter().any(|r| !known.contains(&r.kek_id)) {
                install(&self.keys, &self.store.key_generations().await?);
            }
            for row in rows {
                let d = Arc::new(self.unwrap_row(&row)?);
                self.cache
                    .insert(Self::cache_key(&row.subject_id, scope), Arc::clone(&d));
                out.insert(row.subject_id, d);
            }
        }
        Ok(out)
    }

    /// Puts a freshly created DEK in the cache.
    pub(crate) fn cache_dek(&self, subject_id: &str, scope: &str, dek: Arc<Dek>) {
        self.cache.insert(Self::cache_key(subject_id, scope), dek);
    }

    pub(crate) fn unwrap_row(&self, row: &KeyRow) -> Result<Dek, CoreError> {
        let w = WrappedDek {
            key_id: row.key_id.clone(),
            kek_id: row.kek_id.clone(),
            bytes: row.wrapped.clone(),
        };
        Ok(self.keys.unwrap_dek(&row.subject_id, &row.scope, &w)?)
    }

    pub(crate) fn new_dek(&self, subject_id: &str, scope: &str, now: i64) -> (Dek, KeyRow) {
        Self::new_dek_with(&self.keys, subject_id, scope, now)
    }

    /// [`Sealer::new_dek`] with the key ring at hand (for the importer's sealing threads).
    pub(crate) fn new_dek_with(
        keys: &KeyRing,
        subject_id: &str,
        scope: &str,
        now: i64,
    ) -> (Dek, KeyRow) {
        let dek = keys.generate_dek();
        let w = keys.wrap_dek(subject_id, scope, &dek);
        let row = KeyRow {
            subject_id: subject_id.to_string(),
            scope: scope.to_string(),
            key_id: w.key_id,
            kek_id: w.kek_id,
            wrapped: w.bytes,
            created_at: now,
        };
        (dek, row)
    }

    #[allow(clippy::too_many_arguments)]
    pub(crate) fn seal_row(
        dek: &Dek,
        subject_id: &str,
        record: &str,
        name: &str,
        category: &str,
        value: &FieldValue,
        restricted_until: Option<i64>,
        now: i64,
    ) -> FieldRow {
        let field = format!("{record}/{name}");
        let pt = Zeroizing::new(value.encode());
        let aad = Aad {
            subject_id,
            category,
            field: &field,
            key_id: dek.key_id(),
        };
        FieldRow {
            subject_id: subject_id.to_string(),
            record: record.to_string(),
            name: name.to_string(),
            category: category.to_string(),
            key_id: dek.key_id().to_string(),
            ciphertext: dek.seal(&aad, &pt),
            restricted_until,
            updated_at: now,
        }
    }

    /// Opens one sealed field with `dek`.
    pub(crate) fn open_row(dek: &Dek, row: &FieldRow) -> Result<FieldValue, CoreError> {
        if row.key_id != dek.key_id() {
            return Err(CoreError::Crypto(pivault_crypto::CryptoError::UnknownKey {
                key_id: row.key_id.clone(),
            }));
        }
        let field = format!("{}/{}", row.record, row.name);
        let aad = Aad {
            subject_id: &row.subject_id,
            category: &row.category,
            field: &field,
            key_id: &row.key_id,
        };
        let pt = dek.open(&aad, &row.ciphertext)?;
        FieldValue::decode(&pt).map_err(|e| CoreError::invalid("stored field", e.code, e.reason))
    }
}
