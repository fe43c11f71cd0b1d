//! Events, the transactional outbox (BILLING.md, "Events and alerts"): an operation writes the events it
//! causes in its own transaction, so an event exists exactly when its change does. [`webhooks`] delivers
//! them, [`mail`] mails some of them; [`alerts`] decides when a `balance.low` event is due.

pub mod alerts;
pub mod mail;
pub mod ops;
pub mod sql;
pub mod webhooks;

use proto::ids::{AccountId, EventId};

use crate::time::Millis;

/// What happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventType {
    CreditsAdded,
    CreditsExpired,
    BalanceLow,
    BalanceDepleted,
    ExecutionCutOff,
    LimitReached,
    KeyCreated,
    KeyRotated,
    KeyRevoked,
    KeyExpiring,
    PaymentSucceeded,
    PaymentFailed,
    AutoRechargeSucceeded,
    AutoRechargeFailed,
    WebhookDisabled,
    StatementReady,
    UsageWeeklyReport,
}

impl EventType {
    pub const ALL: [EventType; 17] = [
        EventType::CreditsAdded,
        EventType::CreditsExpired,
        EventType::BalanceLow,
        EventType::BalanceDepleted,
        EventType::ExecutionCutOff,
        EventType::LimitReached,
        EventType::KeyCreated,
        EventType::KeyRotated,
        EventType::KeyRevoked,
        EventType::KeyExpiring,
        EventType::PaymentSucceeded,
        EventType::PaymentFailed,
        EventType::AutoRechargeSucceeded,
        EventType::AutoRechargeFailed,
        EventType::WebhookDisabled,
        EventType::StatementReady,
        EventType::UsageWeeklyReport,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            EventType::CreditsAdded => "credits.added",
            EventType::CreditsExpired => "credits.expired",
            EventType::BalanceLow => "balance.low",
            EventType::BalanceDepleted => "balance.depleted",
            EventType::ExecutionCutOff => "execution.cut_off",
            EventType::LimitReached => "limit.reached",
            EventType::KeyCreated => "key.created",
            EventType::KeyRotated => "key.rotated",
            EventType::KeyRevoked => "key.revoked",
            EventType::KeyExpiring => "key.expiring",
            EventType::PaymentSucceeded => "payment.succeeded",
            EventType::PaymentFailed => "payment.failed",
            EventType::AutoRechargeSucceeded => "auto_recharge.succeeded",
            EventType::AutoRechargeFailed => "auto_recharge.failed",
            EventType::WebhookDisabled => "webhook.disabled",
            EventType::StatementReady => "statement.ready",
            EventType::UsageWeeklyReport => "usage.weekly_report",
        }
    }

    pub fn parse(text: &str) -> Option<EventType> {
        EventType::ALL
            .into_iter()
            .find(|kind| kind.as_str() == text)
    }
}

/// One event of the outbox.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    /// Its place in the outbox (the order of delivery).
    pub seq: i64,
    pub id: EventId,
    pub account_id: AccountId,
    pub kind: EventType,
    /// The JSON object of the event's `data`.
    pub data: serde_json::Value,
    pub created_at: Millis,
}

impl Event {
    /// A new event (its `seq` is given by the database).
    pub fn new(
        account_id: &AccountId,
        kind: EventType,
        data: serde_json::Value,
        now: Millis,
    ) -> Event {
        Event {
            seq: 0,
            id: EventId::generate(),
            account_id: account_id.clone(),
            kind,
            data,
            created_at: now,
        }
    }
}
