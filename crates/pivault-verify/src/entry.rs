//! pivault's canonical audit-entry encoding: the bytes of a leaf of the audit log, decoded so
//! a verifier can show what the proven entry says.
//!
//! The encoding (big-endian throughout):
//!
//! ```text
//! 0x01                                  version
//! seq            i64                    the log-wide sequence number
//! at             i64                    unix seconds
//! actor          str
//! action         str
//! subject_id     opt
//! purpose        opt
//! categories     str
//! outcome        str
//! reason         opt
//! legal_basis    opt
//! policy_version str
//! request_id     opt
//! detail         opt
//! [shard u32 || idx u64]                only for an entry in a shard other than 0
//! ```
//!
//! where a `str` is `u64 byte length || UTF-8 bytes` and an `opt` is `0x00` (none) or
//! `0x01 || str`.

use serde::Serialize;

/// One decoded audit entry (a leaf of a shard's tree); see the module docs for the bytes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AuditLeaf {
    /// The log-wide sequence number.
    pub seq: i64,
    /// When it happened, in unix seconds (UTC).
    pub at: i64,
    /// Who acted (a principal or service id).
    pub actor: String,
    /// What was done (e.g. `reveal`).
    pub action: String,
    /// The PI subject concerned, if any.
    pub subject_id: Option<String>,
    /// The declared purpose, if any.
    pub purpose: Option<String>,
    /// The PI categories concerned, as pivault wrote them.
    pub categories: String,
    /// The outcome (e.g. `allow`, `deny`).
    pub outcome: String,
    /// Why, if given.
    pub reason: Option<String>,
    /// The legal basis invoked, if any.
    pub legal_basis: Option<String>,
    /// The policy version that decided.
    pub policy_version: String,
    /// The request id, if any.
    pub request_id: Option<String>,
    /// Free-form detail, if any.
    pub detail: Option<String>,
    /// The shard whose tree holds the entry (0 when the encoding has no suffix).
    pub shard: u32,
    /// The entry's leaf index within its shard, as the suffix states it (`None` in shard 0,
    /// whose entries carry no suffix).
    pub idx: Option<u64>,
}

struct Reader<'a> {
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if n > self.rest.len() {
            return None;
        }
        let (a, b) = self.rest.split_at(n);
        self.rest = b;
        Some(a)
    }

    fn array<const N: usize>(&mut self) -> Option<[u8; N]> {
        self.take(N).and_then(|b| <[u8; N]>::try_from(b).ok())
    }

    fn u8(&mut self) -> Option<u8> {
        self.array::<1>().map(|[b]| b)
    }

    fn str(&mut self) -> Option<String> {
        let len = usize::try_from(u64::from_be_bytes(self.array()?)).ok()?;
        String::from_utf8(self.take(len)?.to_vec()).ok()
    }

    fn opt(&mut self) -> Option<Option<String>> {
        match self.u8()? {
            0 => Some(None),
            1 => self.str().map(Some),
            _ => None,
        }
    }
}

impl AuditLeaf {
    /// Decodes pivault's canonical audit-entry encoding (see [`crate::entry`]). `None` for
    /// bytes that are not exactly one such entry: another version byte, a truncated field,
    /// invalid UTF-8, an option tag other than 0 or 1, a suffix of other than 12 bytes, a
    /// suffix naming shard 0 (shard 0 entries carry none), or trailing bytes.
    #[must_use]
    pub fn decode(bytes: &[u8]) -> Option<AuditLeaf> {
        let mut r = Reader { rest: bytes };
        if r.u8()? != 1 {
            return None;
        }
        let mut leaf = AuditLeaf {
            seq: i64::from_be_bytes(r.array()?),
            at: i64::from_be_bytes(r.array()?),
            actor: r.str()?,
            action: r.str()?,
            subject_id: r.opt()?,
            purpose: r.opt()?,
            categories: r.str()?,
            outcome: r.str()?,
            reason: r.opt()?,
            legal_basis: r.opt()?,
            policy_version: r.str()?,
            request_id: r.opt()?,
            detail: r.opt()?,
            shard: 0,
            idx: None,
        };
        match r.rest.len() {
            0 => {}
            12 => {
                leaf.shard = u32::from_be_bytes(r.array()?);
                leaf.idx = Some(u64::from_be_bytes(r.array()?));
                if leaf.shard == 0 {
                    return None;
                }
            }
            _ => return None,
        }
        Some(leaf)
    }
}
