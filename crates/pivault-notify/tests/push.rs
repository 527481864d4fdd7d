//! App push delivery through the push webhook, against the local [`WebhookSink`].

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use pivault_notify::testing::WebhookSink;
use pivault_notify::{
    Channel, Message, Notifiers, NotifyError, PushConfig, PushWebhook, Recipient,
};

const WAIT: Duration = Duration::from_secs(5);
const TOKEN: &str = "fcm:dQw4w9WgXcQ-device-token-secret";

fn push(id: Option<&str>) -> Message {
    Message {
        to: Recipient::Push(TOKEN.to_owned()),
        subject: "安全事件通知".to_owned(),
        body: "您的账户信息可能受到影响，请查看详情。".to_owned(),
        id: id.map(str::to_owned),
    }
}

fn config(url: String) -> PushConfig {
    PushConfig {
        url,
        bearer_token: Some("push-bearer-secret".to_owned()),
        timeout: Duration::from_secs(5),
    }
}

#[tokio::test]
async fn a_push_is_posted_as_json_with_title_and_idempotency_key() {
    let sink = WebhookSink::start().await;
    let notifiers = Notifiers::new(None, None)
        .with_push(PushWebhook::new(config(sink.url_at("/push"))).unwrap());
    assert_eq!(notifiers.channels(), vec![Channel::Push]);
    notifiers.send(&push(Some("out-17.a_b"))).await.unwrap();

    let got = sink.wait_for(1, WAIT).await;
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].path, "/push");
    assert_eq!(
        got[0].body,
        serde_json::json!({
            "to": TOKEN,
            "title": "安全事件通知",
            "text": "您的账户信息可能受到影响，请查看详情。",
        })
    );
    assert_eq!(got[0].header("idempotency-key"), Some("out-17.a_b"));
    assert_eq!(got[0].header("content-type"), Some("application/json"));
    assert_eq!(
        got[0].authorization.as_deref(),
        Some("Bearer push-bearer-secret")
    );
}

#[tokio::test]
async fn without_an_id_no_idempotency_key_is_sent() {
    let sink = WebhookSink::start().await;
    let hook = PushWebhook::new(config(sink.url_at("/push"))).unwrap();
    hook.send(&push(None)).await.unwrap();
    let got = sink.wait_for(1, WAIT).await;
    assert_eq!(got[0].header("idempotency-key"), None);
}

#[tokio::test]
async fn a_push_without_a_push_channel_is_no_channel_and_other_recipients_are_refused() {
    let err = Notifiers::new(None, None)
        .send(&push(None))
        .await
        .unwrap_err();
    assert_eq!(err, NotifyError::NoChannel(Channel::Push));
    assert!(err.is_permanent());

    let sink = WebhookSink::start().await;
    let hook = PushWebhook::new(config(sink.url_at("/push"))).unwrap();
    let mut msg = push(None);
    msg.to = Recipient::Mobile("+8613800138000".into());
    assert_eq!(
        hook.send(&msg).await.unwrap_err(),
        NotifyError::NoChannel(Channel::Sms)
    );
    assert_eq!(sink.attempts(), 0);
}

#[tokio::test]
async fn a_404_is_permanent_and_leaks_nothing() {
    let sink = WebhookSink::with_status(axum::http::StatusCode::NOT_FOUND).await;
    let hook = PushWebhook::new(config(sink.url_at("/push"))).unwrap();
    let err = hook.send(&push(Some("out-1"))).await.unwrap_err();
    assert_eq!(err.status(), Some(404));
    assert!(err.is_permanent());
    let shown = format!(
        "{err} {err:?} {:?} {:?}",
        push(Some("out-1")),
        config(sink.url())
    );
    for secret in [TOKEN, "push-bearer-secret", "安全事件", "受到影响"] {
        assert!(!shown.contains(secret), "{shown}");
    }
}

#[test]
fn push_urls_follow_the_webhook_rules() {
    for url in [
        "http://push.example.cn/send",
        "ftp://push.example.cn/",
        "nope",
    ] {
        let err = PushWebhook::new(config(url.to_owned())).unwrap_err();
        assert_eq!(err.code(), "bad_config", "{url}");
        assert!(!err.to_string().contains("push-bearer-secret"));
    }
    PushWebhook::new(config("https://push.example.cn/send".to_owned())).unwrap();
    let zero = PushConfig {
        timeout: Duration::ZERO,
        ..config("https://push.example.cn/send".to_owned())
    };
    assert_eq!(PushWebhook::new(zero).unwrap_err().code(), "bad_config");
}
