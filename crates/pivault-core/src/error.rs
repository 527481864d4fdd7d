//! The core error type. Messages never contain PI values.

use pivault_crypto::CryptoError;
use pivault_store::{StorageFault, StoreError};

/// Why a decision denied a request: reason code, the rule behind it and a sentence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Denial {
    /// Stable reason code (`consent_missing`, …).
    pub code: &'static str,
    /// PIPL article.
    pub article: &'static str,
    /// Policy clause.
    pub clause: String,
    /// Human explanation.
    pub explanation: String,
    /// Categories withheld with their reason codes.
    pub withheld: Vec<(String, &'static str)>,
}

/// Errors from use cases.
#[derive(Debug, thiserror::Error)]
pub enum CoreError {
    /// No or bad credentials.
    #[error("authentication required")]
    Unauthenticated,
    /// The principal lacks a role or purpose.
    #[error("forbidden: {code}")]
    Forbidden {
        /// Stable code.
        code: &'static str,
        /// Fixed human message.
        message: &'static str,
    },
    /// A token that matches a stored API key which is revoked or expired (401). `code` is
    /// stable (`api_key_revoked`, `api_key_expired`).
    #[error("API key refused: {code}")]
    KeyRejected {
        /// Stable code.
        code: &'static str,
        /// Fixed human message.
        message: &'static str,
    },
    /// The purpose decision denied the request (audited).
    #[error("denied: {}", .0.code)]
    Denied(Denial),
    /// Something does not exist.
    #[error("not found: {0}")]
    NotFound(&'static str),
    /// Invalid input. `field` names where (e.g. `fields[2].value`), never the value.
    #[error("invalid {field}: {reason}")]
    Invalid {
        /// Where.
        field: String,
        /// Stable code.
        code: &'static str,
        /// Why.
        reason: &'static str,
    },
    /// Too many requests from one client address or naming one identity (`dsr_rate_limited`,
    /// 429): try again after `retry_after` seconds.
    #[error("rate limited: retry after {retry_after} s")]
    RateLimited {
        /// Seconds until a request would be taken (`Retry-After`).
        retry_after: u64,
    },
    /// State conflict (e.g. already erased, account exists).
    #[error("conflict: {0}")]
    Conflict(&'static str),
    /// Store failure.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Crypto failure (wrong key, tampered ciphertext).
    #[error(transparent)]
    Crypto(#[from] CryptoError),
    /// The audit entry of a decision could not be committed; the decision is not returned.
    #[error("audit append failed: {0}")]
    Audit(String),
    /// A write the storage could not take (disk full, I/O error, read-only, unreachable), met
    /// where the [`StoreError`] itself is not at hand (the audit group commit). Nothing was
    /// committed; retry later.
    #[error("{}: {detail}", fault.describe())]
    Storage {
        /// Which fault.
        fault: StorageFault,
        /// The store's message (no PI).
        detail: String,
    },
    /// I/O (import files).
    #[error("io: {0}")]
    Io(#[from] std::io::Error),
    /// The master key is not this database's (or is missing, or cannot be checked): the
    /// vault refuses to open before writing anything. `code` is stable
    /// (`master_key_mismatch`, `master_key_missing`, `master_key_unverifiable`,
    /// `master_key_unreadable`, see [`crate::keycheck`]); `message` names paths and KEK ids
    /// (public labels), never key bytes.
    #[error("{code}: {message}")]
    KeyRefused {
        /// Stable code.
        code: &'static str,
        /// What to do about it.
        message: String,
    },
}

impl CoreError {
    /// The storage fault behind this error, if it is one.
    #[must_use]
    pub fn storage_fault(&self) -> Option<StorageFault> {
        match self {
            Self::Store(e) => e.fault(),
            Self::Storage { fault, .. } => Some(*fault),
            _ => None,
        }
    }

    /// Shorthand for [`CoreError::Invalid`].
    pub fn invalid(field: impl Into<String>, code: &'static str, reason: &'static str) -> Self {
        Self::Invalid {
            field: field.into(),
            code,
            reason,
        }
    }
}
