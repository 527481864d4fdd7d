//! Delivery of messages to PI subjects: one-time codes for DSR identity verification
//! (policy §7.2) and notices, by e-mail over SMTP (RFC 5321), by SMS or app push through
//! operator-configured HTTPS webhooks, and on paper ([`letter_batch_html`], policy §8.3).
//! Notices to other PI handlers (erasure, PIPL Art. 47) go by [`SignedWebhook`].
//!
//! # Design
//!
//! Enum dispatch, no trait objects: [`Notifiers`] holds an optional [`SmtpNotifier`],
//! [`SmsWebhook`] and [`PushWebhook`] and routes each [`Message`] by its [`Recipient`]
//! kind. The channels are few and known at compile time, so a `dyn Notifier` with boxed
//! futures would add indirection without buying anything. The three webhook kinds share
//! one private HTTP client type (URL policy, error mapping, logging).
//!
//! Retries belong to the caller (a durable outbox): [`Message::id`] and
//! [`SignedHeaders::idempotency_key`] let receivers drop duplicates, and
//! [`NotifyError::is_permanent`] says when to stop retrying.
//!
//! # Invariants
//!
//! * No error, `Debug` output or log line contains a recipient address, a message body
//!   (which may hold a one-time code) or a credential. Errors carry only the channel, a
//!   fixed reason and, where there is one, the numeric SMTP reply code or HTTP status.
//!   Logs (`tracing`) name only the channel and the outcome.
//! * Webhooks are `https://` except on loopback hosts (tests); redirects are not
//!   followed, so a webhook cannot be bounced to plain HTTP.
//! * This crate does no cryptography: webhook signatures are computed by the caller.
//! * Each [`SmtpNotifier`] keeps one pooled `lettre` transport for its lifetime.
//!
//! # Test support
//!
//! The `testing` cargo feature adds [`testing::SmtpSink`] (a real, minimal SMTP server on
//! `127.0.0.1:0`) and [`testing::WebhookSink`] (an HTTP receiver recording bodies and
//! headers, optionally failing the first requests).

mod error;
mod letter;
mod message;
mod push;
mod signed;
mod sms;
mod smtp;
mod webhook;

#[cfg(feature = "testing")]
pub mod testing;

pub use error::{Channel, NotifyError};
pub use letter::{letter_batch_html, Letter};
pub use message::{Message, Notifiers, Recipient, MAX_MESSAGE_ID_LEN};
pub use push::{PushConfig, PushWebhook};
pub use signed::{SignedHeaders, SignedWebhook, HEADER_KEY_ID, HEADER_SIGNATURE, HEADER_TIMESTAMP};
pub use sms::{SmsConfig, SmsWebhook};
pub use smtp::{SmtpConfig, SmtpNotifier, Tls, DEFAULT_SMTP_TIMEOUT};
