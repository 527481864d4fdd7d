//! Test support that needs the store's private pool: the bytes a database holds
//! ([`visible_bytes`]) and moving the audit head without its key ([`move_head_without_key`]).
//! Throwaway PostgreSQL databases and the rest of the harness are in `pivault-testkit`.
//!
//! Only with the `testing` feature; nothing here is used by the service itself.

use crate::StoreError;

/// Every value a `SELECT` can see in the store's tables, concatenated: BLOB/BYTEA raw, text
/// as UTF-8, integers in decimal, each followed by a NUL. For tests that search the database
/// for PI or key material in clear on a backend that is not one file (PostgreSQL). Note that it
/// sees live rows only, not dead tuples awaiting `VACUUM`.
///
/// # Errors
/// Database failure.
pub async fn visible_bytes(store: &crate::Store) -> Result<Vec<u8>, StoreError> {
    use sqlx::Row;
    const TABLES: [&str; 10] = [
        "subjects",
        "subject_keys",
        "fields",
        "blind_index",
        "consent_events",
        "api_keys",
        "policy_versions",
        "audit_head",
        "audit_log",
        "vault_meta",
    ];
    let mut out = Vec::new();
    for t in TABLES {
        let rows = sqlx::query(&format!("SELECT * FROM {t}"))
            .fetch_all(store.pool.get()?)
            .await?;
        for r in &rows {
            for i in 0..r.len() {
                if let Ok(b) = r.try_get::<Vec<u8>, _>(i) {
                    out.extend_from_slice(&b);
                } else if let Ok(s) = r.try_get::<String, _>(i) {
                    out.extend_from_slice(s.as_bytes());
                } else if let Ok(n) = r.try_get::<i64, _>(i) {
                    out.extend_from_slice(n.to_string().as_bytes());
                }
                out.push(0);
            }
        }
    }
    Ok(out)
}

/// Points the audit chain head at (`seq`, `hash`) and leaves its MAC alone, as someone who can
/// write the database but does not hold the key would (tests of the keyed head).
///
/// # Errors
/// Database failure.
pub async fn move_head_without_key(
    store: &crate::Store,
    seq: i64,
    hash: &[u8],
) -> Result<(), StoreError> {
    sqlx::query("UPDATE audit_head SET seq = $1, hash = $2 WHERE id = 1")
        .bind(seq)
        .bind(hash.to_vec())
        .execute(store.pool.get()?)
        .await?;
    Ok(())
}
