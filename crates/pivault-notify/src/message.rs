//! The message shape and the channel router.

use std::fmt;

use crate::{Channel, NotifyError, SmsWebhook, SmtpNotifier};

/// Where a message goes. Both variants hold PI; their `Debug` output is redacted.
#[derive(Clone, PartialEq, Eq)]
pub enum Recipient {
    /// An e-mail address (`local@domain`, RFC 5322 addr-spec), delivered by SMTP.
    Email(String),
    /// A mobile number in E.164 form (`+8613800138000`), delivered by the SMS webhook.
    Mobile(String),
}

impl Recipient {
    /// The channel this recipient is reached on.
    pub fn channel(&self) -> Channel {
        match self {
            Recipient::Email(_) => Channel::Email,
            Recipient::Mobile(_) => Channel::Sms,
        }
    }
}

impl fmt::Debug for Recipient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Recipient::Email(_) => f.write_str("Email(<redacted>)"),
            Recipient::Mobile(_) => f.write_str("Mobile(<redacted>)"),
        }
    }
}

/// One message to one PI subject. `Debug` shows only the channel.
#[derive(Clone, PartialEq, Eq)]
pub struct Message {
    /// The recipient; decides the channel.
    pub to: Recipient,
    /// Subject line (e-mail only; SMS sends just the body). UTF-8, one line.
    pub subject: String,
    /// Plain-text body, UTF-8 (Chinese text is fine: e-mail encodes it per MIME).
    pub body: String,
}

impl fmt::Debug for Message {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Message")
            .field("to", &self.to)
            .finish_non_exhaustive()
    }
}

/// The configured channels; routes each message by [`Recipient`] kind.
///
/// Either channel may be absent: sending to it is then [`NotifyError::NoChannel`].
#[derive(Debug, Default)]
pub struct Notifiers {
    email: Option<SmtpNotifier>,
    sms: Option<SmsWebhook>,
}

impl Notifiers {
    /// Combines the e-mail and SMS notifiers (each optional).
    pub fn new(email: Option<SmtpNotifier>, sms: Option<SmsWebhook>) -> Self {
        Notifiers { email, sms }
    }

    /// The channels that are configured, e-mail first.
    pub fn channels(&self) -> Vec<Channel> {
        let mut out = Vec::with_capacity(2);
        if self.email.is_some() {
            out.push(Channel::Email);
        }
        if self.sms.is_some() {
            out.push(Channel::Sms);
        }
        out
    }

    /// Sends `msg` on the channel of `msg.to`.
    ///
    /// # Errors
    /// [`NotifyError::NoChannel`] if that channel is not configured; otherwise the errors
    /// of [`SmtpNotifier::send`] or [`SmsWebhook::send`].
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
        }
    }
}
