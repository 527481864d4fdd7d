//! The message shape and the channel router.

use std::fmt;

use crate::{Channel, NotifyError, PushWebhook, SmsWebhook, SmtpNotifier};

/// Longest accepted [`Message::id`], in bytes.
pub const MAX_MESSAGE_ID_LEN: usize = 128;

/// Where a message goes. Every variant holds PI (or a credential-like device token); their
/// `Debug` output is redacted.
#[derive(Clone, PartialEq, Eq)]
pub enum Recipient {
    /// An e-mail address (`local@domain`, RFC 5322 addr-spec), delivered by SMTP.
    Email(String),
    /// A mobile number in E.164 form (`+8613800138000`), delivered by the SMS webhook.
    Mobile(String),
    /// An app push token of one device (opaque, as issued by the push provider),
    /// delivered by the push webhook. Treated like a credential: never logged.
    Push(String),
}

impl Recipient {
    /// The channel this recipient is reached on.
    pub fn channel(&self) -> Channel {
        match self {
            Recipient::Email(_) => Channel::Email,
            Recipient::Mobile(_) => Channel::Sms,
            Recipient::Push(_) => Channel::Push,
        }
    }
}

impl fmt::Debug for Recipient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Recipient::Email(_) => f.write_str("Email(<redacted>)"),
            Recipient::Mobile(_) => f.write_str("Mobile(<redacted>)"),
            Recipient::Push(_) => f.write_str("Push(<redacted>)"),
        }
    }
}

/// One message to one PI subject. `Debug` shows only the channel and the id.
#[derive(Clone, PartialEq, Eq)]
pub struct Message {
    /// The recipient; decides the channel.
    pub to: Recipient,
    /// Subject line (e-mail and push title; SMS sends just the body). UTF-8, one line.
    pub subject: String,
    /// Plain-text body, UTF-8 (Chinese text is fine: e-mail encodes it per MIME).
    pub body: String,
    /// Idempotency id, stable across retries of the same message (e.g. the outbox row id),
    /// so the receiving side can drop duplicates. 1..=[`MAX_MESSAGE_ID_LEN`] ASCII
    /// characters from `[A-Za-z0-9._-]`, not starting or ending with `.` and without `..`
    /// (so that `<id@pivault>` is an RFC 5322 §3.6.4 `msg-id` whose left part is a
    /// `dot-atom-text`).
    ///
    /// E-mail sends it as `Message-ID: <id@pivault>`; the SMS and push webhooks as the
    /// `Idempotency-Key: id` header (IETF draft-ietf-httpapi-idempotency-key-header).
    /// `None`: neither header is sent (the mail submission server adds a Message-ID,
    /// RFC 6409 §8.3).
    /// An id outside these rules is refused with [`NotifyError::BadConfig`] (its text never
    /// repeats the id).
    pub id: Option<String>,
}

impl fmt::Debug for Message {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Message")
            .field("to", &self.to)
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

/// Checks a [`Message::id`] (or another idempotency key) against the rules documented
/// there.
///
/// # Errors
/// [`NotifyError::BadConfig`] with a fixed text (the id is not repeated).
pub(crate) fn check_id(id: &str) -> Result<(), NotifyError> {
    let ok = !id.is_empty()
        && id.len() <= MAX_MESSAGE_ID_LEN
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
        && !id.starts_with('.')
        && !id.ends_with('.')
        && !id.contains("..");
    if ok {
        Ok(())
    } else {
        Err(NotifyError::BadConfig(format!(
            "message id must be 1..={MAX_MESSAGE_ID_LEN} characters of [A-Za-z0-9._-], \
             without leading, trailing or doubled dots"
        )))
    }
}

/// The configured channels; routes each message by [`Recipient`] kind.
///
/// Any channel may be absent: sending to it is then [`NotifyError::NoChannel`].
#[derive(Debug, Default)]
pub struct Notifiers {
    email: Option<SmtpNotifier>,
    sms: Option<SmsWebhook>,
    push: Option<PushWebhook>,
}

impl Notifiers {
    /// Combines the e-mail and SMS notifiers (each optional); no push channel (add one
    /// with [`Notifiers::with_push`]).
    pub fn new(email: Option<SmtpNotifier>, sms: Option<SmsWebhook>) -> Self {
        Notifiers {
            email,
            sms,
            push: None,
        }
    }

    /// The same notifiers with `push` as the app push channel (replacing any before).
    #[must_use]
    pub fn with_push(self, push: PushWebhook) -> Self {
        Notifiers {
            push: Some(push),
            ..self
        }
    }

    /// The channels that are configured, in the order e-mail, SMS, push.
    pub fn channels(&self) -> Vec<Channel> {
        let mut out = Vec::with_capacity(3);
        if self.email.is_some() {
            out.push(Channel::Email);
        }
        if self.sms.is_some() {
            out.push(Channel::Sms);
        }
        if self.push.is_some() {
            out.push(Channel::Push);
        }
        out
    }

    /// Sends `msg` on the channel of `msg.to`.
    ///
    /// # Errors
    /// [`NotifyError::NoChannel`] if that channel is not configured; otherwise the errors
    /// of [`SmtpNotifier::send`], [`SmsWebhook::send`] or [`PushWebhook::send`].
    pub async fn send(&self, msg: &Message) -> Result<(), NotifyError> {
        match &msg.to {
            Recipient::Email(_) => match &self.email {
                Some(n) => n.send(msg).await,
                None => Err(NotifyError::NoChannel(Channel::Email)),
            },
            Recipient::Mobile(_) => match &self.sms {
                Some(n) => n.send(msg).await,
                None => Err(NotifyError::NoChannel(Channel::Sms)),
            },
            Recipient::Push(_) => match &self.push {
                Some(n) => n.send(msg).await,
                None => Err(NotifyError::NoChannel(Channel::Push)),
            },
        }
    }
}
