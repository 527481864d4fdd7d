//! E-mail delivery over SMTP (RFC 5321) with `lettre`, TLS by rustls.

use std::fmt;
use std::net::IpAddr;
use std::time::Duration;

use lettre::message::header::ContentType;
use lettre::message::Mailbox;
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Tls as LettreTls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};
use percent_encoding::percent_decode_str;

use crate::message::check_id;
use crate::{Channel, Message, NotifyError, Recipient};

/// Timeout used when a configuration URL names none: 30 seconds.
pub const DEFAULT_SMTP_TIMEOUT: Duration = Duration::from_secs(30);

/// How the SMTP connection is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tls {
    /// Plain TCP, no TLS (`smtp://`, default port 25). Only for loopback or a trusted
    /// internal relay; credentials are refused on it except towards loopback.
    None,
    /// Plain TCP upgraded with STARTTLS (RFC 3207), required — the send fails rather than
    /// continue in clear (`smtp+starttls://`, default port 587).
    StartTls,
    /// TLS from the first byte (RFC 8314 §3.3, `smtps://`, default port 465).
    Implicit,
}

/// Where and how to send e-mail. `Debug` redacts the password.
#[derive(Clone, PartialEq, Eq)]
pub struct SmtpConfig {
    /// Server host name or IP literal (also the TLS server name).
    pub host: String,
    /// Server TCP port.
    pub port: u16,
    /// Connection protection.
    pub tls: Tls,
    /// SMTP AUTH user name, if the server needs one.
    pub username: Option<String>,
    /// SMTP AUTH password. Never logged; `Debug` prints `<redacted>`.
    pub password: Option<String>,
    /// Envelope and header sender, e.g. `privacy@pivault.example` or
    /// `PIVault <privacy@pivault.example>` (RFC 5322 mailbox).
    pub from: String,
    /// Limit for connecting and for each SMTP command, and (×4) for one whole send.
    pub timeout: Duration,
}

impl fmt::Debug for SmtpConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SmtpConfig")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("tls", &self.tls)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("from", &self.from)
            .field("timeout", &self.timeout)
            .finish()
    }
}

impl SmtpConfig {
    /// Parses a configuration URL:
    ///
    /// `SCHEME://[USER[:PASSWORD]@]HOST[:PORT]?from=SENDER[&timeout_secs=N]`
    ///
    /// * `SCHEME` is `smtp` ([`Tls::None`], port 25), `smtp+starttls` ([`Tls::StartTls`],
    ///   port 587) or `smtps` ([`Tls::Implicit`], port 465).
    /// * `USER` and `PASSWORD` are percent-decoded.
    /// * `from` (required) is the sender mailbox, percent-encoded as a query value.
    /// * `timeout_secs` is whole seconds, 1..=600; default [`DEFAULT_SMTP_TIMEOUT`].
    ///
    /// ```
    /// use pivault_notify::{SmtpConfig, Tls};
    /// let c = SmtpConfig::from_url(
    ///     "smtps://mailer:s%40cret@mail.example.cn?from=privacy@pivault.example",
    /// ).unwrap();
    /// assert_eq!((c.host.as_str(), c.port, c.tls), ("mail.example.cn", 465, Tls::Implicit));
    /// assert_eq!(c.password.as_deref(), Some("s@cret"));
    /// assert!(!format!("{c:?}").contains("s@cret"));
    /// ```
    ///
    /// # Errors
    /// [`NotifyError::BadConfig`] if the URL does not parse, the scheme is unknown, the host
    /// is missing, `from` is missing or not a mailbox, a query key is unknown,
    /// `timeout_secs` is out of range, a password is given without a user, or credentials
    /// would travel in clear (`smtp://` to a non-loopback host). The error text never
    /// contains the password.
    pub fn from_url(s: &str) -> Result<SmtpConfig, NotifyError> {
        let bad = |m: &str| NotifyError::BadConfig(format!("SMTP URL: {m}"));
        let url = url::Url::parse(s).map_err(|_| bad("does not parse as a URL"))?;
        let (tls, default_port) = match url.scheme() {
            "smtp" => (Tls::None, 25),
            "smtp+starttls" => (Tls::StartTls, 587),
            "smtps" => (Tls::Implicit, 465),
            _ => return Err(bad("scheme must be smtp, smtp+starttls or smtps")),
        };
        let host = match url.host() {
            Some(url::Host::Domain(d)) if !d.is_empty() => d.to_owned(),
            Some(url::Host::Ipv4(ip)) => ip.to_string(),
            Some(url::Host::Ipv6(ip)) => ip.to_string(),
            _ => return Err(bad("host is missing")),
        };
        let port = url.port().unwrap_or(default_port);
        let decode = |v: &str| {
            percent_decode_str(v)
                .decode_utf8()
                .map(|c| c.into_owned())
                .map_err(|_| bad("user or password is not UTF-8 after percent-decoding"))
        };
        let username = match url.username() {
            "" => None,
            u => Some(decode(u)?),
        };
        let password = match url.password() {
            None => None,
            Some(p) => Some(decode(p)?),
        };
        let mut from = None;
        let mut timeout = DEFAULT_SMTP_TIMEOUT;
        for (k, v) in url.query_pairs() {
            match k.as_ref() {
                "from" => from = Some(v.into_owned()),
                "timeout_secs" => {
                    let secs: u64 = v
                        .parse()
                        .ok()
                        .filter(|n| (1..=600).contains(n))
                        .ok_or_else(|| bad("timeout_secs must be a whole number 1..=600"))?;
                    timeout = Duration::from_secs(secs);
                }
                _ => return Err(bad("unknown query parameter (known: from, timeout_secs)")),
            }
        }
        let from = from.ok_or_else(|| bad("query parameter `from` is required"))?;
        let config = SmtpConfig {
            host,
            port,
            tls,
            username,
            password,
            from,
            timeout,
        };
        config.validate()?;
        Ok(config)
    }

    fn validate(&self) -> Result<(), NotifyError> {
        let bad = |m: &str| Err(NotifyError::BadConfig(format!("SMTP: {m}")));
        if self.host.is_empty() {
            return bad("host is empty");
        }
        if self.from.parse::<Mailbox>().is_err() {
            return bad("`from` is not a valid mailbox");
        }
        if self.password.is_some() && self.username.is_none() {
            return bad("a password needs a user name");
        }
        if self.tls == Tls::None && self.username.is_some() && !is_loopback(&self.host) {
            return bad("credentials over unencrypted smtp:// are allowed only to loopback; use smtps:// or smtp+starttls://");
        }
        if self.timeout.is_zero() {
            return bad("timeout must be positive");
        }
        Ok(())
    }
}

pub(crate) fn is_loopback(host: &str) -> bool {
    let h = host.trim_start_matches('[').trim_end_matches(']');
    h.eq_ignore_ascii_case("localhost") || h.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// Sends e-mail through one SMTP server with one pooled `lettre` transport
/// (`AsyncSmtpTransport<Tokio1Executor>`), reused for every send.
pub struct SmtpNotifier {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
    timeout: Duration,
}

impl fmt::Debug for SmtpNotifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SmtpNotifier")
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl SmtpNotifier {
    /// Builds the notifier and its connection pool. Connects lazily, on the first send.
    ///
    /// # Errors
    /// [`NotifyError::BadConfig`] if `config` is invalid (see [`SmtpConfig::from_url`]) or
    /// the TLS parameters cannot be built for `config.host`.
    ///
    /// # Panics
    /// If called outside a Tokio runtime (the pool spawns its idle-connection reaper).
    pub fn new(config: SmtpConfig) -> Result<SmtpNotifier, NotifyError> {
        config.validate()?;
        let from: Mailbox = config
            .from
            .parse()
            .map_err(|_| NotifyError::BadConfig("SMTP: `from` is not a valid mailbox".into()))?;
        let tls = match config.tls {
            Tls::None => LettreTls::None,
            Tls::StartTls | Tls::Implicit => {
                let params = TlsParameters::new(config.host.clone()).map_err(|_| {
                    NotifyError::BadConfig("SMTP: cannot set up TLS for this host".into())
                })?;
                if config.tls == Tls::StartTls {
                    LettreTls::Required(params)
                } else {
                    LettreTls::Wrapper(params)
                }
            }
        };
        let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&config.host)
            .port(config.port)
            .tls(tls)
            .timeout(Some(config.timeout));
        if let Some(user) = &config.username {
            builder = builder.credentials(Credentials::new(
                user.clone(),
                config.password.clone().unwrap_or_default(),
            ));
        }
        Ok(SmtpNotifier {
            transport: builder.build(),
            from,
            timeout: config.timeout,
        })
    }

    /// Sends `msg` as a single-part `text/plain; charset=utf-8` mail (lettre picks 7bit,
    /// quoted-printable or base64 transfer encoding). The whole send is bounded by four
    /// times the configured timeout.
    ///
    /// If `msg.id` is `Some(id)`, the mail carries `Message-ID: <id@pivault>` (RFC 5322
    /// §3.6.4), so a retry of the same message has the same id and receivers or relays
    /// that deduplicate on it see one mail; otherwise no Message-ID is set (the submission
    /// server adds one, RFC 6409 §8.3).
    ///
    /// # Errors
    /// * [`NotifyError::NoChannel`] (with the recipient's channel) if `msg.to` is not an
    ///   e-mail address.
    /// * [`NotifyError::BadConfig`] if `msg.id` breaks the [`Message::id`] rules (the id is
    ///   not repeated).
    /// * [`NotifyError::BadRecipient`] if the address does not parse as an e-mail address.
    /// * [`NotifyError::SmtpUnavailable`] on connection, TLS, timeout or protocol failure.
    /// * [`NotifyError::SmtpRejected`] if the server answers a command with 4yz or 5yz.
    pub async fn send(&self, msg: &Message) -> Result<(), NotifyError> {
        let result = self.try_send(msg).await;
        match &result {
            Ok(()) => tracing::info!(channel = "email", outcome = "sent", "notification sent"),
            Err(e) => tracing::warn!(channel = "email", outcome = e.code(), "notification failed"),
        }
        result
    }

    async fn try_send(&self, msg: &Message) -> Result<(), NotifyError> {
        let Recipient::Email(addr) = &msg.to else {
            return Err(NotifyError::NoChannel(msg.to.channel()));
        };
        let to: Mailbox = addr
            .parse()
            .map_err(|_| NotifyError::BadRecipient(Channel::Email))?;
        let mut builder = lettre::Message::builder();
        if let Some(id) = &msg.id {
            check_id(id)?;
            builder = builder.message_id(Some(format!("<{id}@pivault>")));
        }
        let email = builder
            .from(self.from.clone())
            .to(to)
            .subject(msg.subject.clone())
            .header(ContentType::TEXT_PLAIN)
            .body(msg.body.clone())
            .map_err(|_| NotifyError::BadRecipient(Channel::Email))?;
        let overall = self.timeout.saturating_mul(4);
        match tokio::time::timeout(overall, self.transport.send(email)).await {
            Err(_) => Err(NotifyError::SmtpUnavailable { reason: "timeout" }),
            Ok(Ok(_response)) => Ok(()),
            Ok(Err(e)) => Err(classify(&e)),
        }
    }
}

/// Maps a lettre error to ours without keeping its text (server replies often echo the
/// recipient address).
fn classify(e: &lettre::transport::smtp::Error) -> NotifyError {
    if e.is_transient() || e.is_permanent() {
        let code = e.status().and_then(|c| c.to_string().parse::<u16>().ok());
        NotifyError::SmtpRejected { code }
    } else if e.is_timeout() {
        NotifyError::SmtpUnavailable { reason: "timeout" }
    } else if e.is_tls() {
        NotifyError::SmtpUnavailable { reason: "tls" }
    } else if e.is_response() || e.is_client() {
        NotifyError::SmtpUnavailable { reason: "protocol" }
    } else {
        NotifyError::SmtpUnavailable {
            reason: "connection",
        }
    }
}
