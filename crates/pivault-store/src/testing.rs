//! Test support that needs the store's private pool: the bytes a database holds
//! ([`visible_bytes`]), moving the audit head without its key ([`move_head_without_key`]) and
//! swapping two fields' ciphertexts ([`swap_ciphertexts`]).
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
    const TABLES: [&str; 16] = [
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
        "legal_holds",
        "retention_items",
        "anon_weblog",
        "anon_orders",
        "sweep_lease",
        "sweep_runs",
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
    sqlx::query("UPDATE audit_shards SET size = $1, hash = $2 WHERE shard = 0")
        .bind(seq)
        .bind(hash.to_vec())
        .execute(store.pool.get()?)
        .await?;
    Ok(())
}

/// Runs one raw SQL statement with `i64` parameters, as someone who can write the database but
/// holds no key would (tests of `audit verify`: deleting, reordering or editing audit rows,
/// truncating a shard). Returns the rows affected.
///
/// # Errors
/// Database failure.
pub async fn raw(store: &crate::Store, sql: &str, params: &[i64]) -> Result<u64, StoreError> {
    let mut q = sqlx::query(sql);
    for p in params {
        q = q.bind(*p);
    }
    Ok(q.execute(store.pool.get()?).await?.rows_affected())
}

/// Swaps the ciphertexts of two fields of `subject_id` (`record/name` each), as someone who can
/// write the database but holds no key would: each field then fails authentication, because
/// the associated data binds a ciphertext to its own field (tests of issue 11, defect 5).
///
/// # Errors
/// Database failure (also when either field does not exist).
pub async fn swap_ciphertexts(
    store: &crate::Store,
    subject_id: &str,
    a: (&str, &str),
    b: (&str, &str),
) -> Result<(), StoreError> {
    use sqlx::Row;
    let pool = store.pool.get()?;
    let get = "SELECT ciphertext FROM fields WHERE subject_id = $1 AND record = $2 AND name = $3";
    let ca: Vec<u8> = sqlx::query(get)
        .bind(subject_id)
        .bind(a.0)
        .bind(a.1)
        .fetch_one(pool)
        .await?
        .try_get("ciphertext")?;
    let cb: Vec<u8> = sqlx::query(get)
        .bind(subject_id)
        .bind(b.0)
        .bind(b.1)
        .fetch_one(pool)
        .await?
        .try_get("ciphertext")?;
    let set =
        "UPDATE fields SET ciphertext = $1 WHERE subject_id = $2 AND record = $3 AND name = $4";
    for (c, (r, n)) in [(cb, a), (ca, b)] {
        sqlx::query(set)
            .bind(c)
            .bind(subject_id)
            .bind(r)
            .bind(n)
            .execute(pool)
            .await?;
    }
    Ok(())
}

/// A bind value for [`column`].
#[derive(Debug, Clone)]
pub enum Bind {
    /// An integer.
    Int(i64),
    /// A text.
    Text(String),
}

/// The first column of every row of `sql` (placeholders `$1`, `$2`, … bound from `binds`),
/// as text: for tests that count or compare rows independently of the service's own queries.
/// Integers are given in decimal.
///
/// # Errors
/// Database failure.
pub async fn column(
    store: &crate::Store,
    sql: &str,
    binds: &[Bind],
) -> Result<Vec<String>, StoreError> {
    use sqlx::Row;
    let mut q = sqlx::query(sql);
    for b in binds {
        q = match b {
            Bind::Int(i) => q.bind(*i),
            Bind::Text(t) => q.bind(t.clone()),
        };
    }
    let rows = q.fetch_all(store.pool.get()?).await?;
    rows.iter()
        .map(|r| {
            r.try_get::<String, _>(0)
                .or_else(|_| r.try_get::<i64, _>(0).map(|i| i.to_string()))
                .map_err(StoreError::from)
        })
        .collect()
}
