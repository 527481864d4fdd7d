//! Delivery of messages to PI subjects: one-time codes for DSR identity verification
//! (policy §7.2) and notices, by e-mail over SMTP (RFC 5321) or by SMS through an
//! operator-configured HTTPS webhook.
//!
//! # Design
//!
//! Enum dispatch, no trait objects: [`Notifiers`] holds an optional [`SmtpNotifier`] and an
//! optional [`SmsWebhook`] and routes each [`Message`] by its [`Recipient`] kind. There are
//! exactly two channels and both are known at compile time, so a `dyn Notifier` with
//! boxed futures would add indirection without buying anything.
//!
//! # Invariants
//!
//! * No error, `Debug` output or log line contains a recipient address, a message body
//!   (which may hold a one-time code) or a credential. Errors carry only the channel, a
//!   fixed reason and, where there is one, the numeric SMTP reply code or HTTP status.
//!   Logs (`tracing`) name only the channel and the outcome.
//! * SMS webhooks are `https://` except on loopback hosts (tests); redirects are not
//!   followed, so a webhook cannot be bounced to plain HTTP.
//! * Each [`SmtpNotifier`] keeps one pooled `lettre` transport for its lifetime.
//!
//! # Test support
//!
//! The `testing` cargo feature adds [`testing::SmtpSink`] (a real, minimal SMTP server on
//! `127.0.0.1:0`) and [`testing::WebhookSink`] (an HTTP receiver recording JSON bodies).

mod error;
mod message;
mod sms;
mod smtp;

#[cfg(feature = "testing")]
pub mod testing;

pub use error::{Channel, NotifyError};
pub use message::{Message, Notifiers, Recipient};
pub use sms::{SmsConfig, SmsWebhook};
pub use smtp::{SmtpConfig, SmtpNotifier, Tls, DEFAULT_SMTP_TIMEOUT};
