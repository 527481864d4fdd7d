//! Is this the vault's master key? (issue 9, defect 3)
//!
//! A different master key on a populated database answers lookups with nothing, fails every
//! read, accepts a known account as a new person and lets an import create everyone again:
//! blind indexes, wrapped DEKs and the audit chain are all keyed by it. So the database records
//! a **key check value** ([`KeyRing::key_check_value`]: an HMAC, RFC 2104, under a key derived
//! with HKDF, RFC 5869, from the master key) and the ids of the KEKs in use, in `vault_meta`
//! (migration 0005), and every open compares before writing anything.
//!
//! * [`key_state`] — before a key is loaded: is the database new and empty (only then may a
//!   development key be generated), populated without a check value (written before issue
//!   9), or checked?
//! * [`establish`] — with the key: compare with the recorded check value; or, on the first
//!   open after migration 0005, verify the key by unwrapping one stored DEK per KEK id (a
//!   populated database) and record the check value, re-keying the unkeyed audit chain in
//!   the same transaction (see [`crate::audit_verify`]). Refusals are
//!   [`CoreError::KeyRefused`] with a stable code; nothing is written then.
//!
//! Limits: a writer without the key who also deletes the check value (and rewrites the whole
//! chain unkeyed) makes the database look like one from before issue 9; the next open with
//! the right key adopts it. The adoption is loud (a warning, an `audit.rekey` entry, and
//! `vault_meta.migrated_from`, which `audit verify` prints); only checkpoints kept outside the
//! database can tell it from a real upgrade. Master-key rotation is not wired into the CLI: a
//! new current master has a new check value and chain key, so rotation will have to re-record
//! both.

use crate::error::CoreError;
use pivault_crypto::{KeyRing, WrappedDek, CHAIN_FORMAT};
use pivault_domain::audit::AuditRecord;
use pivault_store::{Store, VaultMetaRow, WriteTx};

/// The key does not match the database's key check value (or does not open its data keys).
pub const MASTER_KEY_MISMATCH: &str = "master_key_mismatch";
/// No key file, and the database is not new and empty (no development key is made then).
pub const MASTER_KEY_MISSING: &str = "master_key_missing";
/// A populated database from before issue 9 holds blind-index entries but no wrapped DEK to
/// test the key against (every subject erased): the key cannot be verified.
pub const MASTER_KEY_UNVERIFIABLE: &str = "master_key_unverifiable";
/// The key file exists but cannot be read or is not 64 hex characters.
pub const MASTER_KEY_UNREADABLE: &str = "master_key_unreadable";

/// Actor of the audit entry that records a chain re-keyed at first open.
const ACTOR: &str = "pivault:keycheck";

/// What the database says about its master key, before a key is loaded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyState {
    /// New and empty: no check value, no row in any data table, no audit entry. The only
    /// state in which a development key may be generated.
    New,
    /// Holds data but no check value: written before issue 9 (or the check value was
    /// deleted). The key is verified against a stored wrapped DEK at first open.
    Unchecked,
    /// A key check value is recorded.
    Checked,
}

/// Reads the database's [`KeyState`]. Writes nothing.
///
/// # Errors
/// Store failure.
pub async fn key_state(store: &Store) -> Result<KeyState, CoreError> {
    if store
        .vault_meta()
        .await?
        .is_some_and(|m| m.key_check.is_some())
    {
        return Ok(KeyState::Checked);
    }
    Ok(if store.is_populated().await? {
        KeyState::Unchecked
    } else {
        KeyState::New
    })
}

fn refused(code: &'static str, message: String) -> CoreError {
    CoreError::KeyRefused { code, message }
}

fn kek_list(keys: &KeyRing) -> String {
    keys.kek_ids().join(",")
}

fn mismatch(recorded: Option<&str>, keys: &KeyRing) -> CoreError {
    refused(
        MASTER_KEY_MISMATCH,
        format!(
            "the master key does not match this database (the database records KEK {}, the key \
             file gives {}); refusing to open it, nothing was written. Point \
             PIVAULT_MASTER_KEY_FILE at the database's key",
            recorded.unwrap_or("(unknown)"),
            keys.kek_id()
        ),
    )
}

/// Checks `keys` against the database and, on the first open with a key, records the check
/// value (and re-keys an unkeyed audit chain). Hands the audit chain key to the store on
/// success. `policy_version` goes into the audit entry of a re-keying.
///
/// * A check value is recorded: it must equal [`KeyRing::key_check_value`] (constant-time).
///   Changed KEK ids (a retired key added) are recorded.
/// * None, database new and empty: the check value is recorded and the genesis head sealed.
/// * None, database populated: one wrapped DEK per KEK id must unwrap with `keys`; then the
///   check value is recorded and the chain re-keyed, in one transaction.
///
/// # Errors
/// [`CoreError::KeyRefused`] (`master_key_mismatch`, `master_key_unverifiable`) before any
/// write; store failures.
pub async fn establish(
    store: &Store,
    keys: &KeyRing,
    policy_version: &str,
    now: i64,
) -> Result<(), CoreError> {
    if let Some(m) = store.vault_meta().await? {
        if let Some(kc) = &m.key_check {
            if !keys.matches_key_check(kc) {
                return Err(mismatch(m.kek_ids.as_deref(), keys));
            }
            store.set_audit_key(keys.audit_chain_key());
            if m.kek_ids.as_deref() != Some(kek_list(keys).as_str()) {
                let mut tx = store.begin(now).await?;
                if let Some(mut m) = tx.vault_meta().await? {
                    m.kek_ids = Some(kek_list(keys));
                    m.updated_at = now;
                    tx.put_vault_meta(&m).await?;
                    tx.commit().await?;
                }
            }
            return Ok(());
        }
    }
    // No check value yet: decide under the head lock, so two processes opening a new database
    // at once record one value (the second compares with it).
    let mut tx = store.begin(now).await?;
    let meta = tx.vault_meta().await?;
    if let Some(kc) = meta.as_ref().and_then(|m| m.key_check.as_ref()) {
        if !keys.matches_key_check(kc) {
            return Err(mismatch(
                meta.as_ref().and_then(|m| m.kek_ids.as_deref()),
                keys,
            ));
        }
        store.set_audit_key(keys.audit_chain_key());
        return Ok(());
    }
    let populated = tx.is_populated().await?;
    if populated {
        verify_against_wrapped_keys(&mut tx, keys).await?;
    }
    store.set_audit_key(keys.audit_chain_key());
    let mut migrated_from = None;
    if populated {
        let r = crate::audit_verify::rekey_unkeyed_chain(&mut tx, &keys.audit_chain_key()).await?;
        let what = r.describe(
            meta.as_ref()
                .map_or(pivault_crypto::LEGACY_CHAIN_FORMAT, |m| {
                    m.chain_format.as_str()
                }),
        );
        if r.already_keyed {
            tracing::warn!(
                "the key check record was missing but the audit chain is keyed; recording the \
                 key check again (the chain is left as it is)"
            );
        } else {
            tx.reseal_head(r.head_seq, &r.head_hash).await?;
            tracing::warn!(
                entries = r.rekeyed,
                broken_at = r.broken_at,
                "first open with the master key: key check recorded, unkeyed audit chain \
                 re-keyed (HMAC-SHA256)"
            );
            tx.audit(AuditRecord {
                at: now,
                actor: ACTOR.into(),
                action: "audit.rekey".into(),
                outcome: "ok".into(),
                policy_version: policy_version.into(),
                detail: Some(what.clone()),
                ..AuditRecord::default()
            });
        }
        migrated_from = Some(what);
    } else {
        let (seq, hash) = tx.head().await?;
        tx.reseal_head(seq, &hash).await?;
    }
    tx.put_vault_meta(&VaultMetaRow {
        key_check: Some(keys.key_check_value().to_vec()),
        kek_ids: Some(kek_list(keys)),
        chain_format: CHAIN_FORMAT.into(),
        migrated_from,
        updated_at: now,
    })
    .await?;
    tx.commit().await?;
    Ok(())
}

/// A populated database without a check value: the key must open one stored DEK of every KEK
/// id the database uses.
async fn verify_against_wrapped_keys(tx: &mut WriteTx, keys: &KeyRing) -> Result<(), CoreError> {
    let wrapped = tx.wrapped_key_per_kek().await?;
    if wrapped.is_empty() && tx.has_rows("blind_index").await? {
        return Err(refused(
            MASTER_KEY_UNVERIFIABLE,
            "this database has no key check value and no wrapped data key to test the master \
             key against, but holds blind-index entries that depend on it; refusing to open it \
             with a key that cannot be verified, nothing was written"
                .into(),
        ));
    }
    for k in wrapped {
        let w = WrappedDek {
            key_id: k.key_id,
            kek_id: k.kek_id,
            bytes: k.wrapped,
        };
        if keys.unwrap_dek(&k.subject_id, &k.scope, &w).is_err() {
            return Err(mismatch(Some(&w.kek_id), keys));
        }
    }
    Ok(())
}
