//! Outgoing email through lettre. The transport is chosen by configuration:
//! `.eml` files in the data directory (the default, so one command runs), or
//! memory (tests read what was sent). SMTP and templates come with the email
//! issue; callers only see `Mailer::send`.

use std::path::Path;

use lettre::{
    AsyncFileTransport, AsyncTransport, Message, Tokio1Executor,
    message::{Mailbox, header::ContentType},
    transport::stub::AsyncStubTransport,
};

use crate::{
    config::{MailSettings, MailTransport},
    error::{Error, Result},
};

/// A plain-text message to one recipient.
#[derive(Debug, Clone)]
pub struct Email {
    pub to: String,
    pub subject: String,
    pub text: String,
}

#[derive(Clone)]
enum Transport {
    File(AsyncFileTransport<Tokio1Executor>),
    Memory(AsyncStubTransport),
}

#[derive(Clone)]
pub struct Mailer {
    from: Mailbox,
    transport: Transport,
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
            MailTransport::Memory => Transport::Memory(AsyncStubTransport::new_ok()),
        };
        Ok(Mailer { from, transport })
    }

    pub async fn send(&self, email: &Email) -> Result<()> {
        let to: Mailbox = email
            .to
            .parse()
            .map_err(|_| Error::internal("recipient is not an address"))?;
        let message = Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(&email.subject)
            .header(ContentType::TEXT_PLAIN)
            .body(email.text.clone())
            .map_err(Error::internal)?;
        match &self.transport {
            Transport::File(t) => t.send(message).await.map(|_| ()).map_err(Error::internal),
            Transport::Memory(t) => t.send(message).await.map_err(Error::internal),
        }
    }

    /// Messages sent so far, as raw RFC 5322 text (memory transport only).
    pub async fn sent(&self) -> Vec<String> {
        match &self.transport {
            Transport::Memory(t) => t.messages().await.into_iter().map(|(_, raw)| raw).collect(),
            Transport::File(_) => Vec::new(),
        }
    }
}
