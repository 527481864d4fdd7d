//! App push notifications through an operator-configured HTTPS webhook (the push service
//! itself — APNs, FCM, a vendor channel, an in-house bridge — is the operator's).

use std::fmt;
use std::time::Duration;

use crate::webhook::{fmt_config, JsonWebhook};
use crate::{Message, NotifyError, Recipient};

/// Where and how to reach the push webhook. Same rules as
/// [`SmsConfig`](crate::SmsConfig); `Debug` redacts the bearer token.
#[derive(Clone, PartialEq, Eq)]
pub struct PushConfig {
    /// Absolute `https://` URL receiving the POST. `http://` only for loopback hosts
    /// (`127.0.0.0/8`, `::1`, `localhost`), which tests use.
    pub url: String,
    /// Sent as `Authorization: Bearer <token>` if set. Never logged.
    pub bearer_token: Option<String>,
    /// Limit for the whole request, connect included.
    pub timeout: Duration,
}

impl fmt::Debug for PushConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let token = self.bearer_token.as_ref();
        fmt_config(f, "PushConfig", &self.url, token, self.timeout)
    }
}

/// Sends app push notifications by `POST`ing JSON
/// `{"to": "<device token>", "title": "<subject>", "text": "<body>"}` (UTF-8,
/// `Content-Type: application/json`) to the webhook, with `Idempotency-Key: <id>` when
/// [`Message::id`] is set. Any 2xx status is success. Redirects are not followed. Holds
/// one `reqwest` client (connection pool) for its lifetime.
pub struct PushWebhook {
    hook: JsonWebhook,
}

impl fmt::Debug for PushWebhook {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("PushWebhook").field(&self.hook).finish()
    }
}

#[derive(serde::Serialize)]
struct Payload<'a> {
    to: &'a str,
    title: &'a str,
    text: &'a str,
}

impl PushWebhook {
    /// Checks the URL and builds the HTTP client (rustls, no redirects).
    ///
    /// # Errors
    /// [`NotifyError::BadConfig`] if the URL does not parse, has no host, is not `https://`
    /// (or `http://` to a loopback host), or the timeout is zero.
    pub fn new(config: PushConfig) -> Result<PushWebhook, NotifyError> {
        let hook = JsonWebhook::new(
            "push webhook",
            "push",
            &config.url,
            config.bearer_token,
            config.timeout,
        )?;
        Ok(PushWebhook { hook })
    }

    /// Posts `msg.subject` as the title and `msg.body` as the text to the device token
    /// `msg.to`.
    ///
    /// # Errors
    /// * [`NotifyError::NoChannel`] (with the recipient's channel) if `msg.to` is not a
    ///   push token.
    /// * [`NotifyError::BadConfig`] if `msg.id` breaks the [`Message::id`] rules.
    /// * [`NotifyError::WebhookFailed`] on timeout, connection failure or a non-2xx status
    ///   (the status is kept; the response body is not read).
    pub async fn send(&self, msg: &Message) -> Result<(), NotifyError> {
        let Recipient::Push(to) = &msg.to else {
            return Err(NotifyError::NoChannel(msg.to.channel()));
        };
        let payload = Payload {
            to,
            title: &msg.subject,
            text: &msg.body,
        };
        self.hook.post_json(&payload, msg.id.as_deref()).await
    }
}
