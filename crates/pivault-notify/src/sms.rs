//! SMS delivery through an operator-configured HTTPS webhook (the SMS gateway itself is
//! the operator's: Aliyun, Tencent Cloud, an in-house bridge, …).

use std::fmt;
use std::time::Duration;

use crate::webhook::{fmt_config, JsonWebhook};
use crate::{Message, NotifyError, Recipient};

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
        let token = self.bearer_token.as_ref();
        fmt_config(f, "SmsConfig", &self.url, token, self.timeout)
    }
}

/// Sends SMS by `POST`ing JSON `{"to": "+8613800138000", "text": "…"}` (UTF-8,
/// `Content-Type: application/json`) to the webhook, with `Idempotency-Key: <id>` when
/// [`Message::id`] is set. Any 2xx status is success. Redirects are not followed. Holds
/// one `reqwest` client (connection pool) for its lifetime.
pub struct SmsWebhook {
    hook: JsonWebhook,
}

impl fmt::Debug for SmsWebhook {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("SmsWebhook").field(&self.hook).finish()
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
        let hook = JsonWebhook::new(
            "SMS webhook",
            "sms",
            &config.url,
            config.bearer_token,
            config.timeout,
        )?;
        Ok(SmsWebhook { hook })
    }

    /// Posts `msg.body` to `msg.to` (the subject line is not sent).
    ///
    /// # Errors
    /// * [`NotifyError::NoChannel`] (with the recipient's channel) if `msg.to` is not a
    ///   mobile number.
    /// * [`NotifyError::BadConfig`] if `msg.id` breaks the [`Message::id`] rules.
    /// * [`NotifyError::WebhookFailed`] on timeout, connection failure or a non-2xx status
    ///   (the status is kept; the response body is not read).
    pub async fn send(&self, msg: &Message) -> Result<(), NotifyError> {
        let Recipient::Mobile(to) = &msg.to else {
            return Err(NotifyError::NoChannel(msg.to.channel()));
        };
        let payload = Payload {
            to,
            text: &msg.body,
        };
        self.hook.post_json(&payload, msg.id.as_deref()).await
    }
}
