//! The HTTPS `POST` client shared by the SMS, push and signed recipient webhooks: one URL
//! policy, one error mapping, one log line per send.

use std::fmt;
use std::time::Duration;

use reqwest::header::{HeaderMap, HeaderName, HeaderValue, CONTENT_TYPE};

use crate::message::check_id;
use crate::smtp::is_loopback;
use crate::NotifyError;

/// Header carrying a message's idempotency id (IETF draft-ietf-httpapi-idempotency-key-header).
pub(crate) const IDEMPOTENCY_KEY: &str = "idempotency-key";

/// Writes the `Debug` of a webhook configuration with the bearer token redacted.
pub(crate) fn fmt_config(
    f: &mut fmt::Formatter<'_>,
    name: &str,
    url: &str,
    bearer_token: Option<&String>,
    timeout: Duration,
) -> fmt::Result {
    f.debug_struct(name)
        .field("url", &url)
        .field("bearer_token", &bearer_token.map(|_| "<redacted>"))
        .field("timeout", &timeout)
        .finish()
}

/// One webhook endpoint: a checked URL, an optional bearer token and a `reqwest` client
/// (rustls, connection pool, no redirects, whole-request timeout).
pub(crate) struct JsonWebhook {
    client: reqwest::Client,
    url: reqwest::Url,
    bearer_token: Option<String>,
    /// Channel name used in log lines (`"sms"`, `"push"`, `"webhook"`).
    channel: &'static str,
}

impl fmt::Debug for JsonWebhook {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JsonWebhook")
            .field("channel", &self.channel)
            .field("url", &self.url.as_str())
            .finish_non_exhaustive()
    }
}

impl JsonWebhook {
    /// Checks `url` and builds the client. `label` starts every configuration error
    /// (`"SMS webhook"`, …).
    ///
    /// # Errors
    /// [`NotifyError::BadConfig`] if the URL does not parse, has no host, is not `https://`
    /// (or `http://` to a loopback host), or `timeout` is zero.
    pub(crate) fn new(
        label: &str,
        channel: &'static str,
        url: &str,
        bearer_token: Option<String>,
        timeout: Duration,
    ) -> Result<JsonWebhook, NotifyError> {
        let bad = |m: &str| NotifyError::BadConfig(format!("{label}: {m}"));
        let url = reqwest::Url::parse(url).map_err(|_| bad("URL does not parse"))?;
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
        if timeout.is_zero() {
            return Err(bad("timeout must be positive"));
        }
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|_| bad("cannot build the HTTP client"))?;
        Ok(JsonWebhook {
            client,
            url,
            bearer_token,
            channel,
        })
    }

    /// Serializes `payload` as JSON and posts it, with `Idempotency-Key: id` if `id` is set.
    ///
    /// # Errors
    /// [`NotifyError::BadConfig`] if `id` breaks the [`Message::id`](crate::Message::id)
    /// rules; otherwise those of [`JsonWebhook::post`].
    pub(crate) async fn post_json<T: serde::Serialize>(
        &self,
        payload: &T,
        id: Option<&str>,
    ) -> Result<(), NotifyError> {
        let mut headers = HeaderMap::new();
        if let Some(id) = id {
            check_id(id)?;
            headers.insert(IDEMPOTENCY_KEY, header_value(id)?);
        }
        let body = serde_json::to_vec(payload)
            .map_err(|_| NotifyError::BadConfig("cannot encode the webhook payload".into()))?;
        self.post(body, headers).await
    }

    /// Posts `body` as `application/json` with `headers` (plus the bearer token if
    /// configured) and logs the outcome (channel and error code only).
    ///
    /// # Errors
    /// [`NotifyError::WebhookFailed`] on timeout, connection failure or a non-2xx status
    /// (the status is kept; the response body is not read).
    pub(crate) async fn post(&self, body: Vec<u8>, headers: HeaderMap) -> Result<(), NotifyError> {
        let result = self.try_post(body, headers).await;
        match &result {
            Ok(()) => tracing::info!(
                channel = self.channel,
                outcome = "sent",
                "notification sent"
            ),
            Err(e) => {
                tracing::warn!(
                    channel = self.channel,
                    outcome = e.code(),
                    status = e.status(),
                    "notification failed"
                );
            }
        }
        result
    }

    async fn try_post(&self, body: Vec<u8>, headers: HeaderMap) -> Result<(), NotifyError> {
        let mut req = self
            .client
            .post(self.url.clone())
            .header(CONTENT_TYPE, HeaderValue::from_static("application/json"))
            .headers(headers)
            .body(body);
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

/// A header value from caller data, refused (without echoing it) if it is not visible
/// ASCII (RFC 9110 §5.5 `field-vchar`, no CR/LF).
///
/// # Errors
/// [`NotifyError::BadConfig`] with a fixed text.
pub(crate) fn header_value(v: &str) -> Result<HeaderValue, NotifyError> {
    if v.is_empty() || !v.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(NotifyError::BadConfig(
            "webhook header value must be visible ASCII".into(),
        ));
    }
    HeaderValue::from_str(v)
        .map_err(|_| NotifyError::BadConfig("webhook header value must be visible ASCII".into()))
}

/// Adds `name: value` to `headers` after [`header_value`]'s check.
///
/// # Errors
/// Those of [`header_value`].
pub(crate) fn insert(
    headers: &mut HeaderMap,
    name: &'static str,
    value: &str,
) -> Result<(), NotifyError> {
    headers.insert(HeaderName::from_static(name), header_value(value)?);
    Ok(())
}
