//! C2SP signed notes and transparency-log checkpoints, Ed25519 only: the format transparency
//! logs (Go's `sumdb`, Trillian Tessera, Sigsum witnesses) read and write, so a pivault
//! checkpoint can be checked with their tools too.
//!
//! A checkpoint is the note text
//!
//! ```text
//! <origin>\n
//! <tree size, decimal>\n
//! <root hash, standard base64>\n
//! [extension lines]\n
//! ```
//!
//! followed by an empty line and one signature line per signer,
//! `— <key name> <base64(4-byte key id || 64-byte Ed25519 signature)>\n`, the signature over
//! the text's bytes. The key id is the first four bytes of
//! `SHA-256(key name || "\n" || 0x01 || public key)`; a verifier key is written
//! `<key name>+<key id, 8 hex digits>+<base64(0x01 || public key)>`.

use crate::merkle::Hash;
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};
use sha2::{Digest, Sha256};

/// The signature-type byte of Ed25519 in signed notes.
const ED25519: u8 = 0x01;

/// Why a note or checkpoint was refused. Names the fault, never echoes the text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NoteError {
    /// The verifier key string is not `<name>+<id>+<key>` with an Ed25519 key.
    #[error("the verifier key is malformed")]
    KeyMalformed,
    /// The note is not text, an empty line, then signature lines.
    #[error("the note is malformed")]
    NoteMalformed,
    /// No signature line carries the verifier key's name and id.
    #[error("no signature by key `{0}`")]
    NotSigned(String),
    /// A signature by the key does not verify over the text.
    #[error("the signature by key `{0}` does not verify")]
    BadSignature(String),
    /// The text is not a checkpoint (origin, decimal size, base64 32-byte root).
    #[error("the checkpoint body is malformed: {0}")]
    CheckpointMalformed(&'static str),
    /// The checkpoint's shard lines do not match it (see [`Checkpoint::shards`]): names the
    /// check that failed.
    #[error("the checkpoint's shards do not match it: {0}")]
    ShardsMismatch(&'static str),
}

/// An Ed25519 key that verifies notes, with its name.
#[derive(Debug, Clone)]
pub struct NoteVerifier {
    name: String,
    id: [u8; 4],
    key: VerifyingKey,
}

fn key_id(name: &str, key: &VerifyingKey) -> [u8; 4] {
    let mut h = Sha256::new();
    h.update(name.as_bytes());
    h.update(b"\n");
    h.update([ED25519]);
    h.update(key.as_bytes());
    let d = h.finalize();
    [d[0], d[1], d[2], d[3]]
}

fn valid_name(name: &str) -> bool {
    !name.is_empty() && !name.contains('+') && name.chars().all(|c| !c.is_whitespace())
}

impl NoteVerifier {
    /// The verifier of `key` under `name` (no `+`, no white space).
    ///
    /// # Errors
    /// [`NoteError::KeyMalformed`] for a bad name.
    pub fn new(name: &str, key: VerifyingKey) -> Result<Self, NoteError> {
        if !valid_name(name) {
            return Err(NoteError::KeyMalformed);
        }
        Ok(Self {
            name: name.to_string(),
            id: key_id(name, &key),
            key,
        })
    }

    /// Parses `<name>+<id hex>+<base64(0x01 || key)>`, checking that the id matches.
    ///
    /// # Errors
    /// [`NoteError::KeyMalformed`].
    pub fn parse(s: &str) -> Result<Self, NoteError> {
        let mut it = s.trim().splitn(3, '+');
        let (Some(name), Some(id), Some(key)) = (it.next(), it.next(), it.next()) else {
            return Err(NoteError::KeyMalformed);
        };
        let id = hex::decode(id).map_err(|_| NoteError::KeyMalformed)?;
        let raw = B64.decode(key).map_err(|_| NoteError::KeyMalformed)?;
        let (Some(&ED25519), Ok(bytes)) =
            (raw.first(), <[u8; 32]>::try_from(&raw[1.min(raw.len())..]))
        else {
            return Err(NoteError::KeyMalformed);
        };
        let key = VerifyingKey::from_bytes(&bytes).map_err(|_| NoteError::KeyMalformed)?;
        let v = Self::new(name, key)?;
        if id != v.id {
            return Err(NoteError::KeyMalformed);
        }
        Ok(v)
    }

    /// The key's name.
    #[must_use]
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The verifier key string (see [`NoteVerifier::parse`]).
    #[must_use]
    pub fn encode(&self) -> String {
        let mut raw = vec![ED25519];
        raw.extend_from_slice(self.key.as_bytes());
        format!("{}+{}+{}", self.name, hex::encode(self.id), B64.encode(raw))
    }

    /// Checks that `note` carries a valid signature by this key; returns the signed text.
    ///
    /// # Errors
    /// [`NoteError::NoteMalformed`], [`NoteError::NotSigned`], [`NoteError::BadSignature`].
    pub fn open<'a>(&self, note: &'a str) -> Result<&'a str, NoteError> {
        let split = note.find("\n\n").ok_or(NoteError::NoteMalformed)?;
        let (text, sigs) = (&note[..=split], &note[split + 2..]);
        if sigs.is_empty() || !sigs.ends_with('\n') {
            return Err(NoteError::NoteMalformed);
        }
        let mut seen = false;
        for line in sigs.lines() {
            let rest = line
                .strip_prefix("\u{2014} ")
                .ok_or(NoteError::NoteMalformed)?;
            let (name, sig) = rest.split_once(' ').ok_or(NoteError::NoteMalformed)?;
            let raw = B64.decode(sig).map_err(|_| NoteError::NoteMalformed)?;
            if name != self.name || raw.len() < 4 || raw[..4] != self.id {
                continue;
            }
            seen = true;
            let sig = Signature::from_slice(&raw[4..])
                .map_err(|_| NoteError::BadSignature(self.name.clone()))?;
            if self.key.verify(text.as_bytes(), &sig).is_ok() {
                return Ok(text);
            }
        }
        Err(if seen {
            NoteError::BadSignature(self.name.clone())
        } else {
            NoteError::NotSigned(self.name.clone())
        })
    }
}

/// Signs note `text` (which must end with a newline and hold no empty line) with `key` under
/// `name`: the text, an empty line and the signature line.
///
/// # Errors
/// [`NoteError::NoteMalformed`] for such a text; [`NoteError::KeyMalformed`] for a bad name.
pub fn sign_note(text: &str, name: &str, key: &SigningKey) -> Result<String, NoteError> {
    if !text.ends_with('\n') || text.contains("\n\n") || text.starts_with('\n') {
        return Err(NoteError::NoteMalformed);
    }
    let v = NoteVerifier::new(name, key.verifying_key())?;
    let sig = key.sign(text.as_bytes());
    let mut raw = v.id.to_vec();
    raw.extend_from_slice(&sig.to_bytes());
    Ok(format!("{text}\n\u{2014} {name} {}\n", B64.encode(raw)))
}

/// A transparency-log checkpoint (C2SP tlog-checkpoint): the log's origin, its size and root,
/// and any extension lines (pivault's carry the shard heads: see [`crate::shards`],
/// [`Checkpoint::for_shards`] and [`Checkpoint::shards`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    /// The log's origin line (e.g. `pivault.example/audit`).
    pub origin: String,
    /// The number of leaves.
    pub size: u64,
    /// The Merkle root over them.
    pub root: Hash,
    /// Extension lines, in order, without their newlines.
    pub extensions: Vec<String>,
}

impl Checkpoint {
    /// The note text of the checkpoint (to sign with [`sign_note`]).
    #[must_use]
    pub fn text(&self) -> String {
        let mut s = format!(
            "{}\n{}\n{}\n",
            self.origin,
            self.size,
            B64.encode(self.root)
        );
        for e in &self.extensions {
            s.push_str(e);
            s.push('\n');
        }
        s
    }

    /// Parses a checkpoint's note text (not its signatures: see [`NoteVerifier::open`]).
    ///
    /// # Errors
    /// [`NoteError::CheckpointMalformed`] naming the line at fault.
    pub fn parse(text: &str) -> Result<Self, NoteError> {
        let mut lines = text.strip_suffix('\n').unwrap_or(text).split('\n');
        let origin = lines
            .next()
            .filter(|o| !o.is_empty())
            .ok_or(NoteError::CheckpointMalformed("origin"))?;
        let size = lines
            .next()
            .filter(|s| {
                !s.is_empty()
                    && s.bytes().all(|b| b.is_ascii_digit())
                    && (s.len() == 1 || !s.starts_with('0'))
            })
            .and_then(|s| s.parse::<u64>().ok())
            .ok_or(NoteError::CheckpointMalformed("size"))?;
        let root = lines
            .next()
            .and_then(|r| B64.decode(r).ok())
            .and_then(|r| <[u8; 32]>::try_from(r.as_slice()).ok())
            .ok_or(NoteError::CheckpointMalformed("root"))?;
        let extensions: Vec<String> = lines.map(str::to_string).collect();
        if extensions.iter().any(String::is_empty) {
            return Err(NoteError::CheckpointMalformed("extension"));
        }
        Ok(Self {
            origin: origin.to_string(),
            size,
            root,
            extensions,
        })
    }

    /// Opens a signed checkpoint: the signature by `verifier`, then the body.
    ///
    /// # Errors
    /// As [`NoteVerifier::open`] and [`Checkpoint::parse`].
    pub fn open(note: &str, verifier: &NoteVerifier) -> Result<Self, NoteError> {
        Self::parse(verifier.open(note)?)
    }
}
