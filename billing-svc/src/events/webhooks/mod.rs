//! Webhook delivery (WEBHOOKS.md), apart from the ledger: the ledger only writes events to the outbox; this
//! module reads them and posts them to the endpoints subscribed, signed the Standard Webhooks way.
//!
//! - **At least once, in order**: each endpoint has a cursor in the outbox (`delivered_seq`). The
//!   dispatcher posts the endpoint's next event and moves the cursor only when the receiver answered 2xx,
//!   so an event is retried until delivered, and a later event never overtakes it. Receivers dedupe by
//!   `webhook-id` (the event id).
//! - **Retries** follow the schedule (`WEBHOOK_RETRY_SCHEDULE_SECS`, default 5 s, 5 min, 30 min, 2 h, 5 h,
//!   10 h); every attempt is recorded; after the last one the endpoint is disabled and a `webhook.disabled`
//!   event tells the operator's endpoints.
//! - **Isolation**: the dispatcher is its own task with a bounded number of endpoints in flight and a
//!   timeout per request; a slow or dead receiver holds only its own endpoint, never the ledger's writes.
//!   Several billing-svc processes share the work through a lease on each endpoint.
//! - **Targets** are checked by [`target`] (no private addresses unless allowed, no redirects).

mod signing;
pub mod sql;
pub mod target;

use std::sync::Arc;
use std::time::{Duration, Instant};

use proto::ids::{AccountId, WebhookId};
use serde_json::json;
use tokio::sync::watch;

use crate::error::BillingError;
use crate::events::{self, Event, EventType};
use crate::store::{Shard, Store};
use crate::time::{self, Millis};

/// Events posted to one endpoint per round before the dispatcher moves on.
const EVENTS_PER_ROUND: usize = 50;
/// What an endpoint's lease adds to the longest round.
const LEASE_MARGIN: Duration = Duration::from_secs(5);
/// Most event types an endpoint may subscribe to.
const MAX_EVENT_TYPES: usize = 32;

/// A webhook endpoint; `secret` never leaves billing-svc after creation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    pub id: WebhookId,
    /// `None`: the operator's endpoint, which receives every account's events.
    pub account_id: Option<AccountId>,
    pub url: String,
    /// Empty: every type.
    pub event_types: Vec<String>,
    pub secret: String,
    pub created_at: Millis,
    pub disabled_at: Option<Millis>,
    /// Every event up to this `seq` is done for the endpoint.
    pub delivered_seq: i64,
    /// Failed attempts at the current event.
    pub failures: i64,
    pub next_attempt_at: Millis,
}

impl Endpoint {
    pub fn wants(&self, event_type: &str) -> bool {
        self.event_types.is_empty() || self.event_types.iter().any(|kind| kind == event_type)
    }
}

/// One delivery attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attempt {
    pub endpoint_id: WebhookId,
    pub event_id: String,
    pub attempt: i64,
    pub at: Millis,
    /// The receiver's HTTP status, when it answered.
    pub status: Option<i64>,
    pub error: Option<String>,
    pub duration_ms: i64,
    pub succeeded: bool,
}

/// How deliveries are made.
#[derive(Debug, Clone)]
pub struct WebhookSettings {
    /// Loopback and private targets are allowed (local development, tests).
    pub allow_private_targets: bool,
    /// Waits before each retry; after the last, the endpoint is disabled.
    pub retry_schedule: Vec<Duration>,
    /// Per request.
    pub timeout: Duration,
    /// How often due endpoints are looked for.
    pub poll_interval: Duration,
    /// Endpoints delivered to at once.
    pub concurrency: usize,
}

/// Endpoints and deliveries.
#[derive(Clone)]
pub struct Webhooks {
    store: Store,
    settings: Arc<WebhookSettings>,
}

impl Webhooks {
    pub fn new(store: Store, settings: WebhookSettings) -> Webhooks {
        Webhooks {
            store,
            settings: Arc::new(settings),
        }
    }

    /// Registers an endpoint of an account (or the operator's, `None`) for `event_types` (empty: all). It
    /// receives the events that happen from now on.
    pub async fn create(
        &self,
        account_id: Option<AccountId>,
        url: &str,
        event_types: Vec<String>,
    ) -> Result<Endpoint, BillingError> {
        if event_types.len() > MAX_EVENT_TYPES {
            return Err(BillingError::invalid("event_types", "too many"));
        }
        if let Some(unknown) = event_types
            .iter()
            .find(|kind| EventType::parse(kind).is_none())
        {
            return Err(BillingError::invalid(
                "event_types",
                format!("unknown event type {unknown:?}"),
            ));
        }
        target::resolve(url, self.settings.allow_private_targets).await?;
        let endpoint = Endpoint {
            id: WebhookId::generate(),
            account_id,
            url: url.to_string(),
            event_types,
            secret: signing::new_secret(),
            created_at: time::now_ms(),
            disabled_at: None,
            delivered_seq: 0,
            failures: 0,
            next_attempt_at: 0,
        };
        let stored = endpoint.clone();
        self.store
            .write(Shard::Webhooks, move |batch| {
                Box::pin(async move { Ok(sql::insert(batch.connection().await?, &stored).await?) })
            })
            .await?;
        tracing::info!(endpoint_id = %endpoint.id, "webhook endpoint created");
        Ok(endpoint)
    }

    pub async fn list(
        &self,
        account_id: Option<&AccountId>,
    ) -> Result<Vec<Endpoint>, BillingError> {
        let mut connection = self.store.reader().acquire().await?;
        Ok(sql::list(&mut connection, account_id).await?)
    }

    /// Removes an endpoint of the account (or of the operator).
    pub async fn delete(
        &self,
        id: &str,
        account_id: Option<AccountId>,
    ) -> Result<(), BillingError> {
        let id = id.to_string();
        let deleted = self
            .store
            .write(Shard::Webhooks, move |batch| {
                Box::pin(async move {
                    Ok(sql::delete(
                        batch.connection().await?,
                        &id,
                        account_id.as_ref(),
                        time::now_ms(),
                    )
                    .await?)
                })
            })
            .await?;
        if deleted {
            Ok(())
        } else {
            Err(BillingError::NotFound("webhook endpoint"))
        }
    }

    /// The delivery attempts of an event, oldest first.
    pub async fn attempts(&self, event_id: &str) -> Result<Vec<Attempt>, BillingError> {
        let mut connection = self.store.reader().acquire().await?;
        Ok(sql::attempts_of(&mut connection, event_id).await?)
    }

    /// Posts one event again, now, to every enabled endpoint subscribed to it (the account's and the
    /// operator's); the cursors do not move. Returns the attempts made.
    pub async fn redeliver(&self, event_id: &str) -> Result<Vec<Attempt>, BillingError> {
        let (event, endpoints) = {
            let mut connection = self.store.reader().acquire().await?;
            let event = events::sql::by_id(&mut connection, event_id)
                .await?
                .ok_or(BillingError::NotFound("event"))?;
            let mut endpoints = sql::list(&mut connection, Some(&event.account_id)).await?;
            endpoints.extend(sql::list(&mut connection, None).await?);
            (event, endpoints)
        };
        let mut attempts = Vec::new();
        for endpoint in endpoints.iter().filter(|endpoint| {
            endpoint.disabled_at.is_none() && endpoint.wants(event.kind.as_str())
        }) {
            let previous = self.attempts(event_id).await?;
            let number = previous
                .iter()
                .filter(|attempt| attempt.endpoint_id == endpoint.id)
                .count();
            let attempt = self
                .send(
                    endpoint,
                    &event,
                    i64::try_from(number).unwrap_or(i64::MAX) + 1,
                )
                .await;
            self.record(attempt.clone()).await?;
            attempts.push(attempt);
        }
        Ok(attempts)
    }

    /// Delivers until told to stop.
    pub async fn run(self, stop: watch::Receiver<bool>) {
        let interval = self.settings.poll_interval;
        lifecycle::every(interval, stop, "webhook delivery round", || self.round()).await;
    }

    /// One round: claims the due endpoints and serves each.
    async fn round(&self) -> Result<(), BillingError> {
        let now = time::now_ms();
        // A round stops posting once it has run for the timeout, so it ends within two timeouts; the lease
        // covers that and lapses soon after a crash.
        let lease = i64::try_from((self.settings.timeout * 2 + LEASE_MARGIN).as_millis())
            .unwrap_or(i64::MAX / 2);
        let limit = i64::try_from(self.settings.concurrency).unwrap_or(8);
        let claimed = self
            .store
            .write(Shard::Webhooks, move |batch| {
                Box::pin(async move {
                    Ok(sql::claim_due(batch.connection().await?, now, now + lease, limit).await?)
                })
            })
            .await?;
        let served = claimed.into_iter().map(|endpoint| self.serve(endpoint));
        for result in futures::future::join_all(served).await {
            if let Err(error) = result {
                tracing::warn!(%error, "webhook endpoint round failed");
            }
        }
        Ok(())
    }

    /// Posts an endpoint's next events in order until one fails or the round's share is done, then saves
    /// where it stands (which frees its lease).
    async fn serve(&self, mut endpoint: Endpoint) -> Result<(), BillingError> {
        let pending = {
            let mut connection = self.store.reader().acquire().await?;
            let limit = i64::try_from(EVENTS_PER_ROUND).unwrap_or(50);
            events::sql::after(
                &mut connection,
                endpoint.delivered_seq,
                endpoint.account_id.as_ref(),
                limit,
            )
            .await?
        };
        let mut disabled_event = None;
        let started = Instant::now();
        for event in pending {
            if started.elapsed() > self.settings.timeout {
                break;
            }
            if !endpoint.wants(event.kind.as_str()) {
                endpoint.delivered_seq = event.seq;
                continue;
            }
            let attempt = self.send(&endpoint, &event, endpoint.failures + 1).await;
            let succeeded = attempt.succeeded;
            self.record(attempt).await?;
            if succeeded {
                endpoint.delivered_seq = event.seq;
                endpoint.failures = 0;
                endpoint.next_attempt_at = 0;
                continue;
            }
            endpoint.failures += 1;
            let now = time::now_ms();
            match self
                .settings
                .retry_schedule
                .get(usize::try_from(endpoint.failures - 1).unwrap_or(usize::MAX))
            {
                Some(wait) => {
                    endpoint.next_attempt_at =
                        now + i64::try_from(wait.as_millis()).unwrap_or(i64::MAX / 2);
                }
                None => {
                    endpoint.disabled_at = Some(now);
                    tracing::warn!(endpoint_id = %endpoint.id, url = %endpoint.url, "webhook endpoint disabled after its last retry");
                    disabled_event = endpoint.account_id.clone().map(|account_id| {
                        Event::new(
                            &account_id,
                            EventType::WebhookDisabled,
                            json!({"endpointId": endpoint.id, "url": endpoint.url, "eventId": event.id.as_str(), "attempts": endpoint.failures}),
                            now,
                        )
                    });
                }
            }
            break;
        }
        let saved = endpoint.clone();
        self.store
            .write(Shard::Webhooks, move |batch| {
                Box::pin(async move {
                    sql::save_progress(batch.connection().await?, &saved).await?;
                    if let Some(event) = disabled_event {
                        batch.emit(event);
                    }
                    Ok(())
                })
            })
            .await
    }

    async fn record(&self, attempt: Attempt) -> Result<(), BillingError> {
        self.store
            .write(Shard::Webhooks, move |batch| {
                Box::pin(async move {
                    Ok(sql::insert_attempt(batch.connection().await?, &attempt).await?)
                })
            })
            .await
    }

    /// Posts one event to one endpoint and says how it went.
    async fn send(&self, endpoint: &Endpoint, event: &Event, attempt: i64) -> Attempt {
        let started = Instant::now();
        let at = time::now_ms();
        let result = self.post(endpoint, event).await;
        let duration_ms = i64::try_from(started.elapsed().as_millis()).unwrap_or(i64::MAX);
        let (status, error, succeeded) = match result {
            Ok(status) if (200..300).contains(&status) => (Some(i64::from(status)), None, true),
            Ok(status) => (
                Some(i64::from(status)),
                Some(format!("the receiver answered {status}")),
                false,
            ),
            Err(error) => (None, Some(error), false),
        };
        Attempt {
            endpoint_id: endpoint.id.clone(),
            event_id: event.id.to_string(),
            attempt,
            at,
            status,
            error,
            duration_ms,
            succeeded,
        }
    }

    /// The HTTP request: the body, the three Standard Webhooks headers, no redirects, pinned addresses.
    async fn post(&self, endpoint: &Endpoint, event: &Event) -> Result<u16, String> {
        let target = target::resolve(&endpoint.url, self.settings.allow_private_targets)
            .await
            .map_err(|error| error.to_string())?;
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(self.settings.timeout)
            .resolve_to_addrs(&target.host, &target.addresses)
            .build()
            .map_err(|error| format!("client: {error}"))?;
        let body = body(event);
        let timestamp = time::now_ms() / 1000;
        let signature = signing::sign(&endpoint.secret, event.id.as_str(), timestamp, &body);
        let response = client
            .post(target.url)
            .header("content-type", "application/json")
            .header("user-agent", "token-billing-webhooks/1")
            .header("webhook-id", event.id.as_str())
            .header("webhook-timestamp", timestamp.to_string())
            .header("webhook-signature", signature)
            .body(body)
            .send()
            .await
            .map_err(|error| format!("request failed: {error}"))?;
        Ok(response.status().as_u16())
    }
}

/// The delivered body: `{id, type, timestamp, data}`, the account in `data.accountId`.
pub fn body(event: &Event) -> String {
    let mut data = event.data.clone();
    if let Some(object) = data.as_object_mut() {
        object.insert("accountId".into(), event.account_id.as_str().into());
    }
    json!({
        "id": event.id.as_str(),
        "type": event.kind.as_str(),
        "timestamp": time::to_rfc3339(event.created_at),
        "data": data,
    })
    .to_string()
}
