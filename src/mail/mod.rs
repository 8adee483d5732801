//! Outgoing email. Every message goes through the outbox (`outbox.rs`):
//! written in the transaction of the change that causes it, rendered from
//! `templates/email/` (`templates.rs`) and sent by a worker through one of
//! lettre's transports, chosen by configuration:
//! - `smtp`: a relay, over TLS, STARTTLS or plain for local relays;
//! - `file`: `.eml` files under the data directory (the default);
//! - `memory`: kept in the process, for tests.

pub mod outbox;
pub mod templates;

use std::{path::Path, sync::Arc, time::Duration};

use lettre::{
    AsyncFileTransport, AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor,
    message::{Mailbox, MultiPart, header::HeaderName, header::HeaderValue},
    transport::{smtp::authentication::Credentials, stub::AsyncStubTransport},
};
use secrecy::ExposeSecret;
use tokio::sync::Notify;

use crate::{
    config::{MailSettings, MailTransport, SmtpSecurity},
    error::{Error, Result},
};

/// A rendered message to one recipient.
#[derive(Debug, Clone)]
pub struct Email {
    pub to: String,
    pub subject: String,
    pub text: String,
    pub html: String,
    /// The outbox row it came from: its Message-ID, so that a message sent
    /// twice after a crash is recognisably the same one.
    pub outbox_id: i64,
}

/// Why a send failed: worth retrying later, or never going to work.
#[derive(Debug)]
pub enum SendError {
    Temporary(String),
    Permanent(String),
}

#[derive(Clone)]
enum Transport {
    File(AsyncFileTransport<Tokio1Executor>),
    Smtp(AsyncSmtpTransport<Tokio1Executor>),
    Memory(AsyncStubTransport),
}

#[derive(Clone)]
pub struct Mailer {
    from: Mailbox,
    transport: Transport,
    /// Wakes this replica's outbox worker when a message was queued here.
    wake: Arc<Notify>,
}

impl Mailer {
    pub fn new(settings: &MailSettings, data_dir: &Path) -> Result<Self> {
        let from: Mailbox = settings
            .from
            .parse()
            .map_err(|e| Error::Config(format!("mail.from: {e}")))?;
        let transport = match settings.transport {
            MailTransport::File => {
                let dir = data_dir.join("mail");
                std::fs::create_dir_all(&dir)
                    .map_err(|e| Error::Config(format!("cannot create {}: {e}", dir.display())))?;
                Transport::File(AsyncFileTransport::new(dir))
            }
            MailTransport::Smtp => Transport::Smtp(smtp(settings)?),
            MailTransport::Memory => Transport::Memory(AsyncStubTransport::new_ok()),
        };
        Ok(Mailer {
            from,
            transport,
            wake: Arc::new(Notify::new()),
        })
    }

    /// Tells the outbox worker a message is waiting.
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    pub(crate) fn woken(&self) -> Arc<Notify> {
        self.wake.clone()
    }

    pub async fn send(&self, email: &Email) -> std::result::Result<(), SendError> {
        let to: Mailbox = email
            .to
            .parse()
            .map_err(|_| SendError::Permanent(format!("{:?} is not an address", email.to)))?;
        let domain = self.from.email.domain().to_owned();
        let message = Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(&email.subject)
            .message_id(Some(format!("<outbox-{}@{domain}>", email.outbox_id)))
            .multipart(MultiPart::alternative_plain_html(
                email.text.clone(),
                email.html.clone(),
            ))
            .map_err(|e| SendError::Permanent(e.to_string()))?;
        let mut message = message;
        message.headers_mut().insert_raw(HeaderValue::new(
            HeaderName::new_from_ascii_str("X-Patronage-Outbox"),
            email.outbox_id.to_string(),
        ));
        match &self.transport {
            Transport::File(t) => t
                .send(message)
                .await
                .map(|_| ())
                .map_err(|e| SendError::Temporary(e.to_string())),
            Transport::Smtp(t) => t.send(message).await.map(|_| ()).map_err(|e| {
                if e.is_permanent() {
                    SendError::Permanent(e.to_string())
                } else {
                    SendError::Temporary(e.to_string())
                }
            }),
            Transport::Memory(t) => t
                .send(message)
                .await
                .map_err(|e| SendError::Temporary(e.to_string())),
        }
    }

    /// Messages sent so far, as raw RFC 5322 text (memory transport only).
    pub async fn sent(&self) -> Vec<String> {
        match &self.transport {
            Transport::Memory(t) => t.messages().await.into_iter().map(|(_, raw)| raw).collect(),
            Transport::File(_) | Transport::Smtp(_) => Vec::new(),
        }
    }
}

fn smtp(settings: &MailSettings) -> Result<AsyncSmtpTransport<Tokio1Executor>> {
    let host = settings.smtp_host.trim();
    let builder = match settings.smtp_security {
        SmtpSecurity::Tls => AsyncSmtpTransport::<Tokio1Executor>::relay(host),
        SmtpSecurity::Starttls => AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(host),
        SmtpSecurity::None => Ok(AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(
            host,
        )),
    }
    .map_err(|e| Error::Config(format!("mail.smtp_host: {e}")))?;
    let mut builder = builder
        .port(settings.smtp_port)
        .timeout(Some(Duration::from_secs(settings.smtp_timeout_secs.max(1))));
    if !settings.smtp_username.is_empty() {
        builder = builder.credentials(Credentials::new(
            settings.smtp_username.clone(),
            settings.smtp_password.expose_secret().to_owned(),
        ));
    }
    Ok(builder.build())
}
