//! SMS delivery through an operator-configured HTTPS webhook (the SMS gateway itself is
//! the operator's: Aliyun, Tencent Cloud, an in-house bridge, …).

use std::fmt;
use std::time::Duration;

use crate::smtp::is_loopback;
use crate::{Channel, Message, NotifyError, Recipient};

/// Where and how to reach the SMS webhook. `Debug` redacts the bearer token.
#[derive(Clone, PartialEq, Eq)]
pub struct SmsConfig {
    /// Absolute `https://` URL receiving the POST. `http://` only for loopback hosts
    /// (`127.0.0.0/8`, `::1`, `localhost`), which tests use.
    pub url: String,
    /// Sent as `Authorization: Bearer <token>` if set. Never logged.
    pub bearer_token: Option<String>,
    /// Limit for the whole request, connect included.
    pub timeout: Duration,
}

impl fmt::Debug for SmsConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SmsConfig")
            .field("url", &self.url)
            .field(
                "bearer_token",
                &self.bearer_token.as_ref().map(|_| "<redacted>"),
            )
            .field("timeout", &self.timeout)
            .finish()
    }
}

/// Sends SMS by `POST`ing JSON `{"to": "+8613800138000", "text": "…"}` (UTF-8,
/// `Content-Type: application/json`) to the webhook. Any 2xx status is success.
/// Redirects are not followed. Holds one `reqwest` client (connection pool) for its
/// lifetime.
pub struct SmsWebhook {
    client: reqwest::Client,
    url: reqwest::Url,
    bearer_token: Option<String>,
}

impl fmt::Debug for SmsWebhook {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SmsWebhook")
            .field("url", &self.url.as_str())
            .finish_non_exhaustive()
    }
}

#[derive(serde::Serialize)]
struct Payload<'a> {
    to: &'a str,
    text: &'a str,
}

impl SmsWebhook {
    /// Checks the URL and builds the HTTP client (rustls, no redirects).
    ///
    /// # Errors
    /// [`NotifyError::BadConfig`] if the URL does not parse, has no host, is not `https://`
    /// (or `http://` to a loopback host), or the timeout is zero.
    pub fn new(config: SmsConfig) -> Result<SmsWebhook, NotifyError> {
        let bad = |m: &str| NotifyError::BadConfig(format!("SMS webhook: {m}"));
        let url = reqwest::Url::parse(&config.url).map_err(|_| bad("URL does not parse"))?;
        let host = url.host_str().ok_or_else(|| bad("URL has no host"))?;
        match url.scheme() {
            "https" => {}
            "http" if is_loopback(host) => {}
            "http" => {
                return Err(bad(
                    "URL must be https:// (http:// only for loopback hosts)",
                ))
            }
            _ => return Err(bad("URL scheme must be https")),
        }
        if config.timeout.is_zero() {
            return Err(bad("timeout must be positive"));
        }
        let client = reqwest::Client::builder()
            .timeout(config.timeout)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|_| bad("cannot build the HTTP client"))?;
        Ok(SmsWebhook {
            client,
            url,
            bearer_token: config.bearer_token,
        })
    }

    /// Posts `msg.body` to `msg.to` (the subject line is not sent).
    ///
    /// # Errors
    /// * [`NotifyError::NoChannel`]`(Email)` if `msg.to` is an e-mail address.
    /// * [`NotifyError::WebhookFailed`] on timeout, connection failure or a non-2xx status
    ///   (the status is kept; the response body is not read).
    pub async fn send(&self, msg: &Message) -> Result<(), NotifyError> {
        let result = self.try_send(msg).await;
        match &result {
            Ok(()) => tracing::info!(channel = "sms", outcome = "sent", "notification sent"),
            Err(e) => tracing::warn!(channel = "sms", outcome = e.code(), "notification failed"),
        }
        result
    }

    async fn try_send(&self, msg: &Message) -> Result<(), NotifyError> {
        let Recipient::Mobile(to) = &msg.to else {
            return Err(NotifyError::NoChannel(Channel::Email));
        };
        let mut req = self.client.post(self.url.clone()).json(&Payload {
            to,
            text: &msg.body,
        });
        if let Some(token) = &self.bearer_token {
            req = req.bearer_auth(token);
        }
        let resp = req.send().await.map_err(|e| NotifyError::WebhookFailed {
            reason: if e.is_timeout() {
                "timeout"
            } else if e.is_connect() {
                "connection"
            } else {
                "request"
            },
            status: None,
        })?;
        let status = resp.status();
        if status.is_success() {
            Ok(())
        } else {
            Err(NotifyError::WebhookFailed {
                reason: "status",
                status: Some(status.as_u16()),
            })
        }
    }
}
