//! What the outbox carries: the message kinds and a message to enqueue. Kept apart from the
//! outbox's delivery (`outbox.rs`) so the rooms that cause messages (incidents, cessation,
//! misuse, DSR, provisions) and the outbox, which renders their contents, do not import each
//! other in a circle.

use pivault_domain::notice::Lang;
use serde_json::Value;

/// Message kinds (the outbox's `kind`).
pub mod kind {
    /// A DSR one-time code (policy §7.2).
    pub const DSR_CODE: &str = "dsr_code";
    /// A notice about a DSR (an extended deadline, GDPR Art. 12(3)).
    pub const DSR_NOTICE: &str = "dsr_notice";
    /// A security-incident notice (policy §8.3, PIPL Art. 57).
    pub const INCIDENT: &str = "incident_notice";
    /// An erasure notice to a recipient (PIPL Art. 47, GB/T 35273-2020 §8.3).
    pub const ERASURE: &str = "erasure_notice";
    /// A cross-border information notice (PIPL Art. 39).
    pub const CROSS_BORDER: &str = "cross_border_notice";
    /// A service-cessation notice (policy §8.6).
    pub const CESSATION: &str = "cessation_notice";
    /// A misuse report's acknowledgement (policy §8.7).
    pub const MISUSE: &str = "misuse_notice";
    /// A policy-change notice (policy §9).
    pub const POLICY_CHANGE: &str = "policy_change_notice";
}

/// A message to enqueue.
#[derive(Debug, Clone)]
pub(crate) struct Enqueue {
    pub kind: &'static str,
    pub subject_id: Option<String>,
    /// `subject` or `recipient:<id>`.
    pub target: String,
    pub cause: String,
    pub lang: String,
    /// Parameters sealed under the outbox key (only what the text needs).
    pub params: Option<Value>,
}

impl Enqueue {
    /// A message to the subject themselves.
    pub fn to_subject(kind: &'static str, subject: &str, cause: &str, lang: Option<&str>) -> Self {
        Self {
            kind,
            subject_id: Some(subject.to_string()),
            target: "subject".into(),
            cause: cause.to_string(),
            lang: Lang::parse(lang.unwrap_or("zh-CN"))
                .unwrap_or_default()
                .as_str()
                .to_string(),
            params: None,
        }
    }
}
