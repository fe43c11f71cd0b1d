//! Email (BILLING.md, "Email"), apart from the ledger like [`super::webhooks`]: the mailer reads the outbox and
//! mails the events of [`compose::is_mailed`] types to their account's address, through the SMTP server of
//! `SMTP_URL`. Without `SMTP_URL` it does not run: nothing is mailed and nothing else changes.
//!
//! - **In order, at least once, retried**: one cursor in the outbox (`mail_cursor`) moves past an event only
//!   once the SMTP server accepted its mail (or it needs none: another type, no address, too old), and is
//!   saved after each mail, so a crash resends at most the one mail in flight. Each mail's `Message-ID` is
//!   its event's id, so such a resend is recognisably the same message.
//! - **Retries**: a transient failure (no connection, a 4xx reply) waits `MAIL_RETRY_SCHEDULE_SECS` and
//!   retries the same event; a permanent one (a 5xx reply, e.g. an unknown mailbox) or the end of the
//!   schedule gives that mail up and goes on. Every attempt is recorded (`mail_attempts`).
//! - **Stale events**: an event older than [`MAX_AGE_MS`] when its turn comes is not mailed.
//! - Several billing-svc processes share the cursor through a lease.

pub mod compose;
pub mod sql;

use std::sync::Arc;
use std::time::{Duration, Instant};

use lettre::message::{Mailbox, MultiPart, header};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use tokio::sync::watch;

use crate::error::BillingError;
use crate::events::{self, Event};
use crate::store::{Shard, Store};
use crate::time::{self, Millis};
use sql::{Cursor, MailAttempt};

/// Events read per round.
const EVENTS_PER_ROUND: i64 = 50;
/// An event older than this when its turn comes is not mailed (a day-old alert is noise).
pub const MAX_AGE_MS: Millis = 86_400_000;

/// How mail is sent.
#[derive(Debug, Clone)]
pub struct MailSettings {
    /// `smtp://` (STARTTLS when the server offers it; `?tls=required` to insist) or `smtps://`, with
    /// `user:password@` when the server wants them.
    pub smtp_url: String,
    pub from: Mailbox,
    /// Waits before each retry of a transiently failed mail; after the last, that mail is given up.
    pub retry_schedule: Vec<Duration>,
    /// Per SMTP conversation.
    pub timeout: Duration,
    /// How often the outbox is looked at.
    pub poll_interval: Duration,
}

/// Why the mail settings cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum MailConfigError {
    #[error("SMTP_URL: {0}")]
    SmtpUrl(String),
    #[error("MAIL_FROM: {0}")]
    From(String),
}

/// Reads `MAIL_FROM` (`billing@example.com` or `Example Billing <billing@example.com>`).
pub fn mailbox(text: &str) -> Result<Mailbox, MailConfigError> {
    text.parse()
        .map_err(|error| MailConfigError::From(format!("{text:?} is not a mailbox: {error}")))
}

/// The mailer.
#[derive(Clone)]
pub struct Mailer {
    store: Store,
    transport: AsyncSmtpTransport<Tokio1Executor>,
    settings: Arc<MailSettings>,
}

/// How one attempt went.
enum Outcome {
    Sent,
    /// Worth retrying.
    Transient(String),
    /// Not worth retrying.
    Permanent(String),
}

impl Mailer {
    pub fn new(store: Store, settings: MailSettings) -> Result<Mailer, MailConfigError> {
        if !(settings.smtp_url.starts_with("smtp://") || settings.smtp_url.starts_with("smtps://"))
        {
            return Err(MailConfigError::SmtpUrl(
                "must start with smtp:// or smtps://".into(),
            ));
        }
        let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(&settings.smtp_url)
            // The URL may hold a password: say what is wrong without it.
            .map_err(|error| MailConfigError::SmtpUrl(format!("not a usable SMTP URL ({error})")))?
            .timeout(Some(settings.timeout))
            .build();
        Ok(Mailer {
            store,
            transport,
            settings: Arc::new(settings),
        })
    }

    /// Mails until told to stop.
    pub async fn run(self, stop: watch::Receiver<bool>) {
        let interval = self.settings.poll_interval;
        lifecycle::every(interval, stop, "mail round", || self.round()).await;
    }

    /// One round: takes the cursor when due, mails the next events in order until one fails or the
    /// round's time is up, and saves where it stands.
    async fn round(&self) -> Result<(), BillingError> {
        let now = time::now_ms();
        let lease = i64::try_from((self.settings.timeout * 3).as_millis()).unwrap_or(i64::MAX / 2);
        let Some(mut cursor) = self
            .store
            .write(Shard::Mail, move |batch| {
                Box::pin(async move {
                    Ok(sql::claim(batch.connection().await?, now, now + lease).await?)
                })
            })
            .await?
        else {
            return Ok(());
        };
        let pending = {
            let mut connection = self.store.reader().acquire().await?;
            events::sql::after(
                &mut connection,
                cursor.delivered_seq,
                None,
                EVENTS_PER_ROUND,
            )
            .await?
        };
        let started = Instant::now();
        for event in pending {
            if started.elapsed() > self.settings.timeout {
                break;
            }
            let Some((recipient, message)) = self.message(&event).await? else {
                cursor.delivered_seq = event.seq;
                continue;
            };
            let outcome = self.send(message).await;
            let (error, done) = match &outcome {
                Outcome::Sent => (None, true),
                Outcome::Permanent(error) => (Some(error.clone()), true),
                Outcome::Transient(error) => (Some(error.clone()), false),
            };
            let attempt = MailAttempt {
                event_id: event.id.to_string(),
                attempt: cursor.failures + 1,
                recipient: recipient.clone(),
                at: time::now_ms(),
                error: error.clone(),
                succeeded: i64::from(matches!(outcome, Outcome::Sent)),
            };
            let retry_at = if done {
                None
            } else {
                let failed = usize::try_from(cursor.failures).unwrap_or(usize::MAX);
                self.settings.retry_schedule.get(failed).map(|wait| {
                    time::now_ms() + i64::try_from(wait.as_millis()).unwrap_or(i64::MAX / 2)
                })
            };
            match (&outcome, retry_at) {
                (Outcome::Sent, _) => {
                    tracing::info!(event_id = %event.id, kind = event.kind.as_str(), "mailed");
                }
                (_, Some(_)) => {
                    tracing::warn!(event_id = %event.id, error = error.as_deref().unwrap_or_default(), "mail failed; will retry");
                }
                (_, None) => {
                    tracing::warn!(event_id = %event.id, error = error.as_deref().unwrap_or_default(), "mail given up");
                }
            }
            match retry_at {
                Some(at) => {
                    cursor.failures += 1;
                    cursor.next_attempt_at = at;
                }
                None => {
                    cursor = Cursor {
                        delivered_seq: event.seq,
                        failures: 0,
                        next_attempt_at: 0,
                    };
                }
            }
            self.save(cursor, Some(attempt), false).await?;
            if retry_at.is_some() {
                break;
            }
        }
        self.save(cursor, None, true).await
    }

    /// The recipient and the message of `event`; `None` when it gets no mail.
    async fn message(&self, event: &Event) -> Result<Option<(String, Message)>, BillingError> {
        if !compose::is_mailed(event.kind) {
            return Ok(None);
        }
        if time::now_ms() - event.created_at > MAX_AGE_MS {
            tracing::info!(event_id = %event.id, "event too old to mail");
            return Ok(None);
        }
        let account = {
            let mut connection = self.store.reader().acquire().await?;
            crate::accounts::sql::by_id(&mut connection, &event.account_id).await?
        };
        let Some(account) = account.filter(|account| !account.email.is_empty()) else {
            return Ok(None);
        };
        let Some(mail) = compose::compose(event, &account.name) else {
            return Ok(None);
        };
        let to: Mailbox = match account.email.parse() {
            Ok(to) => to,
            Err(error) => {
                tracing::warn!(event_id = %event.id, %error, "the account's email address does not parse");
                return Ok(None);
            }
        };
        let message = Message::builder()
            .from(self.settings.from.clone())
            .to(to)
            .subject(mail.subject)
            .message_id(Some(format!("<{}@billing>", event.id)))
            .header(header::Date::new(std::time::SystemTime::now()))
            .multipart(MultiPart::alternative_plain_html(mail.text, mail.html));
        match message {
            Ok(message) => Ok(Some((account.email, message))),
            Err(error) => {
                tracing::warn!(event_id = %event.id, %error, "the mail could not be built");
                Ok(None)
            }
        }
    }

    async fn send(&self, message: Message) -> Outcome {
        match self.transport.send(message).await {
            Ok(_) => Outcome::Sent,
            Err(error) if error.is_permanent() => Outcome::Permanent(error.to_string()),
            Err(error) => Outcome::Transient(error.to_string()),
        }
    }

    /// Saves the cursor (and the attempt made), freeing the lease when `release`.
    async fn save(
        &self,
        cursor: Cursor,
        attempt: Option<MailAttempt>,
        release: bool,
    ) -> Result<(), BillingError> {
        self.store
            .write(Shard::Mail, move |batch| {
                Box::pin(async move {
                    let connection = batch.connection().await?;
                    if let Some(attempt) = &attempt {
                        sql::insert_attempt(connection, attempt).await?;
                    }
                    sql::save(connection, cursor, release).await?;
                    Ok(())
                })
            })
            .await
    }
}
