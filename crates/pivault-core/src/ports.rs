//! Outward interfaces: how the core reaches people and recipients. Every message goes through
//! the outbox (`outbox.rs`), which calls a [`CodeSender`] to deliver it.

use serde::Serialize;
use std::future::Future;
use std::pin::Pin;

/// A channel that reaches a person (policy §8.3: "email, letter, telephone, push").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Channel {
    /// Email over SMTP.
    Email,
    /// SMS through the configured webhook.
    Sms,
    /// App push through the configured webhook (to the device id on record).
    Push,
}

impl Channel {
    /// The channel a stored request names (`sms`, `push`, else email).
    pub(crate) fn of(stored: &str) -> Self {
        match stored {
            "sms" => Self::Sms,
            "push" => Self::Push,
            _ => Self::Email,
        }
    }

    /// `email`, `sms` or `push`.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Email => "email",
            Self::Sms => "sms",
            Self::Push => "push",
        }
    }
}

/// One message to one person, as the outbox hands it to the transport. `Debug` shows only
/// the id and channel: `to` and `body` are PI (and a body may hold a one-time code).
pub struct Outgoing<'a> {
    /// The outbox id: the idempotency key (`Message-ID`, `Idempotency-Key`), so a receiver
    /// can drop a copy re-sent after a crash.
    pub id: &'a str,
    /// The channel.
    pub channel: Channel,
    /// Address: email, E.164 mobile or push device id.
    pub to: &'a str,
    /// Subject line (email; push title).
    pub subject: &'a str,
    /// Plain-text body.
    pub body: &'a str,
}

impl std::fmt::Debug for Outgoing<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Outgoing")
            .field("id", &self.id)
            .field("channel", &self.channel)
            .finish_non_exhaustive()
    }
}

/// A signed JSON body for a recipient's webhook (PIPL Art. 47 erasure notices).
#[derive(Debug, Clone, Copy)]
pub struct SignedPost<'a> {
    /// The outbox id (`Idempotency-Key`).
    pub id: &'a str,
    /// The JSON body, exactly as signed.
    pub body: &'a [u8],
    /// Unix seconds, part of the signed input.
    pub timestamp: i64,
    /// The signing key's id.
    pub key_id: &'a str,
    /// Ed25519 signature (RFC 8032), standard base64.
    pub signature_b64: &'a str,
}

/// Why a delivery failed: a stable code (`smtp_unavailable`, `webhook_failed`, `no_channel`,
/// …), whether retrying the same channel can help, and the SMTP reply code or HTTP status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SendFailure {
    /// Stable code; never an address or body.
    pub code: &'static str,
    /// `true` when the same channel will not work on a retry (the next channel is tried).
    pub permanent: bool,
    /// SMTP reply code or HTTP status.
    pub status: Option<u16>,
}

/// The delivery outcome code of a channel (or recipient webhook) not configured here. An
/// outbox outcome recorded on the attempt, not an API error code.
pub const NO_CHANNEL: &str = "no_channel";

impl SendFailure {
    /// The channel is not configured here.
    #[must_use]
    pub fn no_channel() -> Self {
        Self {
            code: NO_CHANNEL,
            permanent: true,
            status: None,
        }
    }
}

/// A boxed future, for [`CodeSender`].
pub type SendFuture<'a> = Pin<Box<dyn Future<Output = Result<(), SendFailure>> + Send + 'a>>;

/// Delivers messages (policy §7.2 one-time codes, §8.3 notices, PIPL Art. 47 notices to
/// recipients). Implemented over `pivault-notify` by the server; tests use a real SMTP sink
/// and a real webhook receiver.
pub trait CodeSender: Send + Sync {
    /// Sends `m` on its channel.
    ///
    /// # Errors
    /// A [`SendFailure`]; never the address or body.
    fn send<'a>(&'a self, m: Outgoing<'a>) -> SendFuture<'a>;

    /// The channels configured here (a channel not listed is skipped).
    fn channels(&self) -> Vec<Channel>;

    /// Whether `recipient` (a policy recipient id) has a webhook for notices.
    fn has_webhook(&self, recipient: &str) -> bool;

    /// Posts a signed notice to `recipient`'s webhook.
    ///
    /// # Errors
    /// A [`SendFailure`] (`no_channel` when the recipient has no webhook).
    fn post_webhook<'a>(&'a self, recipient: &'a str, post: SignedPost<'a>) -> SendFuture<'a>;
}
