//! Outward interfaces: how the core reaches people (one-time codes and notices).

use serde::Serialize;
use std::future::Future;
use std::pin::Pin;

/// How a one-time code reaches the requester.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Channel {
    /// Email over SMTP.
    Email,
    /// SMS through the configured webhook.
    Sms,
}

impl Channel {
    /// The channel a stored request names (`sms`, else email).
    pub(crate) fn of(stored: &str) -> Self {
        if stored == "sms" {
            Self::Sms
        } else {
            Self::Email
        }
    }

    /// `email` or `sms`.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Email => "email",
            Self::Sms => "sms",
        }
    }
}

/// A boxed future, for [`CodeSender`].
pub type SendFuture<'a> = Pin<Box<dyn Future<Output = Result<(), &'static str>> + Send + 'a>>;

/// Delivers a message to a requester (policy §7.2). Implemented over `pivault-notify` by the
/// server; tests use a real SMTP sink.
pub trait CodeSender: Send + Sync {
    /// Sends `body` to `to` over `channel`.
    ///
    /// # Errors
    /// A stable error code (`smtp_unavailable`, `no_channel`, …); never the address or body.
    fn send<'a>(
        &'a self,
        channel: Channel,
        to: &'a str,
        subject: &'a str,
        body: &'a str,
    ) -> SendFuture<'a>;
}
