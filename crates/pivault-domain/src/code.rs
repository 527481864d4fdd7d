//! [`Code`]: every stable error code the service returns, with its HTTP status and a sentence
//! for the documentation. One vocabulary for the API, the logs and the README (whose error
//! table is [`markdown_table`]).
//!
//! The strings are stable: clients match on them. A code whose [`Code::status`] is 500 marks a
//! broken invariant (corrupt stored data, a failed RNG, an injected fault), never a client
//! mistake. Codes listed as "decision reason" travel as the `reason` of a `decision_denied`
//! (403) or of a withheld category.

macro_rules! codes {
    ($( $(#[$doc:meta])* $variant:ident = ($s:literal, $status:literal, $desc:literal), )+) => {
        /// A stable error code.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        #[non_exhaustive]
        pub enum Code {
            $( $(#[$doc])* $variant, )+
        }

        impl Code {
            /// Every code, grouped by HTTP status.
            pub const ALL: &'static [Code] = &[ $( Code::$variant, )+ ];

            /// The stable snake_case string.
            #[must_use]
            pub const fn as_str(self) -> &'static str {
                match self { $( Code::$variant => $s, )+ }
            }

            /// The HTTP status the code is returned with.
            #[must_use]
            pub const fn status(self) -> u16 {
                match self { $( Code::$variant => $status, )+ }
            }

            /// One sentence for the documentation.
            #[must_use]
            pub const fn description(self) -> &'static str {
                match self { $( Code::$variant => $desc, )+ }
            }
        }
    };
}

codes! {
    /// The body is not valid JSON; the message gives the line and column.
    MalformedJson = ("malformed_json", 400, "The body is not valid JSON; the message gives the line and column."),
    /// A query parameter is unknown or malformed.
    InvalidQuery = ("invalid_query", 400, "A query parameter is unknown or malformed."),
    /// A read names no purpose (`?purpose=`).
    PurposeRequired = ("purpose_required", 400, "A read names no purpose (`?purpose=`)."),
    /// A path segment is not valid percent-encoded UTF-8, or does not parse as its type.
    InvalidPath = ("invalid_path", 400, "A path segment is not valid percent-encoded UTF-8, or does not parse as its type."),
    /// The request line or a header could not be parsed (answered before routing).
    BadRequest = ("bad_request", 400, "The request line or a header could not be parsed (answered before routing)."),
    /// The request body could not be read.
    BodyUnreadable = ("body_unreadable", 400, "The request body could not be read."),
    /// No valid API key was sent (`Authorization: Bearer <key>`).
    Unauthenticated = ("unauthenticated", 401, "No valid API key was sent (`Authorization: Bearer <key>`)."),
    /// The API key was revoked (`keys revoke`, or a rotation without grace period).
    ApiKeyRevoked = ("api_key_revoked", 401, "The API key was revoked (`keys revoke`, or a rotation without grace period)."),
    /// The API key is past its expiry, or the grace period of its rotation has ended.
    ApiKeyExpired = ("api_key_expired", 401, "The API key is past its expiry, or the grace period of its rotation has ended."),
    /// The request token returned at filing must be sent as `X-Dsr-Token`.
    DsrTokenRequired = ("dsr_token_required", 401, "The request token returned at filing must be sent as `X-Dsr-Token`."),
    /// The purpose decision denied the request; `reason`, `article` and `clause` say why.
    DecisionDenied = ("decision_denied", 403, "The purpose decision denied the request; `reason`, `article` and `clause` say why."),
    /// The API key lacks the role this route needs.
    RoleRequired = ("role_required", 403, "The API key lacks the role this route needs."),
    /// The API key may not act for this purpose (also a decision reason).
    PurposeNotPermitted = ("purpose_not_permitted", 403, "The API key may not act for this purpose (also a decision reason)."),
    /// The `X-Dsr-Token` is not this request's token.
    DsrTokenInvalid = ("dsr_token_invalid", 403, "The `X-Dsr-Token` is not this request's token."),
    /// A guardian's privacy-center session manages the minor's consents only (policy §IX).
    GuardianSession = ("guardian_session", 403, "A guardian's privacy-center session manages the minor's consents only (policy §IX; PIPL Art. 31)."),
    /// Decision reason: the data is not personal information under the policy.
    NotPersonalInformation = ("not_personal_information", 403, "Decision reason: the data is not personal information under the policy."),
    /// Decision reason: the purpose needs consent and the subject never gave it.
    ConsentMissing = ("consent_missing", 403, "Decision reason: the purpose needs consent and the subject never gave it."),
    /// Decision reason: the subject withdrew the consent the purpose needs.
    ConsentWithdrawn = ("consent_withdrawn", 403, "Decision reason: the subject withdrew the consent the purpose needs."),
    /// Decision reason: the consent was given under a policy version older than a material change of the purpose (PIPL Art. 14 para. 2, policy §X).
    ConsentOutdated = ("consent_outdated", 403, "Decision reason: the consent was given under a policy version older than a material change of the purpose or of a category it uses, so it must be given again (PIPL Art. 14 para. 2, policy §X)."),
    /// Decision reason: the subject is under 14 and a guardian's consent is needed (PIPL Art. 31).
    GuardianConsentRequired = ("guardian_consent_required", 403, "Decision reason: the subject is under 14 and a guardian's consent is needed (PIPL Art. 31)."),
    /// Decision reason: sensitive PI needs a separate consent (PIPL Art. 29).
    SeparateConsentRequired = ("separate_consent_required", 403, "Decision reason: sensitive PI needs a separate consent (PIPL Art. 29)."),
    /// Decision reason: the category is not necessary for the purpose (PIPL Art. 6).
    NotNecessaryForPurpose = ("not_necessary_for_purpose", 403, "Decision reason: the category is not necessary for the purpose (PIPL Art. 6)."),
    /// Decision reason: the data is kept only for a legal obligation until its release date.
    RestrictedUnderRetention = ("restricted_under_retention", 403, "Decision reason: the data is kept only for a legal obligation until its release date."),
    /// Decision reason: an outbound action must name its recipient.
    RecipientRequired = ("recipient_required", 403, "Decision reason: an outbound action must name its recipient."),
    /// Decision reason: the recipient is not declared for this purpose.
    RecipientPurposeNotDeclared = ("recipient_purpose_not_declared", 403, "Decision reason: the recipient is not declared for this purpose."),
    /// Decision reason: the category is not declared for this recipient.
    NotDeclaredForRecipient = ("not_declared_for_recipient", 403, "Decision reason: the category is not declared for this recipient."),
    /// Decision reason: sharing needs the subject's separate consent naming the recipient (PIPL Art. 23).
    RecipientConsentMissing = ("recipient_consent_missing", 403, "Decision reason: sharing needs the subject's separate consent naming the recipient (PIPL Art. 23)."),
    /// Decision reason: a cross-border transfer needs a separate consent (PIPL Art. 39).
    CrossBorderConsentMissing = ("cross_border_consent_missing", 403, "Decision reason: a cross-border transfer needs a separate consent (PIPL Art. 39)."),
    /// Decision reason: public disclosure needs a separate consent (PIPL Art. 25).
    DisclosureConsentMissing = ("disclosure_consent_missing", 403, "Decision reason: public disclosure needs a separate consent (PIPL Art. 25)."),
    /// Decision reason: a claimed exception lacks its reference or authorizing officer.
    ExceptionIncomplete = ("exception_incomplete", 403, "Decision reason: a claimed exception lacks its reference or authorizing officer."),
    /// Decision reason: the destination region is not outside the storage region.
    NotCrossBorder = ("not_cross_border", 403, "Decision reason: the destination region is not outside the storage region."),
    /// Decision reason: PI is stored and used in the policy's storage region only.
    OutsideStorageRegion = ("outside_storage_region", 403, "Decision reason: PI is stored and used in the policy's storage region only."),
    /// Decision reason: business data stays in the region its customer chose.
    BusinessDataRegionLocked = ("business_data_region_locked", 403, "Decision reason: business data stays in the region its customer chose."),
    /// Decision reason: the operator's role may not read this category (§8.1).
    StaffNotAuthorized = ("staff_not_authorized", 403, "Decision reason: the operator's role may not read this category (§8.1)."),
    /// No subject has this id.
    SubjectNotFound = ("subject_not_found", 404, "No subject has this id."),
    /// No data subject request has this id.
    DsrNotFound = ("dsr_not_found", 404, "No data subject request has this id."),
    /// No legal hold has this id.
    HoldNotFound = ("hold_not_found", 404, "No legal hold has this id."),
    /// No security incident has this id.
    IncidentNotFound = ("incident_not_found", 404, "No security incident has this id."),
    /// No misuse lock has this id.
    LockNotFound = ("lock_not_found", 404, "No misuse lock has this id."),
    /// No notice in the outbox has this id.
    OutboxItemNotFound = ("outbox_item_not_found", 404, "No notice in the outbox has this id."),
    /// The policy's version history has no such version.
    PolicyVersionNotFound = ("policy_version_not_found", 404, "The policy's version history (`[[policy_version]]`) has no such version."),
    /// No API key has this id.
    ApiKeyNotFound = ("api_key_not_found", 404, "No API key has this id."),
    /// No audit entry has this sequence number.
    AuditEntryNotFound = ("audit_entry_not_found", 404, "No audit entry has this sequence number."),
    /// No signed checkpoint of the audit log has this number (or none was signed yet).
    AuditCheckpointNotFound = ("audit_checkpoint_not_found", 404, "No signed checkpoint of the audit log has this number, or none has been signed yet."),
    /// The thing asked for does not exist.
    NotFound = ("not_found", 404, "The thing asked for does not exist."),
    /// No route has this path.
    RouteNotFound = ("route_not_found", 404, "No route has this path."),
    /// The route does not take this method.
    MethodNotAllowed = ("method_not_allowed", 405, "The route does not take this method."),
    /// The API key is revoked or expired: it cannot be rotated.
    ApiKeyInactive = ("api_key_inactive", 409, "The API key is revoked, expired or already rotated: it cannot be rotated (rotate its successor)."),
    /// A blind-index re-index is unfinished: run `pivault keys reindex` before rotating the index key again.
    KeyRotationInProgress = ("key_rotation_in_progress", 409, "A blind-index re-index is unfinished: run `pivault keys reindex` before rotating the index key again."),
    /// A subject with this account id already exists.
    AccountExists = ("account_exists", 409, "A subject with this account id already exists."),
    /// The account id was erased and is on the suppression list: it is not created again.
    AccountErased = ("account_erased", 409, "The account id was erased (PIPL Art. 47) and is on the suppression list; it is not created again."),
    /// The legal hold was already released.
    HoldReleased = ("hold_released", 409, "The legal hold was already released."),
    /// The security case was already released.
    CaseReleased = ("case_released", 409, "The security case was already released (policy §8.7)."),
    /// The security incident is closed: it takes no more steps.
    IncidentClosed = ("incident_closed", 409, "The security incident is closed: it takes no more steps."),
    /// The step is not allowed in the incident's state.
    IncidentStateInvalid = ("incident_state_invalid", 409, "The step is not allowed in the incident's state (e.g. notifying before the scope is fixed)."),
    /// Collection has stopped: the service is ceasing operation (policy §8.6).
    ServiceCeased = ("service_ceased", 409, "Collection has stopped: the service is ceasing operation (policy §8.6)."),
    /// A published policy version is recorded with other contents than the policy file now gives it.
    PolicyVersionRewritten = ("policy_version_rewritten", 409, "The database records this policy version with other contents (date, text or changes) than the policy file gives it: a published version is never rewritten; publish a new version (policy §X)."),
    /// No service cessation has been started.
    CessationNotStarted = ("cessation_not_started", 409, "No service cessation has been started (policy §8.6)."),
    /// A service cessation was already started.
    CessationAlreadyStarted = ("cessation_already_started", 409, "A service cessation was already started; it is not started twice (policy §8.6)."),
    /// Another instance holds the sweep lease.
    SweepBusy = ("sweep_busy", 409, "Another instance is running the retention sweep; try again when its run ends."),
    /// An export labelled anonymized would contain an equivalence class smaller than the policy's `k_min`.
    KAnonymityTooLow = ("k_anonymity_too_low", 409, "An export labelled anonymized would hold an equivalence class smaller than the policy's `k_min` (PIPL Art. 73(4)); suppress small classes or generalize."),
    /// The checkpoint named was signed before the audit entry was appended, so it does not cover it.
    EntryNotInCheckpoint = ("entry_not_in_checkpoint", 409, "The checkpoint named was signed before the audit entry was appended, so it does not cover it; name a later checkpoint, or none (the newest that covers the entry)."),
    /// The subject was already erased.
    AlreadyErased = ("already_erased", 409, "The subject was already erased."),
    /// The request's deadline was already extended.
    AlreadyExtended = ("already_extended", 409, "The request's deadline was already extended."),
    /// The request was never verified and has expired; file a new one.
    DsrExpired = ("dsr_expired", 409, "The request was never verified and has expired; file a new one."),
    /// No more verification codes may be sent for this request.
    CodeSendLimit = ("code_send_limit", 409, "No more verification codes may be sent for this request."),
    /// A consent event with this `event_ref` was already recorded differently.
    ConsentEventExists = ("consent_event_exists", 409, "A consent event with this `event_ref` was already recorded differently."),
    /// The request is past the point where it can be rejected.
    DsrCannotBeRejected = ("dsr_cannot_be_rejected", 409, "The request is past the point where it can be rejected."),
    /// The request is completed or rejected.
    DsrClosed = ("dsr_closed", 409, "The request is completed or rejected."),
    /// The request must be approved before it runs.
    DsrNotApproved = ("dsr_not_approved", 409, "The request must be approved before it runs."),
    /// The request is not waiting for a verification code.
    DsrNotAwaitingVerification = ("dsr_not_awaiting_verification", 409, "The request is not waiting for a verification code."),
    /// The request has no result until it completes.
    DsrNotCompleted = ("dsr_not_completed", 409, "The request has no result until it completes."),
    /// The requester's identity is not verified yet.
    DsrNotVerified = ("dsr_not_verified", 409, "The requester's identity is not verified yet."),
    /// The request was rejected.
    DsrRejected = ("dsr_rejected", 409, "The request was rejected."),
    /// The request cannot move from its state to the one asked for.
    DsrTransitionNotAllowed = ("dsr_transition_not_allowed", 409, "The request cannot move from its state to the one asked for."),
    /// The deadline can no longer be extended.
    ExtensionTooLate = ("extension_too_late", 409, "The deadline can no longer be extended."),
    /// The request's jurisdiction allows no extension.
    NoExtension = ("no_extension", 409, "The request's jurisdiction allows no extension."),
    /// This kind of request has no result to fetch.
    NoResult = ("no_result", 409, "This kind of request has no result to fetch."),
    /// The result was destroyed with the subject's key.
    ResultShredded = ("result_shredded", 409, "The result was destroyed with the subject's key."),
    /// The subject was erased (also a decision reason).
    SubjectErased = ("subject_erased", 409, "The subject was erased (also a decision reason)."),
    /// The body is larger than 1 MiB.
    BodyTooLarge = ("body_too_large", 413, "The body is larger than 1 MiB."),
    /// The request target (path and query) is longer than the server accepts (8 KiB).
    UriTooLong = ("uri_too_long", 414, "The request target (path and query) is longer than the server accepts (8 KiB)."),
    /// The body must be sent as `Content-Type: application/json`.
    UnsupportedMediaType = ("unsupported_media_type", 415, "The body must be sent as `Content-Type: application/json`."),
    /// The body does not match the schema (unknown or missing field, wrong type).
    InvalidBody = ("invalid_body", 422, "The body does not match the schema (unknown or missing field, wrong type)."),
    /// A query parameter is out of range, empty or contradicts another (never clamped); `field` names it.
    InvalidParameter = ("invalid_parameter", 422, "A query parameter is out of range, empty or contradicts another (never clamped); `field` names it."),
    /// `due_before` is not an RFC 3339 instant.
    DueBeforeMalformed = ("due_before_malformed", 422, "`due_before` is not an RFC 3339 instant."),
    /// The request state is not one of the known states.
    DsrStateUnknown = ("dsr_state_unknown", 422, "The request state is not one of the known states."),
    /// The request kind is not one of the known kinds.
    DsrKindUnknown = ("dsr_kind_unknown", 422, "The request kind is not one of the known kinds."),
    /// The result format is neither `json` nor `csv`.
    FormatUnsupported = ("format_unsupported", 422, "The result format is neither `json` nor `csv`, or `csv` for a result that is JSON only (an explanation, a signed receipt)."),
    /// A decision must name its subject.
    SubjectRequired = ("subject_required", 422, "A decision must name its subject."),
    /// The body's `subject_id` differs from the path.
    SubjectMismatch = ("subject_mismatch", 422, "The body's `subject_id` differs from the path."),
    /// A binary value is not valid base64.
    BinaryMalformed = ("binary_malformed", 422, "A binary value is not valid base64."),
    /// A number is not a valid decimal.
    NumberMalformed = ("number_malformed", 422, "A number is not a valid decimal."),
    /// A timestamp is not an RFC 3339 instant.
    TimestampMalformed = ("timestamp_malformed", 422, "A timestamp is not an RFC 3339 instant."),
    /// A date is not `YYYY-MM-DD`.
    DateMalformed = ("date_malformed", 422, "A date is not `YYYY-MM-DD`."),
    /// A legal hold names exactly one of `subject_id` and `category`.
    HoldTargetInvalid = ("hold_target_invalid", 422, "A legal hold names exactly one of `subject_id` and `category`, and it must exist."),
    /// A hold's reference is not 1–64 of `A-Z a-z 0-9 _ . : / -`.
    ReferenceMalformed = ("reference_malformed", 422, "A hold's reference is 1-64 of `A-Z a-z 0-9 _ . : / -` (a case or order number)."),
    /// A pseudonymization token this key did not make for this kind.
    TokenInvalid = ("token_invalid", 422, "Not a de-identification token this vault's key made for this kind."),
    /// A value is empty.
    ValueEmpty = ("value_empty", 422, "A value is empty."),
    /// A value is longer than allowed.
    ValueTooLong = ("value_too_long", 422, "A value is longer than allowed."),
    /// A value does not have the type its category declares.
    ValueWrongType = ("value_wrong_type", 422, "A value does not have the type its category declares."),
    /// The same field is given twice.
    DuplicateField = ("duplicate_field", 422, "The same field is given twice."),
    /// No fields were given.
    FieldsEmpty = ("fields_empty", 422, "No fields were given."),
    /// More than 256 fields were given in one request.
    TooManyFields = ("too_many_fields", 422, "More than 256 fields were given in one request."),
    /// A field name is malformed.
    NameMalformed = ("name_malformed", 422, "A field name is malformed."),
    /// A purpose id is not lower-case letters, digits and underscores starting with a letter.
    PurposeMalformed = ("purpose_malformed", 422, "A purpose id is not lower-case letters, digits and underscores starting with a letter."),
    /// A record name is malformed.
    RecordMalformed = ("record_malformed", 422, "A record name is malformed."),
    /// A free-text value (an exception reference or authorizing officer) is empty, too long or has control characters.
    TextMalformed = ("text_malformed", 422, "A free-text value (an exception reference or authorizing officer) is empty, too long or has control characters; or a PI text value has a control, invisible format or bidirectional formatting character, or an escape that encodes no character."),
    /// An `event_ref` is malformed.
    EventRefMalformed = ("event_ref_malformed", 422, "An `event_ref` is malformed."),
    /// An API key expiry is malformed, not in the future, or more than 10 years away (`expires_in`: a number and `s`, `m`, `h` or `d`; `expires_at`: RFC 3339).
    ExpiryInvalid = ("expiry_invalid", 422, "An API key expiry is malformed, not in the future, or more than 10 years away (`expires_in`: a number and `s`, `m`, `h` or `d`; `expires_at`: RFC 3339)."),
    /// A principal name is malformed.
    PrincipalMalformed = ("principal_malformed", 422, "A principal name is malformed."),
    /// A recipient id is malformed.
    RecipientMalformed = ("recipient_malformed", 422, "A recipient id is malformed."),
    /// A region is malformed.
    RegionMalformed = ("region_malformed", 422, "A region is malformed."),
    /// A consent event's time is in the future.
    ConsentTimeInFuture = ("consent_time_in_future", 422, "A consent event's time is in the future."),
    /// A consent event's time is before 1990-01-01 or before the subject's birth date.
    ConsentTimeImplausible = ("consent_time_implausible", 422, "A consent event's time is before 1990-01-01 or before the subject's birth date."),
    /// A guardian's consent was given for a subject who was 14 or older at the time (PIPL Art. 31).
    GuardianForAdult = ("guardian_for_adult", 422, "A guardian's consent was given for a subject who was 14 or older at the time (PIPL Art. 31)."),
    /// An incident's scope (categories, subjects, systems) is empty, unknown or malformed.
    IncidentScopeInvalid = ("incident_scope_invalid", 422, "An incident's scope (categories of PI, subjects or systems) is empty, names an unknown category, or is malformed."),
    /// An incident's times are out of order or in the future.
    IncidentTimeInvalid = ("incident_time_invalid", 422, "An incident's times are out of order (occurred after discovered, reported before discovered) or in the future."),
    /// The severity is not one of the four grades.
    SeverityUnknown = ("severity_unknown", 422, "The severity is not `especially_major`, `major`, `relatively_major` or `general` (national cybersecurity incident grading)."),
    /// A misuse report is malformed or names nothing to lock.
    MisuseReportInvalid = ("misuse_report_invalid", 422, "A misuse report (policy §8.7) is malformed or names no subject to lock."),
    /// A verification code is not 6 digits.
    CodeMalformed = ("code_malformed", 422, "A verification code is not 6 digits."),
    /// The verification code is wrong.
    CodeMismatch = ("code_mismatch", 422, "The verification code is wrong."),
    /// The verification code has expired; ask for a new one.
    CodeExpired = ("code_expired", 422, "The verification code has expired; ask for a new one."),
    /// Too many wrong attempts at this verification code.
    CodeExhausted = ("code_exhausted", 422, "Too many wrong attempts at this verification code."),
    /// A correction is malformed.
    CorrectionsMalformed = ("corrections_malformed", 422, "A correction is malformed."),
    /// Only a correction request carries corrections.
    CorrectionsNotApplicable = ("corrections_not_applicable", 422, "Only a correction request carries corrections."),
    /// A correction request must carry corrections.
    CorrectionsRequired = ("corrections_required", 422, "A correction request must carry corrections."),
    /// Only a deletion request carries a ground.
    GroundNotApplicable = ("ground_not_applicable", 422, "Only a deletion request carries a ground."),
    /// Only a withdrawal request carries purposes.
    PurposesNotApplicable = ("purposes_not_applicable", 422, "Only a withdrawal request carries purposes."),
    /// The purpose does not rest on consent, so consent cannot be recorded or withdrawn for it.
    PurposeNotConsentBased = ("purpose_not_consent_based", 422, "The purpose does not rest on consent, so consent cannot be recorded or withdrawn for it."),
    /// A request names an email or a mobile.
    IdentityRequired = ("identity_required", 422, "A request names an email or a mobile."),
    /// A privacy-center question or complaint is empty or over 2,000 characters.
    InquiryTextInvalid = ("inquiry_text_invalid", 422, "A question or complaint filed in the privacy center is empty, longer than 2,000 characters or holds control characters (policy §XI)."),
    /// A visitor id is not 32 hex digits.
    VisitorMalformed = ("visitor_malformed", 422, "A privacy-center visitor id is not 32 hex digits."),
    /// A cookie category is not one of the banner's four.
    CookieCategoryUnknown = ("cookie_category_unknown", 422, "A cookie category is not necessary, preferences, analytics or third_party (policy §III)."),
    /// The action is not an outbound one (share, transfer, disclose, cross-border).
    NotOutbound = ("not_outbound", 422, "The action is not an outbound one (share, transfer, disclose, cross-border)."),
    /// The recipient is not declared in the policy (also a decision reason).
    UndeclaredRecipient = ("undeclared_recipient", 422, "The recipient is not declared in the policy (also a decision reason)."),
    /// The policy lacks a category this operation needs.
    PolicyMissingCategory = ("policy_missing_category", 422, "The policy lacks a category this operation needs."),
    /// The action is not a known one.
    UnknownAction = ("unknown_action", 422, "The action is not a known one."),
    /// The category is not in the policy (also a decision reason).
    UnknownCategory = ("unknown_category", 422, "The category is not in the policy (also a decision reason)."),
    /// The exception kind is not one of §5.4.
    UnknownException = ("unknown_exception", 422, "The exception kind is not one of §5.4."),
    /// `given_by` is neither `self` nor `guardian`.
    UnknownGivenBy = ("unknown_given_by", 422, "`given_by` is neither `self` nor `guardian`."),
    /// The erasure ground is not a known one.
    UnknownGround = ("unknown_ground", 422, "The erasure ground is not a known one."),
    /// The identifier kind is not `account_id`, `mobile`, `email` or `id_card`.
    UnknownIdentifierKind = ("unknown_identifier_kind", 422, "The identifier kind is not `account_id`, `mobile`, `email` or `id_card`."),
    /// The jurisdiction is not in the policy.
    UnknownJurisdiction = ("unknown_jurisdiction", 422, "The jurisdiction is not in the policy."),
    /// The consent collection method is not a known one.
    UnknownMethod = ("unknown_method", 422, "The consent collection method is not a known one."),
    /// The first policy version of a diff is not older than the second.
    PolicyVersionOrder = ("policy_version_order", 422, "The first policy version of a diff is not older than the second."),
    /// A consistency proof's `from` checkpoint is later than its `to`.
    CheckpointOrder = ("checkpoint_order", 422, "A consistency proof's `from` checkpoint is later than its `to`."),
    /// The purpose is not in the policy (also a decision reason).
    UnknownPurpose = ("unknown_purpose", 422, "The purpose is not in the policy (also a decision reason)."),
    /// The rejection reason is not one of PIPL Art. 50.
    UnknownReason = ("unknown_reason", 422, "The rejection reason is not one of PIPL Art. 50."),
    /// The role is not a known one.
    UnknownRole = ("unknown_role", 422, "The role is not a known one."),
    /// An API key would hold no role, so it could call nothing.
    RolesEmpty = ("roles_empty", 422, "An API key needs at least one role (`app`, `admin`, `support`, `dpo` or `security`); one without could call nothing."),
    /// The subject kind is neither `account` nor `business_contact`.
    UnknownSubjectKind = ("unknown_subject_kind", 422, "The subject kind is neither `account` nor `business_contact`."),
    /// The cessation date is in the past or too far ahead.
    CessationTimeInvalid = ("cessation_time_invalid", 422, "`effective_at` is in the past or more than ten years ahead (policy §8.6)."),
    /// Free text of an incident holds what looks like personal information.
    TextHoldsPi = ("text_holds_pi", 422, "Free text that is shown to many people (an incident's facts, published in notices and announcements), or the name of a thing that is stored in clear and audited (a legal hold's reference, an API key's principal, a record or field name, a consent's `event_ref`), holds what looks like a mobile number, an email address or an ID card number."),
    /// The language is neither `zh-CN` nor `en`.
    LangUnknown = ("lang_unknown", 422, "The language is neither `zh-CN` nor `en` (the languages notices are written in)."),
    /// The account id is malformed.
    AccountIdMalformed = ("account_id_malformed", 422, "The account id is malformed."),
    /// The email address is malformed.
    EmailMalformed = ("email_malformed", 422, "The email address is malformed."),
    /// The email address is too long.
    EmailTooLong = ("email_too_long", 422, "The email address is too long."),
    /// The ID card number has characters other than digits and a final X.
    IdCardBadCharacters = ("id_card_bad_characters", 422, "The ID card number has characters other than digits and a final X."),
    /// The ID card number's birth date is not a valid date.
    IdCardBirthDate = ("id_card_birth_date", 422, "The ID card number's birth date is not a valid date."),
    /// The ID card number's check digit is wrong (GB 11643).
    IdCardCheckDigit = ("id_card_check_digit", 422, "The ID card number's check digit is wrong (GB 11643)."),
    /// The ID card number is not 18 characters long.
    IdCardLength = ("id_card_length", 422, "The ID card number is not 18 characters long."),
    /// The mobile number has characters other than digits and separators.
    MobileBadCharacters = ("mobile_bad_characters", 422, "The mobile number has characters other than digits and separators."),
    /// The mobile number does not start like a mainland mobile number.
    MobileBadPrefix = ("mobile_bad_prefix", 422, "The mobile number does not start like a mainland mobile number."),
    /// The mobile number is too long.
    MobileTooLong = ("mobile_too_long", 422, "The mobile number is too long."),
    /// The mobile number is too short.
    MobileTooShort = ("mobile_too_short", 422, "The mobile number is too short."),
    /// An import file is not valid CSV.
    CsvMalformed = ("csv_malformed", 422, "An import file is not valid CSV."),
    /// An import file could not be read.
    IoError = ("io_error", 422, "An import file could not be read."),
    /// The import path is not a directory.
    NotADirectory = ("not_a_directory", 422, "The import path is not a directory."),
    /// A misuse report locked this subject's PI; only the security role may read it until the lock is released.
    SubjectLocked = ("subject_locked", 423, "A misuse report locked this subject's PI (policy §8.7); only the `security` role may read it until the lock is released."),
    /// Too many requests from this client address or naming this identity; retry after `Retry-After` seconds.
    DsrRateLimited = ("dsr_rate_limited", 429, "Too many requests from this client address or naming this identity; retry after `Retry-After` seconds."),
    /// The request headers are larger than the server accepts (answered before routing).
    HeadersTooLarge = ("headers_too_large", 431, "The request headers are larger than the server accepts (answered before routing)."),
    /// An internal error; the cause is logged under the request id.
    Internal = ("internal", 500, "An internal error; the cause is logged under the request id."),
    /// An injected fault (tests and drills) stopped the operation.
    FaultInjected = ("fault_injected", 500, "An injected fault (tests and drills) stopped the operation."),
    /// The system random number generator failed.
    RngUnavailable = ("rng_unavailable", 500, "The system random number generator failed."),
    /// A subject that is not erased has no data key.
    SubjectKeyMissing = ("subject_key_missing", 500, "A subject that is not erased has no data key."),
    /// A stored request names a step this version does not know.
    DsrStepUnknown = ("dsr_step_unknown", 500, "A stored request names a step this version does not know."),
    /// A stored correction cannot be decoded.
    CorrectionCorrupt = ("correction_corrupt", 500, "A stored correction cannot be decoded."),
    /// A correction request has no stored corrections.
    CorrectionMissing = ("correction_missing", 500, "A correction request has no stored corrections."),
    /// A stored request has an unknown kind.
    DsrKindCorrupt = ("dsr_kind_corrupt", 500, "A stored request has an unknown kind."),
    /// A stored request has an unknown state.
    DsrStateCorrupt = ("dsr_state_corrupt", 500, "A stored request has an unknown state."),
    /// A stored request has an unreadable time.
    DsrTimeCorrupt = ("dsr_time_corrupt", 500, "A stored request has an unreadable time."),
    /// An approved request has no subject.
    DsrWithoutSubject = ("dsr_without_subject", 500, "An approved request has no subject."),
    /// Data of an erased subject is still stored; no receipt is issued.
    ErasureIncomplete = ("erasure_incomplete", 500, "Data of an erased subject is still stored; no receipt is issued."),
    /// A stored result package cannot be decoded.
    PackageCorrupt = ("package_corrupt", 500, "A stored result package cannot be decoded."),
    /// A result package could not be encoded.
    PackageEncoding = ("package_encoding", 500, "A result package could not be encoded."),
    /// A deletion receipt could not be encoded.
    ReceiptEncoding = ("receipt_encoding", 500, "A deletion receipt could not be encoded."),
    /// A decrypted field value cannot be decoded.
    PlaintextMalformed = ("plaintext_malformed", 500, "A decrypted field value cannot be decoded."),
    /// A sealed field failed authentication (tampered or moved ciphertext). Reported per field in
    /// `failed` of a 200 answer, never with its value; the other fields are still released.
    FieldIntegrityFailed = ("field_integrity_failed", 500, "A sealed field failed authentication (tampered or moved ciphertext); it is listed in `failed`, never with its value, while the fields that open are still released."),
    /// The audit log's checkpoint key cannot be named as a note verifier key.
    AuditKeyUnusable = ("audit_key_unusable", 500, "The audit log's checkpoint key cannot be named as a note verifier key."),
    /// A checkpoint could not be signed.
    AuditCheckpointUnsignable = ("audit_checkpoint_unsignable", 500, "A checkpoint of the audit log could not be signed."),
    /// A kept checkpoint does not verify under the vault's checkpoint key.
    AuditCheckpointInvalid = ("audit_checkpoint_invalid", 500, "A kept checkpoint of the audit log does not verify under the vault's checkpoint key (run `pivault audit verify`)."),
    /// A shard of a later checkpoint is smaller than in an earlier one.
    AuditCheckpointShrunk = ("audit_checkpoint_shrunk", 500, "A shard of a later checkpoint of the audit log is smaller than in an earlier one: the log was truncated (run `pivault audit verify`)."),
    /// A stored Merkle tree node needed for a proof is missing.
    AuditTreeIncomplete = ("audit_tree_incomplete", 500, "A stored Merkle tree node of the audit log needed for a proof is missing (run `pivault audit verify`)."),
    /// A shard's stored Merkle frontier does not decode or does not match its size.
    AuditTreeMismatch = ("audit_tree_mismatch", 500, "An audit shard's stored Merkle frontier does not decode or does not match its size (run `pivault audit verify`)."),
    /// The master key is not this database's.
    MasterKeyMismatch = ("master_key_mismatch", 500, "The master key is not this database's."),
    /// The master key file is missing.
    MasterKeyMissing = ("master_key_missing", 500, "The master key file is missing."),
    /// The master key file cannot be read.
    MasterKeyUnreadable = ("master_key_unreadable", 500, "The master key file cannot be read."),
    /// The master key cannot be checked against the database.
    MasterKeyUnverifiable = ("master_key_unverifiable", 500, "The master key cannot be checked against the database."),
    /// Not ready: the database lacks migrations this build has (`GET /readyz`).
    MigrationsPending = ("migrations_pending", 503, "Not ready: the database lacks migrations this build has (`GET /readyz`)."),
    /// Not ready: the loaded master key is not the one the database records (`GET /readyz`).
    MasterKeyNotLoaded = ("master_key_not_loaded", 503, "Not ready: the loaded master key is not the one the database records (`GET /readyz`)."),
    /// The database is busy (lock or statement timeout); nothing was saved, retry after `Retry-After`.
    StorageBusy = ("storage_busy", 503, "The database is busy (lock or statement timeout); nothing was saved, retry after `Retry-After`."),
    /// The storage is full; nothing was saved, retry later.
    StorageFull = ("storage_full", 503, "The storage is full; nothing was saved, retry later."),
    /// The storage is unavailable; nothing was saved, retry later.
    StorageUnavailable = ("storage_unavailable", 503, "The storage is unavailable; nothing was saved, retry later."),
}

impl Code {
    /// The code of a stable string, `None` for a string that is not a code.
    #[must_use]
    pub fn parse(s: &str) -> Option<Code> {
        Self::ALL.iter().copied().find(|c| c.as_str() == s)
    }

    /// Whether the code marks an internal error (status 500): a broken invariant.
    #[must_use]
    pub const fn is_internal(self) -> bool {
        self.status() == 500
    }
}

impl std::fmt::Display for Code {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl serde::Serialize for Code {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// The error table of the README: `| code | HTTP status | meaning |`, one row per code in
/// [`Code::ALL`] order, each line ending in `\n`.
#[must_use]
pub fn markdown_table() -> String {
    let mut out = String::from("| code | HTTP status | meaning |\n|---|---|---|\n");
    for c in Code::ALL {
        out.push_str(&format!(
            "| `{}` | {} | {} |\n",
            c.as_str(),
            c.status(),
            c.description().replace('|', "\\|")
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_are_unique_snake_case_and_parse_back() {
        let mut seen = std::collections::HashSet::new();
        for c in Code::ALL {
            let s = c.as_str();
            assert!(seen.insert(s), "{s} twice");
            assert!(
                s.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_'),
                "{s} is not snake_case"
            );
            assert_eq!(Code::parse(s), Some(*c));
            assert!(c.description().ends_with('.'), "{s}: one sentence");
        }
        assert_eq!(Code::parse("no_such_code"), None);
    }

    #[test]
    fn broken_invariants_are_internal() {
        for c in Code::ALL {
            let s = c.as_str();
            if s.ends_with("_corrupt")
                || matches!(
                    s,
                    "internal"
                        | "rng_unavailable"
                        | "subject_key_missing"
                        | "dsr_step_unknown"
                        | "fault_injected"
                )
            {
                assert_eq!(c.status(), 500, "{s}");
            }
            assert!(
                matches!(
                    c.status(),
                    400 | 401
                        | 403
                        | 404
                        | 405
                        | 409
                        | 413
                        | 414
                        | 415
                        | 422
                        | 423
                        | 429
                        | 431
                        | 500
                        | 503
                ),
                "{s}"
            );
        }
    }

    #[test]
    fn all_is_grouped_by_status() {
        assert!(Code::ALL.windows(2).all(|w| w[0].status() <= w[1].status()));
    }

    #[test]
    fn table_has_a_row_per_code() {
        let t = markdown_table();
        assert_eq!(t.lines().count(), Code::ALL.len() + 2);
        assert!(t.contains("| `storage_busy` | 503 |"));
    }
}
