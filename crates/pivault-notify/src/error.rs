//! The one error type of this crate.

use std::fmt;

/// A delivery channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Channel {
    /// E-mail over SMTP (RFC 5321).
    Email,
    /// SMS through the configured HTTPS webhook.
    Sms,
    /// App push notification through the configured HTTPS push webhook.
    Push,
}

impl Channel {
    /// Stable lower-case name: `"email"`, `"sms"` or `"push"` (used in logs and error
    /// text).
    pub fn as_str(self) -> &'static str {
        match self {
            Channel::Email => "email",
            Channel::Sms => "sms",
            Channel::Push => "push",
        }
    }
}

impl fmt::Display for Channel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Everything that can go wrong in `pivault-notify`.
///
/// No variant carries a recipient address, a message body, a one-time code, a password or
/// a token, nor the text of a server reply (which often echoes the address). Only fixed
/// reasons, the channel and numeric reply codes / HTTP statuses. Match on
/// [`NotifyError::code`] for a stable identifier.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NotifyError {
    /// The SMTP server could not be reached or did not answer in time: connection refused,
    /// DNS failure, TLS handshake failure, timeout, or a dropped connection.
    #[error("SMTP server unavailable ({reason})")]
    SmtpUnavailable {
        /// Fixed description: `"connection"`, `"timeout"`, `"tls"` or `"protocol"`.
        reason: &'static str,
    },
    /// The SMTP server answered with a negative reply (RFC 5321 §4.2: 4yz transient or
    /// 5yz permanent) to one of our commands.
    #[error("SMTP server rejected the message (reply code {})", fmt_code(*.code))]
    SmtpRejected {
        /// The three-digit reply code, if the server's reply could be parsed.
        code: Option<u16>,
    },
    /// A webhook (SMS, push or signed recipient webhook) failed: no connection, timeout,
    /// or a non-2xx HTTP status.
    #[error("webhook failed ({reason}{})", fmt_status(*.status))]
    WebhookFailed {
        /// Fixed description: `"status"`, `"timeout"`, `"connection"` or `"request"`.
        reason: &'static str,
        /// The HTTP status if the webhook answered.
        status: Option<u16>,
    },
    /// No notifier is configured for the recipient's channel.
    #[error("no {0} channel configured")]
    NoChannel(Channel),
    /// A notifier configuration is invalid (bad URL, scheme, port, sender address, or an
    /// insecure combination). The message never repeats a password or token.
    #[error("bad notifier configuration: {0}")]
    BadConfig(String),
    /// The recipient is not a valid address for its channel (e.g. an e-mail address that
    /// does not parse). The address itself is not repeated.
    #[error("recipient is not a valid {0} address")]
    BadRecipient(Channel),
}

fn fmt_code(code: Option<u16>) -> String {
    code.map_or_else(|| "unknown".to_owned(), |c| c.to_string())
}

fn fmt_status(status: Option<u16>) -> String {
    status.map_or_else(String::new, |s| format!(", HTTP {s}"))
}

impl NotifyError {
    /// Stable machine-readable code: `smtp_unavailable`, `smtp_rejected`,
    /// `webhook_failed`, `no_channel`, `bad_config` or `bad_recipient`.
    pub fn code(&self) -> &'static str {
        match self {
            NotifyError::SmtpUnavailable { .. } => "smtp_unavailable",
            NotifyError::SmtpRejected { .. } => "smtp_rejected",
            NotifyError::WebhookFailed { .. } => "webhook_failed",
            NotifyError::NoChannel(_) => "no_channel",
            NotifyError::BadConfig(_) => "bad_config",
            NotifyError::BadRecipient(_) => "bad_recipient",
        }
    }

    /// The numeric status the other side answered with, if any: the SMTP reply code
    /// (RFC 5321 §4.2, three digits) of [`NotifyError::SmtpRejected`] or the HTTP status
    /// (RFC 9110 §15) of [`NotifyError::WebhookFailed`]. `None` for every other variant and
    /// when no reply was received or it could not be parsed.
    pub fn status(&self) -> Option<u16> {
        match self {
            NotifyError::SmtpRejected { code } => *code,
            NotifyError::WebhookFailed { status, .. } => *status,
            NotifyError::SmtpUnavailable { .. }
            | NotifyError::NoChannel(_)
            | NotifyError::BadConfig(_)
            | NotifyError::BadRecipient(_) => None,
        }
    }

    /// Whether sending the same message on the same channel again can never succeed, so
    /// a retry queue should stop (and, if it can, fall back to another channel):
    ///
    /// * [`NotifyError::NoChannel`], [`NotifyError::BadConfig`] (including a refused
    ///   message id) and [`NotifyError::BadRecipient`]: nothing changes between attempts;
    /// * [`NotifyError::SmtpRejected`] with a 5yz reply code — RFC 5321 §4.2.1: "permanent
    ///   negative completion", the client should not repeat the same request (550 mailbox
    ///   unavailable, 553 mailbox name not allowed, 554 transaction failed, …);
    /// * [`NotifyError::WebhookFailed`] with an HTTP status that is neither 2xx nor 5xx,
    ///   nor 408 (Request Timeout) nor 429 (Too Many Requests): RFC 9110 §15.5 makes 4xx
    ///   client errors the request must be changed to fix; 408 and 429 (RFC 6585 §4) invite a
    ///   retry. 1xx/3xx count as permanent as well: redirects are deliberately not followed,
    ///   so the same URL keeps answering the same way until the operator changes it.
    ///
    /// False for timeouts and connection failures (SMTP or HTTP), 4yz SMTP replies
    /// (RFC 5321 §4.2.1 transient), SMTP replies whose code could not be parsed, and
    /// HTTP 5xx, 408 and 429. Exactly the negation of [`NotifyError::is_transient`].
    pub fn is_permanent(&self) -> bool {
        match self {
            NotifyError::NoChannel(_)
            | NotifyError::BadConfig(_)
            | NotifyError::BadRecipient(_) => true,
            NotifyError::SmtpUnavailable { .. } => false,
            NotifyError::SmtpRejected { code } => code.is_some_and(|c| (500..600).contains(&c)),
            NotifyError::WebhookFailed { status, .. } => {
                status.is_some_and(|s| !(500..600).contains(&s) && s != 408 && s != 429)
            }
        }
    }

    /// Whether trying again later may succeed: `!`[`is_permanent`](NotifyError::is_permanent)
    /// (unavailable servers, 4yz SMTP replies, webhook timeouts, connection failures and
    /// 5xx/408/429 statuses).
    pub fn is_transient(&self) -> bool {
        !self.is_permanent()
    }
}
