//! The audit event model and its canonical encoding for the hash chain.
//!
//! Invariants: an entry holds ids, purposes, categories, outcomes and reason codes — never a
//! PI value. The canonical encoding is a pure function of the stored columns, so an auditor
//! re-derives every hash from the rows themselves; altering any column breaks the chain at
//! that row (see `pivault-crypto::chain_hash`).

/// One audit entry. Every field is a column of the audit table.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AuditRecord {
    /// The entry's number, unique across shards, from 1 (issue 15: assigned at commit; within
    /// a shard it grows with `idx`, across shards it only identifies).
    pub seq: i64,
    /// The audit shard the entry is in (issue 15): its subject's keyed shard, 0 without one.
    pub shard: u32,
    /// The entry's 0-based leaf index within its shard's Merkle tree (RFC 9162 §2.1).
    pub idx: i64,
    /// When, UTC unix seconds.
    pub at: i64,
    /// Principal (API key's principal name, or `cli:<command>` for the operator CLI).
    pub actor: String,
    /// What happened, e.g. `subject.create`, `fields.read`, `consent.withdraw`, `subject.erase`.
    pub action: String,
    /// The PI subject concerned, if any (an opaque id, not PI).
    pub subject_id: Option<String>,
    /// Purpose named by the request.
    pub purpose: Option<String>,
    /// Category keys involved, comma-separated and sorted.
    pub categories: String,
    /// `allow`, `deny` or `ok` (for changes that are not decisions).
    pub outcome: String,
    /// Reason code of the decision (`consent_missing`, …).
    pub reason: Option<String>,
    /// Legal basis applied.
    pub legal_basis: Option<String>,
    /// Policy version in force.
    pub policy_version: String,
    /// Request id for correlation with logs.
    pub request_id: Option<String>,
    /// Free-form, non-PI detail (counts, key ids, reason text chosen by the code).
    pub detail: Option<String>,
}

fn put(buf: &mut Vec<u8>, s: &str) {
    buf.extend_from_slice(&(s.len() as u64).to_be_bytes());
    buf.extend_from_slice(s.as_bytes());
}

fn put_opt(buf: &mut Vec<u8>, s: Option<&str>) {
    match s {
        None => buf.push(0),
        Some(s) => {
            buf.push(1);
            put(buf, s);
        }
    }
}

impl AuditRecord {
    /// Deterministic length-prefixed encoding of every field (version byte 1 first): the bytes
    /// the keyed chain links and the Merkle tree's leaf hash (RFC 9162 §2.1.1) cover.
    ///
    /// Layout: `1`, `seq` i64 BE, `at` i64 BE, then `actor`, `action`, opt `subject_id`, opt
    /// `purpose`, `categories`, `outcome`, opt `reason`, opt `legal_basis`, `policy_version`,
    /// opt `request_id`, opt `detail` (a string is a u64 BE length and its UTF-8 bytes; an opt
    /// is `0`, or `1` and a string). Entries of a shard other than 0 end with `shard` u32 BE
    /// and `idx` u64 BE, binding them to their place; shard 0's encoding is the linear chain's
    /// of before issue 15, so its old entries keep their links (`pivault-verify` decodes both).
    #[must_use]
    pub fn canonical_bytes(&self) -> Vec<u8> {
        let mut b = Vec::with_capacity(256);
        b.push(1);
        b.extend_from_slice(&self.seq.to_be_bytes());
        b.extend_from_slice(&self.at.to_be_bytes());
        put(&mut b, &self.actor);
        put(&mut b, &self.action);
        put_opt(&mut b, self.subject_id.as_deref());
        put_opt(&mut b, self.purpose.as_deref());
        put(&mut b, &self.categories);
        put(&mut b, &self.outcome);
        put_opt(&mut b, self.reason.as_deref());
        put_opt(&mut b, self.legal_basis.as_deref());
        put(&mut b, &self.policy_version);
        put_opt(&mut b, self.request_id.as_deref());
        put_opt(&mut b, self.detail.as_deref());
        if self.shard != 0 {
            b.extend_from_slice(&self.shard.to_be_bytes());
            b.extend_from_slice(&u64::try_from(self.idx).unwrap_or(0).to_be_bytes());
        }
        b
    }

    /// Joins category keys into the stored form (sorted, de-duplicated, comma-separated).
    #[must_use]
    pub fn join_categories<'a>(cats: impl IntoIterator<Item = &'a str>) -> String {
        let mut v: Vec<&str> = cats.into_iter().collect();
        v.sort_unstable();
        v.dedup();
        v.join(",")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changing_any_field_changes_the_encoding() {
        let a = AuditRecord {
            seq: 1,
            at: 2,
            actor: "billing".into(),
            action: "fields.read".into(),
            subject_id: Some("s1".into()),
            purpose: Some("service".into()),
            categories: "user.name".into(),
            outcome: "allow".into(),
            policy_version: "v".into(),
            ..AuditRecord::default()
        };
        let mut b = a.clone();
        b.subject_id = None;
        assert_ne!(a.canonical_bytes(), b.canonical_bytes());
        let mut c = a.clone();
        c.purpose = Some(String::new());
        assert_ne!(a.canonical_bytes(), c.canonical_bytes());
        assert_eq!(a.canonical_bytes(), a.clone().canonical_bytes());
    }
}
