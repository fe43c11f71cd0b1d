//! The service's error type, and its one mapping to gRPC statuses.
//!
//! Domain variants say what the caller did wrong or why money was refused; infrastructure variants
//! (database, migrations) become an opaque `INTERNAL` status whose cause is logged, never sent.

use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};

use money::Money;
use proto::refusal::Refusal;

/// Whose cap refused a charge: the account's, or the calling key's own (its policy).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    Account,
    Key,
}

impl Scope {
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Account => "account",
            Scope::Key => "key",
        }
    }
}

/// A key's rate or concurrency limit (BILLING.md, "Limits").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RateLimit {
    RequestsPerMinute,
    TokensPerMinute,
    Concurrency,
}

impl RateLimit {
    pub fn reason(self) -> Refusal {
        match self {
            RateLimit::RequestsPerMinute => Refusal::RequestsPerMinuteExceeded,
            RateLimit::TokensPerMinute => Refusal::TokensPerMinuteExceeded,
            RateLimit::Concurrency => Refusal::ConcurrencyLimitExceeded,
        }
    }
}

/// The `google.rpc.ErrorInfo` domain of credit refusals.
pub const ERROR_DOMAIN: &str = "billing";

#[derive(Debug, thiserror::Error)]
pub enum BillingError {
    #[error("missing credentials: send `authorization: Bearer <key>`")]
    MissingCredentials,
    #[error("malformed authorization metadata: expected `Bearer <key>`")]
    MalformedCredentials,
    #[error("invalid API key")]
    UnknownKey,
    #[error("API key revoked")]
    KeyRevoked,
    /// An operation on a key (rotate, update) that names a revoked key: the key's state, not the caller's
    /// credentials.
    #[error("the key is revoked: a revoked key cannot be rotated or changed")]
    TargetKeyRevoked,
    #[error("API key expired")]
    KeyExpired,
    #[error("console session ended or expired: sign in again")]
    SessionEnded,
    #[error("this call needs the admin key")]
    AdminRequired,
    #[error("this call needs an owner key of the account")]
    OwnerRequired,
    #[error("the Stripe-Signature does not match the body, or is too old")]
    InvalidSignature,
    #[error("payments are not configured (STRIPE_SECRET_KEY, STRIPE_WEBHOOK_SECRET)")]
    PaymentsNotConfigured,
    #[error("the payment provider failed: {0}")]
    PaymentProvider(String),
    #[error("no saved card: pay once through Checkout (POST /billing/checkout) to save one")]
    NoSavedCard,
    #[error("this call needs the service token")]
    ServiceTokenRequired,
    #[error("invalid {field}: {reason}")]
    InvalidArgument { field: &'static str, reason: String },
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error("insufficient credits")]
    InsufficientCredits { balance: Money },
    #[error("daily spend limit reached")]
    DailyLimitExceeded {
        balance: Money,
        limit: Money,
        scope: Scope,
    },
    #[error("monthly spend limit reached")]
    MonthlyLimitExceeded {
        balance: Money,
        limit: Money,
        scope: Scope,
    },
    #[error("{} ({limit}); retry in {retry_after_secs} s", .kind.reason().as_str())]
    RateLimited {
        kind: RateLimit,
        limit: u64,
        retry_after_secs: u64,
    },
    #[error("model {model:?} is not allowed for this API key")]
    ModelNotAllowed { model: String },
    /// No price row prices the model (none of its own, no `*`): refused before anything is held.
    #[error("model {model:?} has no price: the operator has not priced it")]
    ModelNotPriced { model: String },

    #[error("idempotency key already used with a different request")]
    IdempotencyConflict,
    #[error("execution id already used")]
    ExecutionExists,
    #[error("usage record already refunded with a different amount")]
    AlreadyRefunded,
    #[error("refund exceeds what the usage record was charged ({charged})")]
    RefundExceedsCharge { charged: Money },
    #[error("usage record was not charged, nothing to refund")]
    NothingToRefund,
    #[error("adjustment would take the available balance below zero")]
    WouldOverdraw,
    #[error("metering protocol: {0}")]
    Protocol(&'static str),
    #[error("metering stream idle for {secs} s: closed; the hold stays until settled or expired")]
    StreamIdle { secs: u64 },
    #[error("amount out of range")]
    Overflow,
    #[error("database error")]
    Database(#[from] sqlx::Error),
    #[error("commit failed")]
    Commit(std::sync::Arc<sqlx::Error>),
    #[error("write not performed, retry")]
    WriteAborted,
    #[error("migration error")]
    Migration(#[from] sqlx::migrate::MigrateError),
}

impl BillingError {
    pub fn invalid(field: &'static str, reason: impl Into<String>) -> BillingError {
        BillingError::InvalidArgument {
            field,
            reason: reason.into(),
        }
    }

    /// The stable snake_case code of a refusal and its `ErrorInfo` metadata, shared with the gateway's
    /// JSON errors.
    fn refusal(&self) -> Option<(Refusal, Vec<(&'static str, String)>)> {
        match self {
            BillingError::InsufficientCredits { balance } => Some((
                Refusal::InsufficientCredits,
                vec![("current_balance", balance.to_string())],
            )),
            BillingError::DailyLimitExceeded {
                balance,
                limit,
                scope,
            } => Some((
                Refusal::DailyLimitExceeded,
                vec![
                    ("current_balance", balance.to_string()),
                    ("limit", limit.to_string()),
                    ("scope", scope.as_str().to_string()),
                ],
            )),
            BillingError::MonthlyLimitExceeded {
                balance,
                limit,
                scope,
            } => Some((
                Refusal::MonthlyLimitExceeded,
                vec![
                    ("current_balance", balance.to_string()),
                    ("limit", limit.to_string()),
                    ("scope", scope.as_str().to_string()),
                ],
            )),
            BillingError::RateLimited {
                kind,
                limit,
                retry_after_secs,
            } => Some((
                kind.reason(),
                vec![
                    ("limit", limit.to_string()),
                    ("retry_after_secs", retry_after_secs.to_string()),
                ],
            )),
            BillingError::ModelNotAllowed { model } => {
                Some((Refusal::ModelNotAllowed, vec![("model", model.clone())]))
            }
            BillingError::ModelNotPriced { model } => {
                Some((Refusal::ModelNotPriced, vec![("model", model.clone())]))
            }
            BillingError::TargetKeyRevoked => Some((Refusal::KeyRevoked, Vec::new())),
            BillingError::InvalidSignature => Some((Refusal::InvalidSignature, Vec::new())),
            BillingError::PaymentsNotConfigured => {
                Some((Refusal::PaymentsNotConfigured, Vec::new()))
            }
            _ => None,
        }
    }

    fn code(&self) -> Code {
        match self {
            BillingError::MissingCredentials
            | BillingError::MalformedCredentials
            | BillingError::UnknownKey
            | BillingError::KeyRevoked
            | BillingError::KeyExpired
            | BillingError::SessionEnded => Code::Unauthenticated,
            BillingError::AdminRequired
            | BillingError::OwnerRequired
            | BillingError::ServiceTokenRequired => Code::PermissionDenied,
            BillingError::InvalidArgument { .. }
            | BillingError::Protocol(_)
            | BillingError::InvalidSignature => Code::InvalidArgument,
            BillingError::PaymentsNotConfigured => Code::Unavailable,
            BillingError::PaymentProvider(_) => Code::Unavailable,
            BillingError::NotFound(_) | BillingError::ModelNotPriced { .. } => Code::NotFound,
            BillingError::InsufficientCredits { .. }
            | BillingError::DailyLimitExceeded { .. }
            | BillingError::MonthlyLimitExceeded { .. }
            | BillingError::RateLimited { .. } => Code::ResourceExhausted,
            BillingError::ModelNotAllowed { .. } => Code::PermissionDenied,
            BillingError::IdempotencyConflict
            | BillingError::ExecutionExists
            | BillingError::AlreadyRefunded => Code::AlreadyExists,
            BillingError::RefundExceedsCharge { .. }
            | BillingError::TargetKeyRevoked
            | BillingError::NoSavedCard
            | BillingError::NothingToRefund
            | BillingError::WouldOverdraw => Code::FailedPrecondition,
            BillingError::Overflow => Code::OutOfRange,
            BillingError::StreamIdle { .. } => Code::DeadlineExceeded,
            // The database is down or saturated: the caller may retry the same request later.
            BillingError::Database(error) => database_code(error),
            BillingError::Commit(error) => database_code(error),
            BillingError::WriteAborted => Code::Unavailable,
            BillingError::Migration(_) => Code::Internal,
        }
    }
}

/// Unavailable when the database cannot be reached or is saturated (a retry may succeed), internal otherwise.
fn database_code(error: &sqlx::Error) -> Code {
    match error {
        sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::Io(_)
        | sqlx::Error::WorkerCrashed => Code::Unavailable,
        sqlx::Error::Database(error) if transient_database_error(error.as_ref()) => {
            Code::Unavailable
        }
        _ => Code::Internal,
    }
}

/// Database errors that say the storage is (for now) unusable rather than that the statement was wrong:
/// SQLite's busy / locked / read-only / I/O / full / cannot-open result codes (the primary code is the low
/// byte of the extended code sqlx reports), and PostgreSQL's connection exceptions (SQLSTATE class 08),
/// insufficient resources (class 53: disk full, too many connections), shutdown and start-up states
/// (57P01-57P03) and a read-only standby (25006).
fn transient_database_error(error: &dyn sqlx::error::DatabaseError) -> bool {
    let Some(code) = error.code() else {
        return false;
    };
    if error
        .try_downcast_ref::<sqlx::sqlite::SqliteError>()
        .is_some()
    {
        const BUSY: u32 = 5;
        const LOCKED: u32 = 6;
        const READONLY: u32 = 8;
        const IOERR: u32 = 10;
        const FULL: u32 = 13;
        const CANTOPEN: u32 = 14;
        return code.parse::<u32>().is_ok_and(|extended| {
            matches!(
                extended & 0xff,
                BUSY | LOCKED | READONLY | IOERR | FULL | CANTOPEN
            )
        });
    }
    if error
        .try_downcast_ref::<sqlx::postgres::PgDatabaseError>()
        .is_some()
    {
        return code.starts_with("08")
            || code.starts_with("53")
            || matches!(code.as_ref(), "57P01" | "57P02" | "57P03" | "25006");
    }
    false
}

impl From<BillingError> for Status {
    fn from(error: BillingError) -> Status {
        let code = error.code();
        if let BillingError::Database(_)
        | BillingError::Commit(_)
        | BillingError::WriteAborted
        | BillingError::Migration(_) = &error
        {
            tracing::error!(error = ?error, "database failure");
            let message = match code {
                Code::Unavailable => "database unavailable, retry later",
                _ => "internal error",
            };
            return Status::new(code, message);
        }
        match error.refusal() {
            Some((reason, metadata)) => {
                let metadata = metadata
                    .into_iter()
                    .map(|(name, value)| (name.to_string(), value))
                    .collect::<std::collections::HashMap<_, _>>();
                Status::with_error_details(
                    code,
                    error.to_string(),
                    ErrorDetails::with_error_info(reason.as_str(), ERROR_DOMAIN, metadata),
                )
            }
            None => Status::new(code, error.to_string()),
        }
    }
}
