//! E-mail delivery through a real SMTP conversation with the local [`SmtpSink`].

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use pivault_notify::testing::SmtpSink;
use pivault_notify::{Message, Notifiers, NotifyError, SmtpConfig, SmtpNotifier, Tls};

const WAIT: Duration = Duration::from_secs(10);
const CHINESE_BODY: &str = "您好，您的身份验证码是 482913，10 分钟内有效。如非本人操作，请忽略。";

fn mail(to: &str, body: &str) -> Message {
    Message {
        to: pivault_notify::Recipient::Email(to.to_owned()),
        subject: "个人信息删除请求：身份验证".to_owned(),
        body: body.to_owned(),
        id: None,
    }
}

#[tokio::test]
async fn a_chinese_mail_arrives_with_its_recipient_and_decoded_body() {
    let sink = SmtpSink::start().await;
    let notifier = SmtpNotifier::new(SmtpConfig::from_url(&sink.url()).unwrap()).unwrap();

    notifier
        .send(&mail("zhang.san@example.cn", CHINESE_BODY))
        .await
        .unwrap();

    let got = sink.wait_for(1, WAIT).await;
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].envelope_from, "privacy@pivault.test");
    assert_eq!(got[0].rcpt_to, vec!["zhang.san@example.cn".to_owned()]);
    // lettre transfer-encodes non-ASCII, so this exercises the sink's decoding.
    let raw = String::from_utf8_lossy(&got[0].data).to_ascii_lowercase();
    assert!(
        raw.contains("content-transfer-encoding: base64")
            || raw.contains("content-transfer-encoding: quoted-printable"),
        "{raw}"
    );
    assert_eq!(got[0].text_body().unwrap().trim_end(), CHINESE_BODY);
    assert_eq!(got[0].subject().unwrap(), "个人信息删除请求：身份验证");
}

#[tokio::test]
async fn two_concurrent_sends_both_arrive() {
    let sink = SmtpSink::start().await;
    let notifiers = Notifiers::new(
        Some(SmtpNotifier::new(SmtpConfig::from_url(&sink.url()).unwrap()).unwrap()),
        None,
    );
    let (ma, mb) = (
        mail("a@example.cn", "code 111111"),
        mail("b@example.cn", "code 222222"),
    );
    let (a, b) = tokio::join!(notifiers.send(&ma), notifiers.send(&mb));
    a.unwrap();
    b.unwrap();

    let got = sink.wait_for(2, WAIT).await;
    let mut pairs: Vec<(String, String)> = got
        .iter()
        .map(|m| {
            (
                m.rcpt_to.join(","),
                m.text_body().unwrap().trim_end().to_owned(),
            )
        })
        .collect();
    pairs.sort();
    assert_eq!(
        pairs,
        vec![
            ("a@example.cn".to_owned(), "code 111111".to_owned()),
            ("b@example.cn".to_owned(), "code 222222".to_owned()),
        ]
    );
}

#[tokio::test]
async fn a_body_line_starting_with_a_dot_survives_dot_stuffing() {
    let sink = SmtpSink::start().await;
    let notifier = SmtpNotifier::new(SmtpConfig::from_url(&sink.url()).unwrap()).unwrap();
    let body = "first\r\n.\r\n.hidden\r\nlast";
    notifier.send(&mail("c@example.cn", body)).await.unwrap();
    let got = sink.wait_for(1, WAIT).await;
    assert_eq!(got[0].text_body().unwrap().trim_end(), body);
}

#[tokio::test]
async fn a_down_server_is_smtp_unavailable_within_the_timeout_and_leaks_nothing() {
    // Bind and release a port so nothing listens on it.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let config = SmtpConfig {
        host: "127.0.0.1".to_owned(),
        port,
        tls: Tls::None,
        username: None,
        password: None,
        from: "privacy@pivault.test".to_owned(),
        timeout: Duration::from_secs(2),
    };
    let notifier = SmtpNotifier::new(config).unwrap();
    let started = Instant::now();
    let err = notifier
        .send(&mail("li.si@example.cn", "验证码 735102"))
        .await
        .unwrap_err();
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(err.code(), "smtp_unavailable");
    assert!(err.is_transient());
    for shown in [err.to_string(), format!("{err:?}")] {
        assert!(!shown.contains("li.si"), "{shown}");
        assert!(!shown.contains("735102"), "{shown}");
        assert!(!shown.contains("验证码"), "{shown}");
    }
}

#[tokio::test]
async fn an_unparsable_address_is_bad_recipient_without_echoing_it() {
    let sink = SmtpSink::start().await;
    let notifier = SmtpNotifier::new(SmtpConfig::from_url(&sink.url()).unwrap()).unwrap();
    let err = notifier
        .send(&mail("not an address", "x"))
        .await
        .unwrap_err();
    assert_eq!(err.code(), "bad_recipient");
    assert!(!err.to_string().contains("not an address"));
    assert!(sink.messages().is_empty());
}

#[tokio::test]
async fn an_email_without_a_configured_email_channel_is_no_channel() {
    let err = Notifiers::new(None, None)
        .send(&mail("a@example.cn", "x"))
        .await
        .unwrap_err();
    assert_eq!(err, NotifyError::NoChannel(pivault_notify::Channel::Email));
    assert_eq!(err.code(), "no_channel");
}

#[test]
fn smtp_urls_select_tls_mode_and_default_port() {
    let c = SmtpConfig::from_url("smtp://127.0.0.1?from=a@b.cn").unwrap();
    assert_eq!((c.port, c.tls), (25, Tls::None));
    let c = SmtpConfig::from_url("smtp+starttls://mail.example.cn?from=a@b.cn").unwrap();
    assert_eq!((c.port, c.tls), (587, Tls::StartTls));
    let c =
        SmtpConfig::from_url("smtps://u%40x:p%3Aw@mail.example.cn:2465?from=a@b.cn&timeout_secs=7")
            .unwrap();
    assert_eq!((c.port, c.tls), (2465, Tls::Implicit));
    assert_eq!(c.username.as_deref(), Some("u@x"));
    assert_eq!(c.password.as_deref(), Some("p:w"));
    assert_eq!(c.timeout, Duration::from_secs(7));
    assert!(!format!("{c:?}").contains("p:w"));
}

#[test]
fn bad_smtp_urls_are_bad_config_and_never_echo_the_password() {
    for url in [
        "http://mail.example.cn?from=a@b.cn",
        "smtps://mail.example.cn",
        "smtps://mail.example.cn?from=not-a-mailbox",
        "smtps://mail.example.cn?from=a@b.cn&colour=blue",
        "smtps://mail.example.cn?from=a@b.cn&timeout_secs=0",
        "smtp://user:hunter2@mail.example.cn?from=a@b.cn",
        "smtps://:hunter2@mail.example.cn?from=a@b.cn",
    ] {
        let err = SmtpConfig::from_url(url).unwrap_err();
        assert_eq!(err.code(), "bad_config", "{url}");
        assert!(!err.to_string().contains("hunter2"), "{err}");
    }
    // Credentials in clear are fine to loopback (tests, a local relay).
    SmtpConfig::from_url("smtp://user:pw@localhost:2525?from=a@b.cn").unwrap();
}

#[tokio::test]
async fn a_message_id_becomes_the_rfc_5322_message_id_header() {
    let sink = SmtpSink::start().await;
    let notifier = SmtpNotifier::new(SmtpConfig::from_url(&sink.url()).unwrap()).unwrap();
    let mut m = mail("d@example.cn", "notice");
    m.id = Some("outbox-42.retry_safe".to_owned());
    // Twice, as a retry would: both carry the same id.
    notifier.send(&m).await.unwrap();
    notifier.send(&m).await.unwrap();
    let got = sink.wait_for(2, WAIT).await;
    assert_eq!(got.len(), 2);
    for g in &got {
        assert_eq!(
            g.message_id().as_deref(),
            Some("outbox-42.retry_safe@pivault")
        );
        let raw = String::from_utf8_lossy(&g.data);
        assert!(
            raw.contains("Message-ID: <outbox-42.retry_safe@pivault>\r\n"),
            "{raw}"
        );
    }
    // Without an id we set none (the submission server adds one, RFC 6409 §8.3).
    notifier.send(&mail("d@example.cn", "x")).await.unwrap();
    let got = sink.wait_for(3, WAIT).await;
    assert_eq!(got[2].message_id(), None);
}

#[tokio::test]
async fn a_malformed_message_id_is_refused_without_echoing_it() {
    let sink = SmtpSink::start().await;
    let notifier = SmtpNotifier::new(SmtpConfig::from_url(&sink.url()).unwrap()).unwrap();
    let long = "a".repeat(pivault_notify::MAX_MESSAGE_ID_LEN + 1);
    for id in [
        "",
        "has space",
        "x>\r\nBcc: evil@example.cn",
        "zhang@example.cn",
        "张三",
        ".lead",
        "trail.",
        "dou..ble",
        long.as_str(),
    ] {
        let mut m = mail("e@example.cn", "x");
        m.id = Some(id.to_owned());
        let err = notifier.send(&m).await.unwrap_err();
        assert_eq!(err.code(), "bad_config", "{id:?}");
        assert!(err.is_permanent());
        if !id.is_empty() {
            assert!(!err.to_string().contains(id), "{err}");
        }
    }
    assert!(sink.messages().is_empty());
    let mut ok = mail("e@example.cn", "x");
    ok.id = Some("a".repeat(pivault_notify::MAX_MESSAGE_ID_LEN));
    notifier.send(&ok).await.unwrap();
}

#[tokio::test]
async fn a_message_to_a_push_token_on_the_smtp_notifier_is_no_channel() {
    let sink = SmtpSink::start().await;
    let notifier = SmtpNotifier::new(SmtpConfig::from_url(&sink.url()).unwrap()).unwrap();
    let mut m = mail("x@example.cn", "x");
    m.to = pivault_notify::Recipient::Push("device-token".into());
    assert_eq!(
        notifier.send(&m).await.unwrap_err(),
        NotifyError::NoChannel(pivault_notify::Channel::Push)
    );
    assert!(!format!("{m:?}").contains("device-token"));
}
