//! Signed recipient webhooks (erasure notices to other handlers), against [`WebhookSink`].

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use pivault_notify::testing::WebhookSink;
use pivault_notify::{NotifyError, SignedHeaders, SignedWebhook};

const WAIT: Duration = Duration::from_secs(5);
/// 64 bytes in standard base64 (a stand-in; this crate neither signs nor verifies).
const SIG: &str =
    "y1gbPMiVic9sVu4S43CBk/yifSZWwN3FxMuG1QEn8WZHfQprAkJUtFSf1vl/8xnPxtqxus7pzqbgR1wPdPPVCg==";

fn headers(key: &str) -> SignedHeaders {
    SignedHeaders {
        idempotency_key: key.to_owned(),
        timestamp: 1_750_000_000,
        key_id: "266a25bad74998ea".to_owned(),
        signature_b64: SIG.to_owned(),
    }
}

#[tokio::test]
async fn the_body_is_posted_byte_for_byte_with_the_signature_headers() {
    let sink = WebhookSink::start().await;
    let hook = SignedWebhook::new(&sink.url_at("/erasure"), Duration::from_secs(5)).unwrap();
    // Non-canonical JSON spacing and key order must survive: the signature covers bytes.
    let body = "{ \"kind\":\"erasure\",  \"subject_ref\":\"张三-ref\" }".as_bytes();
    hook.post(body, &headers("erase-dsr-1-recipient-3"))
        .await
        .unwrap();

    let got = sink.wait_for(1, WAIT).await;
    assert_eq!(got.len(), 1);
    let r = &got[0];
    assert_eq!(r.path, "/erasure");
    assert_eq!(r.raw_body, body);
    assert_eq!(r.body["subject_ref"], "张三-ref");
    assert_eq!(r.header("content-type"), Some("application/json"));
    assert_eq!(r.header("idempotency-key"), Some("erase-dsr-1-recipient-3"));
    assert_eq!(r.header("x-pivault-timestamp"), Some("1750000000"));
    assert_eq!(r.header("x-pivault-key-id"), Some("266a25bad74998ea"));
    let expected = format!("ed25519={SIG}");
    assert_eq!(r.header("x-pivault-signature"), Some(expected.as_str()));
    assert_eq!(r.authorization, None);
}

#[tokio::test]
async fn a_non_2xx_answer_is_webhook_failed_with_its_status() {
    for (status, permanent) in [(500, false), (429, false), (410, true), (401, true)] {
        let sink =
            WebhookSink::with_status(axum::http::StatusCode::from_u16(status).unwrap()).await;
        let hook = SignedWebhook::new(&sink.url_at("/erasure"), Duration::from_secs(5)).unwrap();
        let err = hook.post(b"{}", &headers("k1")).await.unwrap_err();
        assert_eq!(
            err,
            NotifyError::WebhookFailed {
                reason: "status",
                status: Some(status)
            }
        );
        assert_eq!(err.is_permanent(), permanent, "{status}");
    }
}

#[tokio::test]
async fn a_down_endpoint_is_transient() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let hook = SignedWebhook::new(
        &format!("http://127.0.0.1:{port}/x"),
        Duration::from_secs(2),
    )
    .unwrap();
    let err = hook.post(b"{}", &headers("k1")).await.unwrap_err();
    assert_eq!(err.code(), "webhook_failed");
    assert_eq!(err.status(), None);
    assert!(!err.is_permanent());
}

#[tokio::test]
async fn bad_header_values_are_refused_before_sending_and_not_echoed() {
    let sink = WebhookSink::start().await;
    let hook = SignedWebhook::new(&sink.url_at("/erasure"), Duration::from_secs(5)).unwrap();
    let mut cases = vec![
        headers("has space"),
        headers("line\r\nX-Evil: 1"),
        headers(""),
        headers("身份证"),
    ];
    let mut h = headers("ok");
    h.key_id = "key\nid".into();
    cases.push(h);
    let mut h = headers("ok");
    h.signature_b64 = String::new();
    cases.push(h);
    for h in cases {
        let err = hook.post(b"{}", &h).await.unwrap_err();
        assert_eq!(err.code(), "bad_config", "{h:?}");
        assert!(err.is_permanent());
        let shown = format!("{err} {err:?}");
        assert!(
            !shown.contains("has space") && !shown.contains("Evil") && !shown.contains("身份证")
        );
    }
    assert_eq!(sink.attempts(), 0);
}

#[test]
fn signed_webhook_urls_follow_the_webhook_rules() {
    for url in ["http://erp.example.cn/hook", "file:///etc/passwd", ""] {
        assert_eq!(
            SignedWebhook::new(url, Duration::from_secs(5))
                .unwrap_err()
                .code(),
            "bad_config",
            "{url}"
        );
    }
    SignedWebhook::new("https://erp.example.cn/hook", Duration::from_secs(5)).unwrap();
    assert!(SignedWebhook::new("https://erp.example.cn/hook", Duration::ZERO).is_err());
}
