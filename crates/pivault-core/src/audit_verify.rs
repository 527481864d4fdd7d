//! `audit verify`, and re-keying a chain written before issue 9 (defect 4).
//!
//! # The chain
//!
//! Entry `n` stores `prev_hash = hash(n-1)` (32 zero bytes for entry 1) and
//! `hash(n) = HMAC-SHA256(K, "pivault audit link v1" ‖ prev ‖ len ‖ canonical bytes)`
//! (RFC 2104), where `K` is derived from the master key with HKDF (RFC 5869, info
//! `"pivault audit-chain v1"`); the head row holds `(seq, hash)` of the last entry and
//! `HMAC-SHA256(K, "pivault audit head v1" ‖ seq ‖ len ‖ hash)`. The format is recorded as
//! `vault_meta.chain_format = 'hmac-sha256-v1'`. Without `K` nobody can recompute a link or a
//! head MAC, so rewriting entries, deleting or renumbering them, or moving the head back, all
//! need the key. Writers refuse to append after a head whose MAC does not verify (store error
//! `audit_head_mismatch`), so a moved head is never papered over by the next write.
//!
//! # What [`verify_audit`] checks
//!
//! 1. Every entry in order: seq `n` follows `n-1` (a gap names the first missing entry), its
//!    `prev_hash` is the entry before's hash, its hash is the keyed link of its columns.
//! 2. The head names the last entry, and its MAC verifies (a head moved back over deleted
//!    entries, or reset to that of an empty log, names the entry after it).
//! 3. The chain against the vault's contents: every subject is named by a `subject.create`
//!    entry, every erased subject by `subject.erase` or `dsr.step.shred`, every consent event
//!    by `consent.<action>` of its subject and purpose (or, recorded by a request,
//!    `dsr.step.withdraw`), every API key by `apikey.create` (or, made by a rotation, `apikey.rotate`), every data subject request by
//!    `dsr.received`; and there are at least as many `subject.create` and `consent.*`
//!    entries as subjects and direct consent events.
//!
//! # What it cannot detect
//!
//! * Putting back a whole earlier copy of the database (or of the log with its head row and
//!   every table it names): each copy is consistent and carries valid MACs. Signed checkpoints
//!   published outside the database (a later issue) are the answer.
//! * Entries that name no row of the vault (reads, decisions, lookups, DSR verification
//!   steps) removed from the *end* of the log together with a head put back from an earlier
//!   copy: as above.
//! * Anything done by someone holding the master key.
//! * A writer without the key who deletes the key check record and rewrites the whole chain
//!   unkeyed: the next open with the key takes the database for one from before issue 9 and
//!   re-keys it (loudly: a warning, an `audit.rekey` entry, and `vault_meta.migrated_from`,
//!   which `audit verify` prints). See [`crate::keycheck`].
//!
//! # Migration from the unkeyed chain
//!
//! On the first open with the master key after migration 0005 ([`crate::keycheck::establish`]),
//! the unkeyed SHA-256 chain (`sha256-v0`, [`pivault_crypto::chain_hash`]) is verified entry by
//! entry and every verified entry gets its keyed link, in the same transaction that records
//! the key check value. If the old chain is already broken, only the entries before the break
//! are re-keyed; the break and everything after it are left as stored, so `audit verify` still
//! names the same entry.

use crate::error::CoreError;
use pivault_crypto::{chain_hash, AuditChainKey, KeyRing, CHAIN_FORMAT, GENESIS};
use pivault_domain::audit::AuditRecord;
use pivault_store::{ShardHeadRow, Store, WriteTx};
use pivault_verify::merkle::{leaf_hash, Frontier, Hash};
use pivault_verify::{Checkpoint, ShardHead};
use std::collections::HashSet;

/// Rows read per page while walking the chain.
const PAGE: i64 = 5_000;

/// Result of [`verify_audit`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditVerifyReport {
    /// Entries checked.
    pub entries: i64,
    /// The chain head's sequence number.
    pub head_seq: i64,
    /// The chain's recorded format (`hmac-sha256-v1`).
    pub chain_format: String,
    /// How the chain was re-keyed from the unkeyed format at first open, if it was.
    pub migrated_from: Option<String>,
    /// The first entry that does not verify (its number; or, for a head, the number after
    /// the last entry it covers; 0 for a checkpoint), and why, naming the shard and the
    /// entry's index in it.
    pub first_broken: Option<(i64, String)>,
    /// The shard of `first_broken`, when it is in one.
    pub broken_shard: Option<u32>,
    /// Shards walked.
    pub shards: usize,
    /// Signed checkpoints checked.
    pub checkpoints: usize,
    /// The chain verifies but does not account for the vault's contents: the last verified
    /// entry, and what is missing (ids of subjects, keys and requests are opaque, not PI).
    pub inconsistent: Option<(i64, String)>,
}

impl AuditVerifyReport {
    /// Whether the chain verified and is consistent with the vault's contents.
    #[must_use]
    pub fn ok(&self) -> bool {
        self.first_broken.is_none() && self.inconsistent.is_none()
    }
}

/// What the walk counts to compare with the vault's contents.
#[derive(Default)]
struct Tally {
    creates: i64,
    consents: i64,
    api_keys: HashSet<String>,
    requests: HashSet<String>,
}

impl Tally {
    fn add(&mut self, r: &AuditRecord) {
        let first_word = |prefix: &str| {
            r.detail
                .as_deref()
                .and_then(|d| d.strip_prefix(prefix))
                .and_then(|d| d.split(' ').next())
                .map(str::to_string)
        };
        match r.action.as_str() {
            "subject.create" => self.creates += 1,
            a if a.starts_with("consent.") => self.consents += 1,
            "apikey.create" => {
                if let Some(id) = first_word("key_id=") {
                    self.api_keys.insert(id);
                }
            }
            // A rotation creates the key that replaces the old one (issue 11).
            "apikey.rotate" => {
                if let Some(id) = first_word("new_key_id=") {
                    self.api_keys.insert(id);
                }
            }
            "dsr.received" => {
                if let Some(id) = first_word("dsr=") {
                    self.requests.insert(id);
                }
            }
            _ => {}
        }
    }
}

/// A kept checkpoint as `audit verify` reads it: its number and its shard heads.
struct SignedCheckpoint {
    id: i64,
    heads: Vec<ShardHead>,
}

/// Every kept checkpoint, oldest first, each signature checked; the first that does not
/// verify (or whose shard lines do not add up) is a break naming it.
async fn read_checkpoints(
    store: &Store,
    keys: &KeyRing,
) -> Result<Result<Vec<SignedCheckpoint>, String>, CoreError> {
    let v = crate::transparency::verifier_for(keys)?;
    let mut out: Vec<SignedCheckpoint> = Vec::new();
    let mut after = 0;
    loop {
        let page = store.checkpoints_after(after, 1_000).await?;
        if page.is_empty() {
            break;
        }
        for c in &page {
            let heads = match Checkpoint::open(&c.note, &v).and_then(|cp| cp.shards()) {
                Ok(h) => h,
                Err(e) => {
                    return Ok(Err(format!(
                        "checkpoint #{} does not verify under this vault's checkpoint key ({e}): \
                         it was forged or altered",
                        c.id
                    )))
                }
            };
            if let Some(prev) = out.last() {
                for p in &prev.heads {
                    let now = heads
                        .iter()
                        .find(|h| h.shard == p.shard)
                        .map_or(0, |h| h.size);
                    if now < p.size {
                        return Ok(Err(format!(
                            "shard {}: checkpoint #{} covers {now} entries but the earlier \
                             checkpoint #{} covered {}: the log was truncated",
                            p.shard, c.id, prev.id, p.size
                        )));
                    }
                }
            }
            out.push(SignedCheckpoint { id: c.id, heads });
            after = c.id;
        }
    }
    Ok(Ok(out))
}

/// Walks every shard of the audit log: recomputes every keyed link from the stored columns
/// and every shard's Merkle tree (RFC 9162 §2.1) from its entries, checks each kept
/// checkpoint's signature and that the tree at each checkpoint's size has the root it signed
/// (so every checkpoint is consistent with the one before: a log truncated and regrown to the
/// same size fails here), then each shard's head and its MAC, then the log against the vault's
/// contents (see the module documentation for what that can and cannot detect). Open the
/// vault first (its key is checked then).
///
/// # Errors
/// Store failures (a broken or inconsistent log is a report, not an error).
pub async fn verify_audit(store: &Store, keys: &KeyRing) -> Result<AuditVerifyReport, CoreError> {
    let key = keys.audit_chain_key();
    let meta = store.vault_meta().await?;
    // Checkpoints are read before the heads, so none covers more than a head read after it
    // (a vault in use signs and appends while this runs).
    let checkpoints = read_checkpoints(store, keys).await?;
    let heads = store.audit_shard_heads().await?;
    let mut rep = AuditVerifyReport {
        entries: 0,
        head_seq: heads.iter().map(|h| h.size).sum(),
        chain_format: meta
            .as_ref()
            .map_or_else(|| "(no record)".to_string(), |m| m.chain_format.clone()),
        migrated_from: meta.as_ref().and_then(|m| m.migrated_from.clone()),
        first_broken: None,
        broken_shard: None,
        inconsistent: None,
        shards: heads.len(),
        checkpoints: 0,
    };
    let recorded = meta.as_ref().is_some_and(|m| {
        m.key_check
            .as_deref()
            .is_some_and(|k| keys.matches_key_check(k))
            && m.chain_format == CHAIN_FORMAT
    });
    if !recorded {
        rep.first_broken = Some((
            1,
            format!(
                "the vault's key check / chain format record (vault_meta) is missing or altered \
                 (format {:?}): the chain cannot be trusted",
                rep.chain_format
            ),
        ));
        return Ok(rep);
    }
    let checkpoints = match checkpoints {
        Ok(c) => c,
        Err(why) => {
            rep.first_broken = Some((0, why));
            return Ok(rep);
        }
    };
    rep.checkpoints = checkpoints.len();
    let mut tally = Tally::default();
    let mut last_seq = 0;
    for head in &heads {
        if let Some((seq, why)) = verify_shard(
            store,
            &key,
            head,
            &checkpoints,
            &mut tally,
            &mut rep.entries,
        )
        .await?
        {
            rep.first_broken = Some((seq, format!("shard {}: {why}", head.shard)));
            rep.broken_shard = Some(head.shard);
            return Ok(rep);
        }
        last_seq = last_seq.max(head.size);
    }
    rep.inconsistent = consistency(store, &tally).await?.map(|why| (last_seq, why));
    Ok(rep)
}

/// One shard of [`verify_audit`]: the first break as (entry number, what), if any.
async fn verify_shard(
    store: &Store,
    key: &AuditChainKey,
    first: &ShardHeadRow,
    checkpoints: &[SignedCheckpoint],
    tally: &mut Tally,
    entries: &mut i64,
) -> Result<Option<(i64, String)>, CoreError> {
    let shard = first.shard;
    let mut head = first.clone();
    let mut rounds = 0;
    // (size, checkpoint, root) of this shard in every checkpoint, by size.
    let mut bounds: Vec<(u64, i64, Hash)> = checkpoints
        .iter()
        .filter_map(|c| {
            c.heads
                .iter()
                .find(|h| h.shard == shard)
                .map(|h| (h.size, c.id, h.root))
        })
        .collect();
    bounds.sort_by_key(|b| (b.0, b.1));
    let mut frontier = Frontier::new();
    // Checkpoints taken while the shard was empty hold the empty tree's root.
    let mut next_bound = 0;
    while let Some(&(0, id, root)) = bounds.get(next_bound) {
        if frontier.root() != root {
            return Ok(Some((
                0,
                format!("checkpoint #{id} holds a root for the empty shard that is not the empty tree's"),
            )));
        }
        next_bound += 1;
    }
    // The last checkpoint size at which the tree still matched, and the entry after it.
    let mut good: (u64, i64) = (0, 0);
    let mut prev = GENESIS;
    let mut idx = 0i64;
    let mut last_seq = 0i64;
    // The entries a head covers, read before them: a vault in use appends while this runs.
    // Once they are walked, a newer head (read again, a few rounds at most) takes the walk on,
    // so nearly the whole log is checked; entries appended after the last head read are
    // checked below only for being covered by a head.
    loop {
        let left = head.size - idx;
        let page = if left > 0 {
            store.audit_shard_page(shard, idx, PAGE.min(left)).await?
        } else {
            Vec::new()
        };
        if page.is_empty() {
            if left == 0 && rounds < 8 {
                rounds += 1;
                let newer = store
                    .audit_shard_heads()
                    .await?
                    .into_iter()
                    .find(|h| h.shard == shard && h.size > head.size);
                if let Some(h) = newer {
                    head = h;
                    continue;
                }
            }
            break;
        }
        for row in &page {
            let r = &row.record;
            if r.idx != idx {
                return Ok(Some((
                    last_seq + 1,
                    format!(
                        "entry {idx} missing: the shard goes from entry {} to entry {} (removed \
                         or renumbered; after entry number {last_seq})",
                        idx - 1,
                        r.idx
                    ),
                )));
            }
            let bytes = r.canonical_bytes();
            if row.prev_hash.as_slice() != prev.as_slice() {
                return Ok(Some((
                    r.seq,
                    format!(
                        "entry {idx} (number {}): previous-hash link does not match the entry \
                         before: an entry was removed, inserted or reordered",
                        r.seq
                    ),
                )));
            }
            if !key.verify_link(&prev, &bytes, &row.hash) {
                return Ok(Some((
                    r.seq,
                    format!(
                        "entry {idx} (number {}) does not match its keyed hash: the row was \
                         altered, or the chain re-hashed without the key",
                        r.seq
                    ),
                )));
            }
            if idx == i64::try_from(good.0).unwrap_or(i64::MAX) {
                good.1 = r.seq;
            }
            frontier.push(leaf_hash(&bytes));
            prev.copy_from_slice(&row.hash);
            idx += 1;
            last_seq = r.seq;
            *entries += 1;
            tally.add(r);
            while let Some(&(size, id, root)) = bounds.get(next_bound) {
                if size != frontier.size() {
                    break;
                }
                if frontier.root() != root {
                    return Ok(Some((
                        good.1,
                        format!(
                            "its first {size} entries no longer hash to the root signed in \
                             checkpoint #{id}: entries from entry {} (number {}) on were \
                             rewritten (the log was truncated and regrown, or rows replaced)",
                            good.0, good.1
                        ),
                    )));
                }
                good = (size, 0);
                next_bound += 1;
            }
        }
    }
    // Entries past the head: read the last entry first, then the head again. An entry a
    // writer committed moved the head in its own transaction, so the head read after it
    // covers it; one the head does not cover was written around the writers.
    if let Some(last) = store.audit_shard_last_idx(shard).await? {
        if last >= head.size {
            let now = store
                .audit_shard_heads()
                .await?
                .into_iter()
                .find(|h| h.shard == shard)
                .map_or(0, |h| h.size);
            if last >= now {
                return Ok(Some((
                    last_seq + 1,
                    format!(
                        "entry {last} lies past the head ({now} entries): entries were added \
                         without the key, or the head was moved back"
                    ),
                )));
            }
        }
    }
    if let Some(&(size, id, _)) = bounds.get(next_bound) {
        return Ok(Some((
            last_seq + 1,
            format!(
                "checkpoint #{id} covers {size} entries but the shard has {idx}: entries after \
                 entry {} were removed",
                idx - 1
            ),
        )));
    }
    if idx != head.size || head.hash.as_slice() != prev.as_slice() {
        return Ok(Some((
            last_seq + 1,
            format!(
                "the head ({} entries) does not match the last entry ({idx}): entries were \
                 removed or the head was moved",
                head.size
            ),
        )));
    }
    let mac_ok = head
        .mac
        .as_deref()
        .is_some_and(|m| key.verify_shard_head(shard, head.size, &head.hash, m));
    if !mac_ok {
        return Ok(Some((
            last_seq + 1,
            format!(
                "the head{}: it was moved or reset without the key; entries after entry {} \
                 were removed",
                if head.mac.is_some() {
                    "'s MAC does not verify"
                } else {
                    " has no MAC"
                },
                idx - 1
            ),
        )));
    }
    if head.tree_size != head.size || head.root() != Some(frontier.root()) {
        return Ok(Some((
            last_seq,
            "the stored Merkle frontier does not match the entries: proofs from it would not \
             verify"
                .to_string(),
        )));
    }
    Ok(None)
}

/// Step 3 of [`verify_audit`]: the first thing in the vault the verified chain does not
/// account for.
async fn consistency(store: &Store, t: &Tally) -> Result<Option<String>, CoreError> {
    const AROUND: &str = "entries were removed, or rows written around the vault";
    let (n, first) = store
        .subjects_not_in_audit(&["subject.create"], false)
        .await?;
    if n > 0 {
        return Ok(Some(format!(
            "{n} subject(s) have no subject.create entry in the chain (first: {}): {AROUND}",
            first.unwrap_or_default()
        )));
    }
    let (n, first) = store
        .subjects_not_in_audit(&["subject.erase", "dsr.step.shred"], true)
        .await?;
    if n > 0 {
        return Ok(Some(format!(
            "{n} erased subject(s) have no erasure entry in the chain (first: {}): {AROUND}",
            first.unwrap_or_default()
        )));
    }
    let subjects = store.count("subjects").await?;
    if subjects > t.creates {
        return Ok(Some(format!(
            "{subjects} subjects but {} subject.create entries: {AROUND}",
            t.creates
        )));
    }
    let (n, first) = store.consents_not_in_audit().await?;
    if n > 0 {
        return Ok(Some(format!(
            "{n} consent event(s) have no consent entry in the chain (first: ledger seq {}): \
             {AROUND}",
            first.unwrap_or_default()
        )));
    }
    let direct = store.count_direct_consents().await?;
    if direct > t.consents {
        return Ok(Some(format!(
            "{direct} consent events but {} consent entries: {AROUND}",
            t.consents
        )));
    }
    if let Some(id) = store
        .api_key_ids()
        .await?
        .into_iter()
        .find(|id| !t.api_keys.contains(id))
    {
        return Ok(Some(format!(
            "API key {id} has no apikey.create entry in the chain: {AROUND}"
        )));
    }
    if let Some(id) = store
        .dsr_ids()
        .await?
        .into_iter()
        .find(|id| !t.requests.contains(id))
    {
        return Ok(Some(format!(
            "data subject request {id} has no dsr.received entry in the chain: {AROUND}"
        )));
    }
    Ok(None)
}

/// What [`rekey_unkeyed_chain`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Rekeyed {
    /// Entries that verified under the unkeyed format and were given keyed links.
    pub(crate) rekeyed: i64,
    /// The head to seal: the re-keyed last entry, or (old chain broken) the head as stored.
    pub(crate) head_seq: i64,
    pub(crate) head_hash: [u8; 32],
    /// The unkeyed hash the stored head held.
    legacy_head: [u8; 32],
    /// The first entry of the old chain that did not verify, if any.
    pub(crate) broken_at: Option<i64>,
    /// Entry 1 already carries a keyed link: the chain was keyed (its key check record was
    /// lost); nothing was changed.
    pub(crate) already_keyed: bool,
}

impl Rekeyed {
    /// `vault_meta.migrated_from` and the `audit.rekey` entry's detail (no PI).
    pub(crate) fn describe(&self, from: &str) -> String {
        if self.already_keyed {
            return format!("{CHAIN_FORMAT} (key check recorded again; chain unchanged)");
        }
        let mut s = format!(
            "{from} entries={} head={}",
            self.rekeyed,
            hex::encode(self.legacy_head)
        );
        if let Some(b) = self.broken_at {
            s.push_str(&format!(" broken_at={b}"));
        }
        s
    }
}

/// Verifies the unkeyed SHA-256 chain of before issue 9 entry by entry inside `tx` and gives
/// every verified entry its keyed link under `key`, stopping at the first entry that does not
/// verify (left as stored, with everything after it, so it stays detectable).
pub(crate) async fn rekey_unkeyed_chain(
    tx: &mut WriteTx,
    key: &AuditChainKey,
) -> Result<Rekeyed, CoreError> {
    let (head_seq, head_hash) = tx.head().await?;
    let mut legacy_prev = GENESIS;
    let mut keyed_prev = GENESIS;
    let mut last = 0i64;
    let mut broken_at = None;
    let mut already_keyed = false;
    loop {
        let page = tx.audit_page(last, PAGE).await?;
        if page.is_empty() {
            break;
        }
        let mut links = Vec::with_capacity(page.len());
        for row in &page {
            let seq = row.record.seq;
            if seq != last + 1 {
                broken_at = Some(last + 1);
                break;
            }
            let bytes = row.record.canonical_bytes();
            let h = chain_hash(&legacy_prev, &bytes);
            if row.prev_hash.as_slice() != legacy_prev.as_slice() || row.hash.as_slice() != h {
                if seq == 1
                    && row.prev_hash.as_slice() == GENESIS.as_slice()
                    && key.verify_link(&GENESIS, &bytes, &row.hash)
                {
                    already_keyed = true;
                } else {
                    broken_at = Some(seq);
                }
                break;
            }
            let k = key.link(&keyed_prev, &bytes);
            links.push((seq, keyed_prev, k));
            legacy_prev = h;
            keyed_prev = k;
            last = seq;
        }
        tx.relink_audit(&links).await?;
        if broken_at.is_some() || already_keyed {
            break;
        }
    }
    if broken_at.is_none() && !already_keyed && (last != head_seq || head_hash != legacy_prev) {
        broken_at = Some(last.min(head_seq) + 1);
    }
    let (seq, hash) = if broken_at.is_none() && !already_keyed {
        (last, keyed_prev)
    } else {
        (head_seq, head_hash)
    };
    Ok(Rekeyed {
        rekeyed: if already_keyed { 0 } else { last },
        head_seq: seq,
        head_hash: hash,
        legacy_head: head_hash,
        broken_at,
        already_keyed,
    })
}
