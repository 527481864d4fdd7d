//! SMS delivery through the HTTP webhook, against the local [`WebhookSink`].

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use axum::http::StatusCode;
use pivault_notify::testing::WebhookSink;
use pivault_notify::{Message, Notifiers, NotifyError, Recipient, SmsConfig, SmsWebhook};

fn sms(to: &str, body: &str) -> Message {
    Message {
        to: Recipient::Mobile(to.to_owned()),
        subject: "ignored for SMS".to_owned(),
        body: body.to_owned(),
        id: None,
    }
}

fn config(url: String) -> SmsConfig {
    SmsConfig {
        url,
        bearer_token: Some("tok-secret".to_owned()),
        timeout: Duration::from_secs(5),
    }
}

#[tokio::test]
async fn an_sms_is_posted_as_json_with_the_bearer_token() {
    let sink = WebhookSink::start().await;
    let notifiers = Notifiers::new(None, Some(SmsWebhook::new(config(sink.url())).unwrap()));
    notifiers
        .send(&sms(
            "+8613800138000",
            "【PIVault】验证码 604233，10 分钟内有效",
        ))
        .await
        .unwrap();

    let got = sink.wait_for(1, Duration::from_secs(5)).await;
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].path, "/sms");
    assert_eq!(got[0].authorization.as_deref(), Some("Bearer tok-secret"));
    assert_eq!(
        got[0].body,
        serde_json::json!({"to": "+8613800138000", "text": "【PIVault】验证码 604233，10 分钟内有效"})
    );
}

#[tokio::test]
async fn a_500_from_the_webhook_is_webhook_failed_with_the_status_only() {
    let sink = WebhookSink::with_status(StatusCode::INTERNAL_SERVER_ERROR).await;
    let hook = SmsWebhook::new(config(sink.url())).unwrap();
    let err = hook
        .send(&sms("+8613800138000", "验证码 604233"))
        .await
        .unwrap_err();
    assert_eq!(
        err,
        NotifyError::WebhookFailed {
            reason: "status",
            status: Some(500)
        }
    );
    assert_eq!(err.code(), "webhook_failed");
    assert!(err.is_transient());
    let shown = format!("{err} {err:?}");
    for secret in ["13800138000", "604233", "tok-secret"] {
        assert!(!shown.contains(secret), "{shown}");
    }
}

#[tokio::test]
async fn a_mobile_without_a_configured_sms_channel_is_no_channel() {
    let err = Notifiers::new(None, None)
        .send(&sms("+8613800138000", "x"))
        .await
        .unwrap_err();
    assert_eq!(err.code(), "no_channel");
}

#[test]
fn plain_http_to_a_non_loopback_host_is_refused() {
    for url in [
        "http://sms.example.cn/send",
        "http://10.0.0.5/send",
        "ftp://sms.example.cn/send",
        "not a url",
    ] {
        let err = SmsWebhook::new(config(url.to_owned())).unwrap_err();
        assert_eq!(err.code(), "bad_config", "{url}");
        assert!(!err.to_string().contains("tok-secret"));
    }
    for url in [
        "https://sms.example.cn/send",
        "http://127.0.0.1:8080/sms",
        "http://[::1]:8080/sms",
        "http://localhost/sms",
    ] {
        SmsWebhook::new(config(url.to_owned())).unwrap();
    }
}

#[test]
fn sms_config_debug_redacts_the_token() {
    let c = config("https://sms.example.cn/send".to_owned());
    assert!(!format!("{c:?}").contains("tok-secret"));
}

#[tokio::test]
async fn an_sms_with_an_id_carries_it_as_the_idempotency_key() {
    let sink = WebhookSink::start().await;
    let hook = SmsWebhook::new(config(sink.url())).unwrap();
    let mut m = sms("+8613800138000", "验证码 604233");
    m.id = Some("dsr-code-7".to_owned());
    hook.send(&m).await.unwrap();
    let got = sink.wait_for(1, Duration::from_secs(5)).await;
    assert_eq!(got[0].header("Idempotency-Key"), Some("dsr-code-7"));
    assert_eq!(got[0].status, 200);

    m.id = Some("bad id\r\n".to_owned());
    let err = hook.send(&m).await.unwrap_err();
    assert_eq!(err.code(), "bad_config");
    assert!(!err.to_string().contains("bad id"));
    assert_eq!(sink.attempts(), 1);
}

#[tokio::test]
async fn a_sink_failing_first_records_every_attempt_and_then_accepts() {
    let sink = WebhookSink::failing_first(2).await;
    let hook = SmsWebhook::new(config(sink.url())).unwrap();
    let mut m = sms("+8613800138000", "通知");
    m.id = Some("out-5".to_owned());
    for _ in 0..2 {
        let err = hook.send(&m).await.unwrap_err();
        assert_eq!(err.status(), Some(500));
        assert!(!err.is_permanent());
    }
    hook.send(&m).await.unwrap();
    assert_eq!(sink.attempts(), 3);
    let all = sink.requests();
    assert_eq!(
        all.iter().map(|r| r.status).collect::<Vec<_>>(),
        vec![500, 500, 200]
    );
    assert!(all
        .iter()
        .all(|r| r.header("idempotency-key") == Some("out-5")));
    let delivered = sink.delivered();
    assert_eq!(delivered.len(), 1);
    let reparsed: serde_json::Value = serde_json::from_slice(&delivered[0].raw_body).unwrap();
    assert_eq!(reparsed, delivered[0].body);
}

#[tokio::test]
async fn notifiers_list_channels_in_order() {
    let sink = WebhookSink::start().await;
    let n = Notifiers::new(None, Some(SmsWebhook::new(config(sink.url())).unwrap()));
    assert_eq!(n.channels(), vec![pivault_notify::Channel::Sms]);
    let n = n.with_push(
        pivault_notify::PushWebhook::new(pivault_notify::PushConfig {
            url: sink.url_at("/push"),
            bearer_token: None,
            timeout: Duration::from_secs(5),
        })
        .unwrap(),
    );
    assert_eq!(
        n.channels(),
        vec![pivault_notify::Channel::Sms, pivault_notify::Channel::Push]
    );
}
