//! The outbox's transport over `pivault-notify`: email by SMTP, SMS and app push by webhook,
//! and signed webhooks of the policy's recipients (PIPL Art. 47 erasure notices).

use std::collections::HashMap;

use pivault_core::ports::{Channel, CodeSender, Outgoing, SendFailure, SendFuture, SignedPost};
use pivault_notify::{Message, Notifiers, NotifyError, Recipient, SignedHeaders, SignedWebhook};

/// [`CodeSender`] over `pivault-notify` (policy §7.2 codes, §8.3 notices): the configured
/// channels, and a signed webhook per policy recipient that has one.
#[derive(Debug)]
pub struct NotifySender {
    notifiers: Notifiers,
    recipients: HashMap<String, SignedWebhook>,
}

fn failure(e: &NotifyError) -> SendFailure {
    SendFailure {
        code: e.code(),
        permanent: e.is_permanent(),
        status: e.status(),
    }
}

impl NotifySender {
    /// The channels of `notifiers`, no recipient webhooks.
    #[must_use]
    pub fn new(notifiers: Notifiers) -> Self {
        Self {
            notifiers,
            recipients: HashMap::new(),
        }
    }

    /// Adds recipient `id`'s webhook for notices (a policy recipient id).
    #[must_use]
    pub fn with_recipient_webhook(mut self, id: &str, hook: SignedWebhook) -> Self {
        self.recipients.insert(id.to_string(), hook);
        self
    }
}

impl CodeSender for NotifySender {
    fn send<'a>(&'a self, m: Outgoing<'a>) -> SendFuture<'a> {
        Box::pin(async move {
            let to = match m.channel {
                Channel::Email => Recipient::Email(m.to.into()),
                Channel::Sms => Recipient::Mobile(m.to.into()),
                Channel::Push => Recipient::Push(m.to.into()),
            };
            let msg = Message {
                to,
                subject: m.subject.into(),
                body: m.body.into(),
                id: Some(m.id.to_string()),
            };
            self.notifiers.send(&msg).await.map_err(|e| failure(&e))
        })
    }

    fn channels(&self) -> Vec<Channel> {
        self.notifiers
            .channels()
            .into_iter()
            .filter_map(|c| match c {
                pivault_notify::Channel::Email => Some(Channel::Email),
                pivault_notify::Channel::Sms => Some(Channel::Sms),
                pivault_notify::Channel::Push => Some(Channel::Push),
                #[allow(unreachable_patterns)]
                _ => None,
            })
            .collect()
    }

    fn has_webhook(&self, recipient: &str) -> bool {
        self.recipients.contains_key(recipient)
    }

    fn post_webhook<'a>(&'a self, recipient: &'a str, post: SignedPost<'a>) -> SendFuture<'a> {
        Box::pin(async move {
            let Some(hook) = self.recipients.get(recipient) else {
                return Err(SendFailure::no_channel());
            };
            hook.post(
                post.body,
                &SignedHeaders {
                    idempotency_key: post.id.to_string(),
                    timestamp: post.timestamp,
                    key_id: post.key_id.to_string(),
                    signature_b64: post.signature_b64.to_string(),
                },
            )
            .await
            .map_err(|e| failure(&e))
        })
    }
}
