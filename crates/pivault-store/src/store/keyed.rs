//! The keyed audit chain's head and the vault's key check record (issue 9).
//!
//! Kept apart from the rest of the store: what is here serves the vault's key check at open,
//! the re-keying of a chain written before issue 9 (shard 0's prefix since issue 15), and
//! `audit verify`. Appending and the shard heads are in `shards.rs`.

use super::{Backend, Store, WriteTx};
use crate::rows::{AuditRow, KeyRow, SubjectStatus};
use crate::StoreError;
use pivault_crypto::AuditChainKey;
use sqlx::Row;

/// The one row of `vault_meta` (migration 0005). Holds no secret and no PI.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VaultMetaRow {
    /// The master key's check value (`KeyRing::key_check_value`, 32 bytes); `None` until
    /// the vault is first opened with its key after migration 0005.
    pub key_check: Option<Vec<u8>>,
    /// Ids of the KEKs in use when the check value was recorded, current first,
    /// comma-separated (public labels such as `kek-0123…`).
    pub kek_ids: Option<String>,
    /// Format of the audit chain: `sha256-v0` (unkeyed, before issue 9) or `hmac-sha256-v1`.
    pub chain_format: String,
    /// How an unkeyed chain was re-keyed, if it was: `sha256-v0 entries=N head=HEX` and, when
    /// the old chain did not verify, `broken_at=SEQ`. `None` for a vault keyed from the start.
    pub migrated_from: Option<String>,
    /// Unix seconds of the last change.
    pub updated_at: i64,
}

/// Shard 0's head as stored (the linear chain's head of before issue 15): its number of
/// entries, the last entry's keyed link, and the head MAC (`AuditChainKey::head_mac`; `None`
/// only before the vault's first open with its key).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditHead {
    /// Entries in shard 0 (0: none).
    pub seq: i64,
    /// Keyed link of its last entry ([`GENESIS`] when none).
    pub hash: Vec<u8>,
    /// MAC over (seq, hash).
    pub mac: Option<Vec<u8>>,
}

/// Tables any row of which makes a database "populated": a development key may be made only
/// when every one is empty and the chain has no entry.
const DATA_TABLES: [&str; 11] = [
    "subjects",
    "subject_keys",
    "fields",
    "blind_index",
    "consent_events",
    "api_keys",
    "disclosures",
    "dsr_requests",
    "dsr_codes",
    "erasure_notices",
    "audit_log",
];

const META_COLS: &str = "key_check, kek_ids, chain_format, migrated_from, updated_at";

fn meta_from(r: &sqlx::any::AnyRow) -> Result<VaultMetaRow, StoreError> {
    Ok(VaultMetaRow {
        key_check: r.try_get("key_check")?,
        kek_ids: r.try_get("kek_ids")?,
        chain_format: r.try_get("chain_format")?,
        migrated_from: r.try_get("migrated_from")?,
        updated_at: r.try_get("updated_at")?,
    })
}

fn table_sql(table: &str) -> Result<String, StoreError> {
    if DATA_TABLES.contains(&table) {
        Ok(format!("SELECT 1 FROM {table} LIMIT 1"))
    } else {
        Err(StoreError::Conflict("unknown table"))
    }
}

/// `(count, smallest id)` of rows matched by a `SELECT COUNT(*) AS n, MIN(…) AS first` query.
fn count_and_first(r: &sqlx::any::AnyRow) -> Result<(i64, Option<String>), StoreError> {
    Ok((r.try_get("n")?, r.try_get("first")?))
}

impl Store {
    /// Hands the store the audit chain key (HMAC-SHA256, RFC 2104). Every clone of this store
    /// shares it. Without it, a transaction that appends audit entries does not commit
    /// ([`StoreError::AuditKeyMissing`]); the vault sets it once the master key is checked.
    pub fn set_audit_key(&self, key: AuditChainKey) {
        if let Ok(mut slot) = self.audit_key.write() {
            *slot = Some(key);
        }
    }

    /// The `vault_meta` row, if there is one (migration 0005 makes it; an operator may have
    /// deleted it).
    ///
    /// # Errors
    /// Database failure.
    pub async fn vault_meta(&self) -> Result<Option<VaultMetaRow>, StoreError> {
        let row = sqlx::query(&format!("SELECT {META_COLS} FROM vault_meta WHERE id = 1"))
            .fetch_optional(self.pool.get()?)
            .await?;
        row.as_ref().map(meta_from).transpose()
    }

    /// Shard 0's head with its MAC.
    ///
    /// # Errors
    /// Database failure.
    pub async fn audit_head_sealed(&self) -> Result<AuditHead, StoreError> {
        let row = sqlx::query("SELECT size AS seq, hash, mac FROM audit_shards WHERE shard = 0")
            .fetch_one(self.pool.get()?)
            .await?;
        Ok(AuditHead {
            seq: row.try_get("seq")?,
            hash: row.try_get("hash")?,
            mac: row.try_get("mac")?,
        })
    }

    /// Whether any data table holds a row or the chain has an entry (see `DATA_TABLES`).
    ///
    /// # Errors
    /// Database failure.
    pub async fn is_populated(&self) -> Result<bool, StoreError> {
        for t in DATA_TABLES {
            if sqlx::query(&table_sql(t)?)
                .fetch_optional(self.pool.get()?)
                .await?
                .is_some()
            {
                return Ok(true);
            }
        }
        Ok(self.audit_len().await? > 0)
    }

    /// Subjects (only erased ones when `erased_only`) that no audit entry with one of
    /// `actions` names: `(how many, the smallest such id)`. One index probe per subject
    /// (`audit_log_subject`).
    ///
    /// # Errors
    /// Database failure.
    pub async fn subjects_not_in_audit(
        &self,
        actions: &[&str],
        erased_only: bool,
    ) -> Result<(i64, Option<String>), StoreError> {
        let list = (0..actions.len())
            .map(|i| format!("${}", i + 1))
            .collect::<Vec<_>>()
            .join(", ");
        let sql = format!(
            "SELECT COUNT(*) AS n, MIN(s.id) AS first FROM subjects s WHERE {} NOT EXISTS \
             (SELECT 1 FROM audit_log a WHERE a.subject_id = s.id AND a.action IN ({list}))",
            if erased_only {
                format!("s.status = '{}' AND", SubjectStatus::Erased.as_str())
            } else {
                String::new()
            }
        );
        let mut q = sqlx::query(&sql);
        for a in actions {
            q = q.bind(*a);
        }
        count_and_first(&q.fetch_one(self.pool.get()?).await?)
    }

    /// Consent events that no audit entry names: an event recorded through the API or an
    /// import needs a `consent.<action>` entry of the same subject and purpose; one recorded
    /// by a data subject request (method `dsr`) a `dsr.step.withdraw` entry of the subject.
    /// `(how many, the smallest ledger seq)`.
    ///
    /// # Errors
    /// Database failure.
    pub async fn consents_not_in_audit(&self) -> Result<(i64, Option<i64>), StoreError> {
        let row = sqlx::query(
            "SELECT COUNT(*) AS n, MIN(c.seq) AS first FROM consent_events c WHERE NOT EXISTS \
             (SELECT 1 FROM audit_log a WHERE a.subject_id = c.subject_id AND \
              ((c.method <> 'dsr' AND a.action = 'consent.' || c.action AND a.purpose = c.purpose) \
               OR (c.method = 'dsr' AND a.action = 'dsr.step.withdraw')))",
        )
        .fetch_one(self.pool.get()?)
        .await?;
        Ok((row.try_get("n")?, row.try_get("first")?))
    }

    /// Consent events not recorded by a data subject request (method other than `dsr`).
    ///
    /// # Errors
    /// Database failure.
    pub async fn count_direct_consents(&self) -> Result<i64, StoreError> {
        Ok(
            sqlx::query("SELECT COUNT(*) AS n FROM consent_events WHERE method <> 'dsr'")
                .fetch_one(self.pool.get()?)
                .await?
                .try_get("n")?,
        )
    }

    /// Ids of every API key (public labels), sorted.
    ///
    /// # Errors
    /// Database failure.
    pub async fn api_key_ids(&self) -> Result<Vec<String>, StoreError> {
        let rows = sqlx::query("SELECT key_id FROM api_keys ORDER BY key_id")
            .fetch_all(self.pool.get()?)
            .await?;
        rows.iter().map(|r| Ok(r.try_get("key_id")?)).collect()
    }

    /// Ids of every data subject request, sorted.
    ///
    /// # Errors
    /// Database failure.
    pub async fn dsr_ids(&self) -> Result<Vec<String>, StoreError> {
        let rows = sqlx::query("SELECT id FROM dsr_requests ORDER BY id")
            .fetch_all(self.pool.get()?)
            .await?;
        rows.iter().map(|r| Ok(r.try_get("id")?)).collect()
    }
}

impl WriteTx {
    /// The store's audit chain key.
    pub(super) fn chain_key(&self) -> Result<AuditChainKey, StoreError> {
        self.audit_key
            .read()
            .ok()
            .and_then(|k| k.clone())
            .ok_or(StoreError::AuditKeyMissing)
    }

    /// Re-points shard 0's head at (`seq` entries, last link `hash`) with a fresh MAC under
    /// the store's audit key, locking it. Only for the vault's first open with its key:
    /// sealing the genesis head of a new vault, or the head of a chain just re-keyed from the
    /// unkeyed format. Never for normal writes (those move heads in [`WriteTx::commit`]).
    ///
    /// # Errors
    /// [`StoreError::AuditKeyMissing`] without a key; database failure.
    pub async fn reseal_head(&mut self, seq: i64, hash: &[u8; 32]) -> Result<(), StoreError> {
        let key = self.chain_key()?;
        self.lock_shard(0).await?;
        let mac = key.shard_head_mac(0, seq, hash).to_vec();
        sqlx::query("UPDATE audit_shards SET size = $1, hash = $2, mac = $3 WHERE shard = 0")
            .bind(seq)
            .bind(hash.to_vec())
            .bind(mac)
            .execute(&mut *self.tx)
            .await?;
        Ok(())
    }

    /// Shard 0's head (entries, last link), locked until this transaction ends.
    ///
    /// # Errors
    /// Database failure.
    pub async fn head(&mut self) -> Result<(i64, [u8; 32]), StoreError> {
        let h = self.lock_shard(0).await?;
        let mut hash = [0u8; 32];
        if h.hash.len() == 32 {
            hash.copy_from_slice(&h.hash);
        }
        Ok((h.size, hash))
    }

    /// The `vault_meta` row, read under the head lock.
    ///
    /// # Errors
    /// Database failure.
    pub async fn vault_meta(&mut self) -> Result<Option<VaultMetaRow>, StoreError> {
        let row = sqlx::query(&format!("SELECT {META_COLS} FROM vault_meta WHERE id = 1"))
            .fetch_optional(&mut *self.tx)
            .await?;
        row.as_ref().map(meta_from).transpose()
    }

    /// Writes the `vault_meta` row (inserting it again if it was deleted).
    ///
    /// # Errors
    /// Database failure.
    pub async fn put_vault_meta(&mut self, m: &VaultMetaRow) -> Result<(), StoreError> {
        let n = sqlx::query(
            "UPDATE vault_meta SET key_check = $1, kek_ids = $2, chain_format = $3, \
             migrated_from = $4, updated_at = $5 WHERE id = 1",
        )
        .bind(m.key_check.clone())
        .bind(&m.kek_ids)
        .bind(&m.chain_format)
        .bind(&m.migrated_from)
        .bind(m.updated_at)
        .execute(&mut *self.tx)
        .await?
        .rows_affected();
        if n == 0 {
            sqlx::query(&format!(
                "INSERT INTO vault_meta (id, {META_COLS}) VALUES (1, $1, $2, $3, $4, $5)"
            ))
            .bind(m.key_check.clone())
            .bind(&m.kek_ids)
            .bind(&m.chain_format)
            .bind(&m.migrated_from)
            .bind(m.updated_at)
            .execute(&mut *self.tx)
            .await?;
        }
        Ok(())
    }

    /// Whether `table` (one of the data tables) holds a row, under the head lock.
    ///
    /// # Errors
    /// Database failure; [`StoreError::Conflict`] for another table name.
    pub async fn has_rows(&mut self, table: &str) -> Result<bool, StoreError> {
        Ok(sqlx::query(&table_sql(table)?)
            .fetch_optional(&mut *self.tx)
            .await?
            .is_some())
    }

    /// Whether any data table holds a row or the chain has an entry, under the head lock.
    ///
    /// # Errors
    /// Database failure.
    pub async fn is_populated(&mut self) -> Result<bool, StoreError> {
        for t in DATA_TABLES {
            if self.has_rows(t).await? {
                return Ok(true);
            }
        }
        Ok(sqlx::query("SELECT 1 FROM audit_log LIMIT 1")
            .fetch_optional(&mut *self.tx)
            .await?
            .is_some())
    }

    /// One wrapped DEK per KEK id found in `subject_keys` (to test a master key against
    /// every KEK the database uses).
    ///
    /// # Errors
    /// Database failure.
    pub async fn wrapped_key_per_kek(&mut self) -> Result<Vec<KeyRow>, StoreError> {
        let ids: Vec<String> =
            sqlx::query("SELECT DISTINCT kek_id FROM subject_keys ORDER BY kek_id")
                .fetch_all(&mut *self.tx)
                .await?
                .iter()
                .map(|r| r.try_get("kek_id"))
                .collect::<Result<_, _>>()?;
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            let r = sqlx::query(
                "SELECT subject_id, scope, key_id, kek_id, wrapped, created_at FROM subject_keys \
                 WHERE kek_id = $1 LIMIT 1",
            )
            .bind(&id)
            .fetch_one(&mut *self.tx)
            .await?;
            out.push(super::keys::key_from(&r)?);
        }
        Ok(out)
    }

    /// Up to `limit` of shard 0's audit rows after its `after`-th (so `seq > after` for the
    /// linear chain of before issue 15, whose entries are shard 0's first), in chain order.
    ///
    /// # Errors
    /// Database failure.
    pub async fn audit_page(
        &mut self,
        after: i64,
        limit: i64,
    ) -> Result<Vec<AuditRow>, StoreError> {
        let rows = sqlx::query(
            "SELECT seq, at, actor, action, subject_id, purpose, categories, outcome, reason, \
             legal_basis, policy_version, request_id, detail, shard, idx, prev_hash, hash \
             FROM audit_log WHERE shard = 0 AND idx >= $1 ORDER BY idx LIMIT $2",
        )
        .bind(after)
        .bind(limit)
        .fetch_all(&mut *self.tx)
        .await?;
        rows.iter().map(super::audit::audit_row_from).collect()
    }

    /// Replaces the (prev_hash, hash) links of existing entries: `(seq, prev, hash)`. Only for
    /// re-keying a chain at the vault's first open with its key; entry contents are untouched.
    ///
    /// # Errors
    /// Database failure.
    pub async fn relink_audit(
        &mut self,
        links: &[(i64, [u8; 32], [u8; 32])],
    ) -> Result<(), StoreError> {
        if self.backend == Backend::Postgres {
            // One statement per chunk: a round trip per entry made re-keying 77k entries take
            // 17 s.
            for chunk in links.chunks(super::CHUNK) {
                let values = (0..chunk.len())
                    .map(|i| {
                        format!(
                            "(${}::BIGINT, ${}::BYTEA, ${}::BYTEA)",
                            3 * i + 1,
                            3 * i + 2,
                            3 * i + 3
                        )
                    })
                    .collect::<Vec<_>>()
                    .join(", ");
                let sql = format!(
                    "UPDATE audit_log AS a SET prev_hash = v.p, hash = v.h \
                     FROM (VALUES {values}) AS v(seq, p, h) WHERE a.seq = v.seq"
                );
                let mut q = sqlx::query(&sql);
                for (seq, prev, hash) in chunk {
                    q = q.bind(*seq).bind(prev.to_vec()).bind(hash.to_vec());
                }
                q.execute(&mut *self.tx).await?;
            }
            return Ok(());
        }
        for (seq, prev, hash) in links {
            sqlx::query("UPDATE audit_log SET prev_hash = $1, hash = $2 WHERE seq = $3")
                .bind(prev.to_vec())
                .bind(hash.to_vec())
                .bind(*seq)
                .execute(&mut *self.tx)
                .await?;
        }
        Ok(())
    }
}
