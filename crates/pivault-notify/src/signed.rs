//! Signed webhooks to other personal-information handlers: when a subject's PI is erased
//! (PIPL Art. 47), the recipients it was provided to are told to erase it too
//! (GB/T 35273-2020 §8.3). Each
//! notice is a JSON document `POST`ed to the recipient's HTTPS endpoint with an Ed25519
//! signature (RFC 8032) the recipient checks against the vault's published receipt key.
//!
//! This crate does no cryptography: the caller signs with
//! `pivault_crypto::ReceiptSigner::sign_webhook` (input
//! `"pivault-webhook v1\n" ‖ decimal timestamp ‖ "\n" ‖ body`) and hands the result in
//! [`SignedHeaders`].

use std::fmt;
use std::time::Duration;

use reqwest::header::HeaderMap;

use crate::message::check_id;
use crate::webhook::{header_value, insert, JsonWebhook, IDEMPOTENCY_KEY};
use crate::NotifyError;

/// Header with the signing time, decimal Unix seconds.
pub const HEADER_TIMESTAMP: &str = "x-pivault-timestamp";
/// Header with the public id of the signing key (`ReceiptSigner::key_id`, 16 hex).
pub const HEADER_KEY_ID: &str = "x-pivault-key-id";
/// Header with the signature: `ed25519=` followed by the 64-byte signature in standard
/// base64 with padding (RFC 4648 §4), 88 characters.
pub const HEADER_SIGNATURE: &str = "x-pivault-signature";

/// The signature headers of one [`SignedWebhook::post`], computed by the caller over the
/// exact body bytes. Nothing here is secret (the signature is public by design), so
/// `Debug` prints it all.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedHeaders {
    /// Sent as `Idempotency-Key`; stable across retries of the same notice so the recipient
    /// can drop duplicates. Same rules as [`Message::id`](crate::Message::id):
    /// 1..=128 characters of `[A-Za-z0-9._-]`, no leading, trailing or doubled dot.
    pub idempotency_key: String,
    /// Signing time in Unix seconds (UTC), sent as `X-Pivault-Timestamp` in decimal. Part
    /// of the signed input, so a recipient can refuse stale replays.
    pub timestamp: i64,
    /// Public id of the signing key, sent as `X-Pivault-Key-Id` (visible ASCII).
    pub key_id: String,
    /// The 64-byte Ed25519 signature in standard base64 with padding (RFC 4648 §4), sent as
    /// `X-Pivault-Signature: ed25519=<signature_b64>`.
    pub signature_b64: String,
}

/// Posts signed JSON notices to one recipient endpoint. URL rules as for
/// [`SmsWebhook`](crate::SmsWebhook): `https://` (or `http://` to loopback), redirects not
/// followed, whole-request timeout. No bearer token: the signature authenticates us.
pub struct SignedWebhook {
    hook: JsonWebhook,
}

impl fmt::Debug for SignedWebhook {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("SignedWebhook").field(&self.hook).finish()
    }
}

impl SignedWebhook {
    /// Checks `url` and builds the HTTP client (rustls, no redirects).
    ///
    /// # Errors
    /// [`NotifyError::BadConfig`] if the URL does not parse, has no host, is not `https://`
    /// (or `http://` to a loopback host), or `timeout` is zero.
    pub fn new(url: &str, timeout: Duration) -> Result<SignedWebhook, NotifyError> {
        let hook = JsonWebhook::new("signed webhook", "webhook", url, None, timeout)?;
        Ok(SignedWebhook { hook })
    }

    /// `POST`s `body` (sent byte for byte, `Content-Type: application/json`) with the headers
    /// `Idempotency-Key`, `X-Pivault-Timestamp`, `X-Pivault-Key-Id` and
    /// `X-Pivault-Signature: ed25519=…` from `headers`. Any 2xx status is success.
    ///
    /// # Errors
    /// * [`NotifyError::BadConfig`] if `headers.idempotency_key` breaks the
    ///   [`Message::id`](crate::Message::id) rules, or `key_id` / `signature_b64` are empty
    ///   or not visible ASCII (the values are not repeated).
    /// * [`NotifyError::WebhookFailed`] on timeout, connection failure or a non-2xx status
    ///   (the status is kept; the response body is not read).
    pub async fn post(&self, body: &[u8], headers: &SignedHeaders) -> Result<(), NotifyError> {
        check_id(&headers.idempotency_key)?;
        header_value(&headers.signature_b64)?;
        let mut map = HeaderMap::new();
        insert(&mut map, IDEMPOTENCY_KEY, &headers.idempotency_key)?;
        insert(&mut map, HEADER_TIMESTAMP, &headers.timestamp.to_string())?;
        insert(&mut map, HEADER_KEY_ID, &headers.key_id)?;
        insert(
            &mut map,
            HEADER_SIGNATURE,
            &format!("ed25519={}", headers.signature_b64),
        )?;
        self.hook.post(body.to_vec(), map).await
    }
}
