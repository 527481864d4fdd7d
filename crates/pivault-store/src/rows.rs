//! Plain row types. No PI in clear: ciphertexts and digests only.

use pivault_domain::audit::AuditRecord;

/// A PI subject. `status` is `active` or `erased`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubjectRow {
    /// Opaque id (UUID v4 text).
    pub id: String,
    /// `account` or `business_contact`.
    pub kind: String,
    /// `active` or `erased`.
    pub status: String,
    /// Unix seconds.
    pub created_at: i64,
    /// Unix seconds, when erased.
    pub erased_at: Option<i64>,
    /// The region the customer chose for its business data (policy §6.3); `None` = the
    /// policy's storage region.
    pub home_region: Option<String>,
}

/// A wrapped DEK for one subject and scope (`primary`, `restricted`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyRow {
    /// Subject id.
    pub subject_id: String,
    /// Key scope.
    pub scope: String,
    /// DEK id.
    pub key_id: String,
    /// Id of the KEK that wrapped it.
    pub kek_id: String,
    /// nonce ‖ ciphertext ‖ tag.
    pub wrapped: Vec<u8>,
    /// Unix seconds.
    pub created_at: i64,
}

/// One sealed field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldRow {
    /// Subject id.
    pub subject_id: String,
    /// Record within the subject (`profile`, `order:o00000001`, …). Not PI.
    pub record: String,
    /// Field name within the record (`mobile`, `amount_cny`, …).
    pub name: String,
    /// Category key.
    pub category: String,
    /// Id of the DEK that sealed it.
    pub key_id: String,
    /// AEAD output.
    pub ciphertext: Vec<u8>,
    /// When set, the field is restricted (kept only for a legal retention period) until this
    /// instant, unix seconds; the retention sweep deletes it afterwards.
    pub restricted_until: Option<i64>,
    /// Unix seconds.
    pub updated_at: i64,
}

/// One consent ledger row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsentRow {
    /// Ledger sequence (assigned by the database; 0 before insert).
    pub seq: i64,
    /// Caller's or importer's event id; unique, makes imports idempotent.
    pub event_ref: String,
    /// Subject id.
    pub subject_id: String,
    /// Purpose id.
    pub purpose: String,
    /// `grant` | `withdraw`.
    pub action: String,
    /// When the subject acted, unix seconds.
    pub at: i64,
    /// `self` | `guardian`.
    pub given_by: String,
    /// `web`, `app`, `api`, `import`, …
    pub method: String,
    /// Separate consent (PIPL Art. 29).
    pub separate: bool,
    /// Policy version shown.
    pub policy_version: String,
    /// When recorded, unix seconds.
    pub recorded_at: i64,
    /// The recipient this consent names (PIPL Art. 23, 39), if any.
    pub recipient: Option<String>,
}

/// One entry of the disclosure ledger: PI provided outside the provider. No PI values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DisclosureRow {
    /// Opaque id.
    pub id: String,
    /// Subject id.
    pub subject_id: String,
    /// `share` | `transfer` | `disclose` | `cross_border_transfer`.
    pub action: String,
    /// Recipient id (or the authority/public named by a disclosure).
    pub recipient: Option<String>,
    /// Purpose id.
    pub purpose: String,
    /// Category keys provided, comma-separated, sorted.
    pub categories: String,
    /// Legal basis applied.
    pub legal_basis: String,
    /// §5.4 exception relied on, if any.
    pub exception: Option<String>,
    /// Case number or document reference of the exception.
    pub reference: Option<String>,
    /// The officer who authorized the exception.
    pub authorized_by: Option<String>,
    /// Destination region.
    pub region: Option<String>,
    /// Unix seconds.
    pub at: i64,
    /// Principal that made the provision.
    pub actor: String,
    /// Request id.
    pub request_id: Option<String>,
}

/// An API key: only the SHA-256 of the secret is stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiKeyRow {
    /// Public key id (part of the token).
    pub key_id: String,
    /// Principal name.
    pub principal: String,
    /// Comma-separated roles.
    pub roles: String,
    /// Comma-separated purposes.
    pub purposes: String,
    /// SHA-256 of the token.
    pub token_hash: Vec<u8>,
    /// Unix seconds.
    pub created_at: i64,
    /// Unix seconds, when revoked.
    pub revoked_at: Option<i64>,
}

/// A stored audit entry with its chain links.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditRow {
    /// The entry.
    pub record: AuditRecord,
    /// Hash of the previous entry (32 bytes).
    pub prev_hash: Vec<u8>,
    /// Hash of this entry (32 bytes).
    pub hash: Vec<u8>,
}
