//! Plain row types. No PI in clear: ciphertexts and digests only.

use pivault_domain::audit::AuditRecord;

/// A subject's status as stored in `subjects.status` ([`SubjectRow::status`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SubjectStatus {
    /// The subject's data is live.
    Active,
    /// Crypto-shredded: the primary DEK and blind-index entries are gone.
    Erased,
}

impl SubjectStatus {
    /// Every status.
    pub const ALL: [SubjectStatus; 2] = [SubjectStatus::Active, SubjectStatus::Erased];

    /// The stored form: `active` or `erased`.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            SubjectStatus::Active => "active",
            SubjectStatus::Erased => "erased",
        }
    }

    /// The status stored as `s`; `None` for anything else.
    #[must_use]
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|st| st.as_str() == s)
    }
}

impl std::fmt::Display for SubjectStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl PartialEq<SubjectStatus> for String {
    fn eq(&self, other: &SubjectStatus) -> bool {
        self == other.as_str()
    }
}

impl PartialEq<SubjectStatus> for str {
    fn eq(&self, other: &SubjectStatus) -> bool {
        self == other.as_str()
    }
}

/// A PI subject. `status` is [`SubjectStatus::as_str`] of its status (`active` or `erased`);
/// [`SubjectRow::subject_status`] parses it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubjectRow {
    /// Opaque id (UUID v4 text).
    pub id: String,
    /// `account` or `business_contact`.
    pub kind: String,
    /// `active` or `erased` ([`SubjectStatus::as_str`]).
    pub status: String,
    /// Unix seconds.
    pub created_at: i64,
    /// Unix seconds, when erased.
    pub erased_at: Option<i64>,
    /// The region the customer chose for its business data (policy §6.3); `None` = the
    /// policy's storage region.
    pub home_region: Option<String>,
    /// The open security case that locks this subject's PI after a misuse report (policy
    /// §8.7); `None` when not locked. Migration 0010.
    pub lock_case: Option<String>,
    /// The subject's language on record for notices (`zh-CN`, `en`); `None` = `zh-CN`.
    pub lang: Option<String>,
}

impl SubjectRow {
    /// The status, parsed; `None` when the stored text is not a [`SubjectStatus`].
    #[must_use]
    pub fn subject_status(&self) -> Option<SubjectStatus> {
        SubjectStatus::parse(&self.status)
    }
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
    /// Unix seconds after which the key is refused (`None`: no expiry).
    pub expires_at: Option<i64>,
    /// The key id that replaced this one at a rotation.
    pub replaced_by: Option<String>,
}

/// One key generation (`key_generations`): a KEK or blind-index key derived from the master key
/// and a public salt (generation 1: the key derived before any rotation, empty salt).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyGenRow {
    /// `kek` or `index`.
    pub kind: String,
    /// 1, 2, …
    pub generation: i64,
    /// Public key id (`kek-…`, `bix-…`): a fingerprint, not the key.
    pub key_id: String,
    /// HKDF salt (RFC 5869); empty for generation 1.
    pub salt: Vec<u8>,
    /// `current`, `active` or `retired`.
    pub state: String,
    /// Unix seconds.
    pub created_at: i64,
    /// Unix seconds, when no row used it any more.
    pub retired_at: Option<i64>,
}

/// Progress of a resumable key job (`key_jobs`): `rewrap` or `reindex`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyJobRow {
    /// `rewrap` or `reindex`.
    pub kind: String,
    /// The generation rows are being moved to.
    pub generation: i64,
    /// `running` or `done`.
    pub state: String,
    /// Last subject id a committed batch reached (`""`: start).
    pub cursor_subject: String,
    /// Last scope within `cursor_subject` (rewrap only).
    pub cursor_scope: String,
    /// Rows moved so far.
    pub done: i64,
    /// Rows to move, counted when the job started.
    pub total: i64,
    /// Unix seconds.
    pub started_at: i64,
    /// Unix seconds.
    pub updated_at: i64,
}

/// A legal hold (`legal_holds`, migration 0008): while active (`released_at` is `None`), the
/// retention sweep neither deletes nor anonymizes anything of the held subject, or of the held
/// category across every subject (PIPL Art. 47 lets a legal obligation outlast the retention
/// period; policy §4.2). Exactly one of `subject_id` / `category` is set. No PI: `reason` and
/// `reference` name a case, not a person's data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HoldRow {
    /// Opaque id (UUID v4 text).
    pub id: String,
    /// The held subject; `None` for a category hold.
    pub subject_id: Option<String>,
    /// The held category key (`order.transaction`, …); `None` for a subject hold.
    pub category: Option<String>,
    /// Why the data is held (litigation, regulator inquiry, …).
    pub reason: String,
    /// Case number or document reference.
    pub reference: String,
    /// Principal that set the hold.
    pub set_by: String,
    /// Unix seconds.
    pub set_at: i64,
    /// Principal that released it.
    pub released_by: Option<String>,
    /// Unix seconds, when released.
    pub released_at: Option<i64>,
}

/// One retention-managed record (`retention_items`, migration 0008): an order, a web-log line,
/// a ticket… `category` is the category whose rule (policy §4.2: CSL Art. 21 for network logs,
/// E-Commerce Law Art. 31 for transaction records, PIPL Art. 47 otherwise) governs the whole
/// record; `event_at` is the instant its clock starts. Ids and times only, no PI.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetentionItem {
    /// Subject id.
    pub subject_id: String,
    /// Record within the subject (`order:o00000001`, `weblog:…`); the `fields.record` it governs.
    pub record: String,
    /// Category key whose retention rule governs the record.
    pub category: String,
    /// When the record's retention clock starts (the transaction time, the request time…),
    /// unix seconds.
    pub event_at: i64,
}

/// One anonymized web-log line (`anon_weblog`): generalized values in clear with no subject id
/// and no key, so no longer PI (PIPL Art. 73). `anonymized_at` is the writing transaction's
/// time and the id is assigned by the database.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AnonWeblogRow {
    /// The request time truncated to the hour, unix seconds.
    pub hour: i64,
    /// The client network (a truncated address such as `203.0.113.0/24`), never the address.
    pub client_net: String,
    /// HTTP method.
    pub method: String,
    /// Request path with identifiers removed.
    pub path: String,
    /// HTTP status.
    pub status: i64,
    /// Response bytes.
    pub bytes: i64,
    /// User-agent family (`Chrome`, `curl`, …).
    pub ua_family: String,
    /// User-agent major version, when known.
    pub ua_major: Option<i64>,
}

/// One anonymized order (`anon_orders`, PIPL Art. 73): no subject id, no key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AnonOrderRow {
    /// `YYYY-MM` of the transaction.
    pub month: String,
    /// Product (or product category) id.
    pub product: String,
    /// Amount as decimal text (possibly banded, e.g. `100-200`).
    pub amount: String,
}

/// A retention sweep run (`sweep_runs`) and its progress.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SweepRunRow {
    /// Run id (UUID v4 text).
    pub id: String,
    /// Unix seconds.
    pub started_at: i64,
    /// Unix seconds, once done or failed.
    pub finished_at: Option<i64>,
    /// A dry run counts what it would do and changes nothing.
    pub dry_run: bool,
    /// Principal that started it (`scheduler`, an admin).
    pub actor: String,
    /// `running`, `done` or `failed` (enforced by the schema).
    pub state: String,
    /// JSON object of non-PI counts (per category: deleted, anonymized, held…).
    pub counts: String,
    /// Unix seconds.
    pub updated_at: i64,
}

/// Retention figures of one category ([`crate::Store::retention_stats`]).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RetentionStat {
    /// Category key.
    pub category: String,
    /// Retention items of the category.
    pub items: i64,
    /// The oldest item's `event_at`, unix seconds; `None` without items.
    pub oldest_event_at: Option<i64>,
    /// Items due by the window's end: `event_at` at or before the category's cutoff.
    pub due_before: i64,
    /// Restricted fields of the category (kept only for a legal retention period).
    pub restricted_fields: i64,
    /// Of those, the fields whose restriction ends at or before the window's end.
    pub restricted_due_before: i64,
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

/// A data subject request (PIPL Art. 44–50; policy §VII). No PI in clear: `params` holds only
/// non-PI parameters (kind options, purposes, ground); PI parameters (a correction's new
/// values) are in `sealed_params`, sealed under the subject's DEK; the access package is in
/// the separate `result` column, read with [`crate::Store::dsr_result`].
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DsrRow {
    /// Request id (UUID v4 text).
    pub id: String,
    /// The subject the request acts on; `None` when the claimed identity matched nobody (such a
    /// request can never be verified).
    pub subject_id: Option<String>,
    /// `access`, `copy`, `correction`, `deletion`, `withdrawal`, `cancellation`, `explanation`.
    pub kind: String,
    /// Workflow state (`received` … `completed`, `rejected`, `failed`).
    pub state: String,
    /// Rejection reason code (Art. 50), when rejected.
    pub reason: Option<String>,
    /// The execution step that failed, when failed.
    pub failed_step: Option<String>,
    /// How identity is verified: `email` or `sms`.
    pub channel: String,
    /// Deadline jurisdiction key (`cn`, `eu`).
    pub jurisdiction: String,
    /// Unix seconds.
    pub received_at: i64,
    /// Unix seconds: the end of the last day to answer.
    pub due_at: i64,
    /// Unix seconds, when extended with notice (GDPR Art. 12(3)).
    pub extended_due_at: Option<i64>,
    /// The earlier request this one duplicates.
    pub duplicate_of: Option<String>,
    /// SHA-256 of the requester's token.
    pub token_hash: Vec<u8>,
    /// Comma-separated execution steps committed so far, in order.
    pub steps_done: String,
    /// JSON object: each committed step's counts (no PI).
    pub step_results: String,
    /// JSON object of non-PI parameters.
    pub params: String,
    /// PI parameters sealed under the subject's DEK.
    pub sealed_params: Option<Vec<u8>>,
    /// Key id of the DEK that sealed `result`.
    pub result_key_id: Option<String>,
    /// Signed receipt JSON (no PI values).
    pub receipt: Option<String>,
    /// Unix seconds.
    pub updated_at: i64,
    /// Unix seconds, when completed, rejected or failed for good.
    pub completed_at: Option<i64>,
    /// Keyed hash of the claimed identity (email or mobile), kept only while the request
    /// waits for verification: an identical filing is folded into this one (migration 0007).
    pub identity_digest: Option<Vec<u8>>,
}

/// The live one-time code of a request: a keyed digest, never the code (policy §7.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DsrCodeRow {
    /// Request id.
    pub request_id: String,
    /// HMAC-SHA256 of the code, keyed and bound to the request id.
    pub digest: Vec<u8>,
    /// Unix seconds.
    pub expires_at: i64,
    /// Attempts left before the code is burnt.
    pub attempts_left: i64,
    /// Codes sent for this request so far.
    pub sends: i64,
    /// Unix seconds of the last send.
    pub sent_at: i64,
}

/// Filter of [`crate::Store::dsr_list`].
#[derive(Debug, Clone, Default)]
pub struct DsrFilter {
    /// Only this state.
    pub state: Option<String>,
    /// Only this kind.
    pub kind: Option<String>,
    /// Only this subject.
    pub subject_id: Option<String>,
    /// Only open requests (not completed or rejected) due before this instant (unix seconds);
    /// an extended request counts by its extended due date.
    pub due_before: Option<i64>,
    /// At most this many, oldest due first.
    pub limit: i64,
}

/// A privacy-center session (migration 0012): opened by one verified sign-in request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CenterSessionRow {
    /// The verified `sign_in` request that opened it.
    pub signin_id: String,
    /// The signed-in subject.
    pub subject_id: String,
    /// Opened (unix seconds).
    pub created_at: i64,
    /// Ends at (unix seconds).
    pub expires_at: i64,
    /// Ended by sign-out, erasure or a lock (unix seconds).
    pub ended_at: Option<i64>,
    /// `self`, or `guardian` when a minor's guardian signed in for them (migration 0013;
    /// policy §IX).
    pub acting_as: String,
}

/// One entry of the cookie-choice ledger (migration 0012; policy §III).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CookieChoiceRow {
    /// Order within the visitor's choices.
    pub seq: i64,
    /// The random visitor id (no PI).
    pub visitor_id: String,
    /// The subject, when chosen signed in or linked at sign-in.
    pub subject_id: Option<String>,
    /// `necessary`, `preferences`, `analytics` or `third_party`.
    pub category: String,
    /// Allowed or refused.
    pub granted: bool,
    /// `accept_all`, `reject_all`, `save`, `gpc` or `dismiss`.
    pub method: String,
    /// The policy version shown.
    pub policy_version: String,
    /// When (unix seconds).
    pub at: i64,
}

#[cfg(test)]
mod tests {
    use super::{SubjectRow, SubjectStatus};

    #[test]
    fn subject_statuses_round_trip_through_their_stored_names() {
        for st in SubjectStatus::ALL {
            assert_eq!(SubjectStatus::parse(st.as_str()), Some(st));
            assert_eq!(st.to_string(), st.as_str());
            let stored: String = st.as_str().into();
            assert!(stored == st && *stored.as_str() == st);
        }
        assert_eq!(SubjectStatus::parse("Active"), None);
        let row = SubjectRow {
            id: "s".into(),
            kind: "account".into(),
            status: "erased".into(),
            created_at: 0,
            erased_at: Some(1),
            home_region: None,
            lock_case: None,
            lang: None,
        };
        assert_eq!(row.subject_status(), Some(SubjectStatus::Erased));
    }
}

/// One message in the outbox (migration 0010): what to tell whom and why, never the address or
/// the text. `dedup_key` (`kind|target|subject|cause`) makes it exactly-once per message kind,
/// recipient and cause (PIPL Art. 57 incident notices, Art. 47 erasure notices, Art. 39
/// cross-border notices, policy §7.2 DSR codes, §8.6 cessation notices).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxRow {
    /// Opaque id; also the message's idempotency key (`Message-ID`, `Idempotency-Key`).
    pub id: String,
    /// `dsr_code`, `dsr_notice`, `incident_notice`, `erasure_notice`, `cross_border_notice`,
    /// `cessation_notice`, `misuse_notice`, `policy_change_notice`.
    pub kind: String,
    /// The PI subject the message is to or about.
    pub subject_id: Option<String>,
    /// `subject` (reached on their own channels) or `recipient:<id>` (a policy recipient's
    /// webhook).
    pub target: String,
    /// What caused it: an incident, DSR request, disclosure or cessation id.
    pub cause: String,
    /// `kind|target|subject|cause`; unique.
    pub dedup_key: String,
    /// Language of the text (`zh-CN`, `en`).
    pub lang: String,
    /// Sealed parameters (outbox key, AAD = id), for the one secret payload: a one-time code.
    pub payload: Option<Vec<u8>>,
    /// `pending`, `delivered`, `letter`, `announced`, `failed`.
    pub state: String,
    /// The channel that delivered it (or is being tried).
    pub channel: Option<String>,
    /// Position in the policy's channel order being tried (0 = first).
    pub channel_index: i64,
    /// Attempts so far (every channel).
    pub attempts: i64,
    /// Unix seconds: not before.
    pub next_at: i64,
    /// Unix seconds.
    pub created_at: i64,
    /// Unix seconds: delivered, printed or given up.
    pub done_at: Option<i64>,
    /// The last attempt's error code.
    pub last_error: Option<String>,
}

/// One delivery attempt of an outbox message: no address, no body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxAttemptRow {
    /// The message.
    pub outbox_id: String,
    /// 1, 2, … per message.
    pub n: i64,
    /// Unix seconds.
    pub at: i64,
    /// `email`, `sms`, `push`, `letter`, `webhook`.
    pub channel: String,
    /// `delivered` or a stable error code (`smtp_unavailable`, `webhook_failed`, …).
    pub outcome: String,
    /// SMTP reply code or HTTP status, when there is one.
    pub status: Option<i64>,
}

/// Outbox messages of one cause, counted by state.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OutboxCounts {
    /// Waiting for delivery or a retry.
    pub pending: u64,
    /// Delivered on an individual channel.
    pub delivered: u64,
    /// Queued for, or printed in, a letter batch.
    pub letter: u64,
    /// No individual channel: covered by the announcement.
    pub announced: u64,
    /// Given up after the last retry.
    pub failed: u64,
}

/// A security incident (policy §8.3, §8.4; PIPL Art. 57). The free text is the security
/// team's and holds no PI values; `categories` and `systems` are comma-separated keys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IncidentRow {
    /// Opaque id (`inc-…`).
    pub id: String,
    /// `open`, `scoped`, `notified`, `reported`, `closed`.
    pub state: String,
    /// `especially_major`, `major`, `relatively_major`, `general`.
    pub severity: String,
    /// What happened.
    pub what_happened: String,
    /// Unix seconds.
    pub occurred_at: i64,
    /// Unix seconds.
    pub discovered_at: i64,
    /// Category keys, comma-separated.
    pub categories: String,
    /// Systems affected, comma-separated.
    pub systems: String,
    /// The cause.
    pub cause: String,
    /// Possible impact on the people affected.
    pub possible_impact: String,
    /// Measures taken.
    pub measures_taken: String,
    /// Measures planned.
    pub measures_planned: String,
    /// What people can do themselves to reduce the harm.
    pub self_help: String,
    /// Remedies.
    pub remedies: String,
    /// JSON scope `{from, to, keys, principals, categories, store}`.
    pub scope: Option<String>,
    /// Affected subjects (after scoping).
    pub affected: i64,
    /// Principal that opened it.
    pub opened_by: String,
    /// Unix seconds.
    pub opened_at: i64,
    /// Unix seconds, when reported to the regulator.
    pub reported_at: Option<i64>,
    /// Unix seconds.
    pub closed_at: Option<i64>,
    /// JSON array `[{at, event}]`.
    pub timeline: String,
    /// Unix seconds.
    pub updated_at: i64,
}

/// One subject an incident affects: ids and keys only.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IncidentSubjectRow {
    /// The incident.
    pub incident_id: String,
    /// The subject.
    pub subject_id: String,
    /// Affected category keys, comma-separated and sorted.
    pub categories: String,
    /// Region on record (the subject's home region or the policy's storage region).
    pub region: String,
}

/// A public announcement (policy §8.3, §8.6), in both languages, with no per-person data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AnnouncementRow {
    /// Opaque id.
    pub id: String,
    /// `incident` or `cessation`.
    pub kind: String,
    /// The incident or cessation id.
    pub cause: String,
    /// Unix seconds.
    pub published_at: i64,
    /// zh-CN title.
    pub title_zh: String,
    /// zh-CN body.
    pub body_zh: String,
    /// English title.
    pub title_en: String,
    /// English body.
    pub body_en: String,
}

/// A security case opened by a misuse report (policy §8.7).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecurityCaseRow {
    /// Opaque id (`case-…`).
    pub id: String,
    /// The subject who reported.
    pub subject_id: String,
    /// `misuse_report` (or `operator`).
    pub source: String,
    /// `open` or `released`.
    pub state: String,
    /// Unix seconds.
    pub opened_at: i64,
    /// JSON: the subject's recent access history from the audit log (no values).
    pub history: String,
    /// Principal that released the lock.
    pub released_by: Option<String>,
    /// Unix seconds.
    pub released_at: Option<i64>,
}

/// The service-cessation row (policy §8.6).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CessationRow {
    /// `none`, `running`, `done`.
    pub state: String,
    /// Opaque id of this cessation.
    pub cessation_id: Option<String>,
    /// Principal that started it.
    pub started_by: Option<String>,
    /// Unix seconds.
    pub started_at: Option<i64>,
    /// Unix seconds: when the service ends.
    pub effective_at: Option<i64>,
    /// JSON object of non-PI counts.
    pub progress: String,
    /// Unix seconds.
    pub updated_at: i64,
}

/// One published policy version (`policy_history`, migration 0011; policy §X).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyVersionRow {
    /// The version label, e.g. `2024-12-04`.
    pub version: String,
    /// The publication date, `YYYY-MM-DD`.
    pub published_at: String,
    /// Hex SHA-256 of the version's record (`PolicyVersion::record_hash`).
    pub sha256: String,
    /// The published text, when it is on file.
    pub text: Option<String>,
    /// JSON array of the changes: `{summary, material, purposes, categories}`.
    pub changes: String,
    /// When this vault first stored it, unix seconds.
    pub stored_at: i64,
}

/// What [`crate::WriteTx::upsert_policy_version`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PolicyVersionUpsert {
    /// The version was not stored before; it is now.
    Inserted,
    /// The version was stored with the same hash (a missing text may have been filled in).
    Unchanged,
    /// The version is stored with another hash: nothing was written (a published version is
    /// never rewritten, policy §X).
    Rewritten,
}
