//! The one error type of this crate.

use std::fmt;

/// A delivery channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Channel {
    /// E-mail over SMTP (RFC 5321).
    Email,
    /// SMS through the configured HTTPS webhook.
    Sms,
}

impl Channel {
    /// Stable lower-case name: `"email"` or `"sms"` (used in logs and error text).
    pub fn as_str(self) -> &'static str {
        match self {
            Channel::Email => "email",
            Channel::Sms => "sms",
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
    /// The SMS webhook failed: no connection, timeout, or a non-2xx HTTP status.
    #[error("SMS webhook failed ({reason}{})", fmt_status(*.status))]
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

    /// Whether trying again later may succeed (unavailable servers, 4yz SMTP replies,
    /// webhook timeouts, connection failures and 5xx/429 statuses).
    pub fn is_transient(&self) -> bool {
        match self {
            NotifyError::SmtpUnavailable { .. } => true,
            NotifyError::SmtpRejected { code } => code.is_some_and(|c| (400..500).contains(&c)),
            NotifyError::WebhookFailed { status, .. } => {
                status.is_none_or(|s| s >= 500 || s == 429)
            }
            NotifyError::NoChannel(_)
            | NotifyError::BadConfig(_)
            | NotifyError::BadRecipient(_) => false,
        }
    }
}
