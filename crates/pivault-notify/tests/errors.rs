//! Error classification: which failures a retry queue should stop on.

use pivault_notify::{Channel, NotifyError};

fn webhook(status: Option<u16>) -> NotifyError {
    NotifyError::WebhookFailed {
        reason: if status.is_some() {
            "status"
        } else {
            "timeout"
        },
        status,
    }
}

#[test]
fn permanent_failures_are_those_a_retry_on_the_same_channel_cannot_fix() {
    let permanent = [
        NotifyError::NoChannel(Channel::Push),
        NotifyError::BadConfig("x".into()),
        NotifyError::BadRecipient(Channel::Email),
        NotifyError::SmtpRejected { code: Some(550) },
        NotifyError::SmtpRejected { code: Some(553) },
        NotifyError::SmtpRejected { code: Some(554) },
        webhook(Some(400)),
        webhook(Some(401)),
        webhook(Some(404)),
        webhook(Some(410)),
        webhook(Some(422)),
    ];
    for e in &permanent {
        assert!(e.is_permanent(), "{e:?}");
        assert!(!e.is_transient(), "{e:?}");
    }
    let transient = [
        NotifyError::SmtpUnavailable { reason: "timeout" },
        NotifyError::SmtpUnavailable {
            reason: "connection",
        },
        NotifyError::SmtpRejected { code: Some(421) },
        NotifyError::SmtpRejected { code: Some(450) },
        NotifyError::SmtpRejected { code: Some(452) },
        webhook(None),
        webhook(Some(408)),
        webhook(Some(429)),
        webhook(Some(500)),
        webhook(Some(502)),
        webhook(Some(503)),
    ];
    for e in &transient {
        assert!(!e.is_permanent(), "{e:?}");
        assert!(e.is_transient(), "{e:?}");
    }
}

#[test]
fn status_is_the_smtp_reply_code_or_the_http_status() {
    assert_eq!(
        NotifyError::SmtpRejected { code: Some(550) }.status(),
        Some(550)
    );
    assert_eq!(NotifyError::SmtpRejected { code: None }.status(), None);
    assert_eq!(webhook(Some(429)).status(), Some(429));
    assert_eq!(webhook(None).status(), None);
    assert_eq!(NotifyError::NoChannel(Channel::Sms).status(), None);
    assert_eq!(
        NotifyError::SmtpUnavailable { reason: "tls" }.status(),
        None
    );
}

#[test]
fn codes_are_stable() {
    assert_eq!(webhook(Some(500)).code(), "webhook_failed");
    assert_eq!(NotifyError::NoChannel(Channel::Push).code(), "no_channel");
    assert_eq!(Channel::Push.as_str(), "push");
    assert_eq!(
        NotifyError::NoChannel(Channel::Push).to_string(),
        "no push channel configured"
    );
}
