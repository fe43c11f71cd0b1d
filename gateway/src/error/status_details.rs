//! What billing-svc and executor-svc attach to a refusal as its `google.rpc.ErrorInfo` detail, read back:
//! a refusal to spend (402), a key's rate limit (429) and the model provider's own error.

use axum::http::StatusCode;
use tonic_types::StatusExt;

use proto::refusal::Refusal;

use money::Money;

/// The title of a refusal's error body, e.g. "Insufficient Credits" for `insufficient_credits`.
pub fn title(refusal: Refusal) -> &'static str {
    match refusal {
        Refusal::InsufficientCredits => "Insufficient Credits",
        Refusal::DailyLimitExceeded => "Daily Limit Exceeded",
        Refusal::MonthlyLimitExceeded => "Monthly Limit Exceeded",
        Refusal::RequestsPerMinuteExceeded => "Requests Per Minute Exceeded",
        Refusal::TokensPerMinuteExceeded => "Tokens Per Minute Exceeded",
        Refusal::ConcurrencyLimitExceeded => "Concurrency Limit Exceeded",
        Refusal::ModelNotAllowed => "Model Not Allowed",
        Refusal::ModelNotPriced => "Model Not Priced",
        Refusal::KeyRevoked => "Key Revoked",
        Refusal::InvalidSignature => "Invalid Signature",
        Refusal::PaymentsNotConfigured => "Payments Not Configured",
        Refusal::HoldExpired => "Hold Expired",
    }
}

/// A refusal to spend: HTTP 402.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreditRefusal {
    /// `InsufficientCredits`, `DailyLimitExceeded` or `MonthlyLimitExceeded`.
    pub reason: Refusal,
    pub current_balance: Option<Money>,
    pub limit: Option<Money>,
    /// Whose cap: `account` or `key` (caps only).
    pub scope: Option<String>,
}

/// A key's rate or concurrency limit reached (BILLING.md, "Limits"): HTTP 429 with `Retry-After`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyRateLimit {
    /// `RequestsPerMinuteExceeded`, `TokensPerMinuteExceeded` or `ConcurrencyLimitExceeded`.
    pub refusal: Refusal,
    pub limit: Option<u64>,
    pub retry_after_secs: u64,
}

impl KeyRateLimit {
    pub(super) fn from_status(status: &tonic::Status) -> Option<KeyRateLimit> {
        let info = status.get_details_error_info()?;
        let refusal = Refusal::parse(&info.reason).filter(|refusal| {
            matches!(
                refusal,
                Refusal::RequestsPerMinuteExceeded
                    | Refusal::TokensPerMinuteExceeded
                    | Refusal::ConcurrencyLimitExceeded
            )
        })?;
        let number = |key: &str| info.metadata.get(key).and_then(|text| text.parse().ok());
        Some(KeyRateLimit {
            refusal,
            limit: number("limit"),
            retry_after_secs: number("retry_after_secs").unwrap_or(1).max(1),
        })
    }
}

/// An error of the model provider, from the `ErrorInfo` (domain `provider`) executor-svc attaches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProviderFailure {
    pub http_status: u16,
    pub message: String,
    /// OpenAI's `type`.
    pub kind: Option<String>,
    pub code: Option<String>,
    pub param: Option<String>,
    pub retry_after_secs: Option<u64>,
}

impl ProviderFailure {
    pub(super) fn from_status(status: &tonic::Status) -> Option<ProviderFailure> {
        let info = status.get_details_error_info()?;
        if info.domain != PROVIDER_ERROR_DOMAIN {
            return None;
        }
        let text = |key: &str| info.metadata.get(key).cloned();
        Some(ProviderFailure {
            http_status: text("http_status")?.parse().ok()?,
            message: status.message().to_string(),
            kind: text("type"),
            code: text("code"),
            param: text("param"),
            retry_after_secs: text("retry_after_secs").and_then(|secs| secs.parse().ok()),
        })
    }

    /// The client's status: the provider's own for its 4xx about the request; 502 when the provider failed
    /// or refused the platform's credentials (not the client's doing).
    pub fn client_status(&self) -> StatusCode {
        match StatusCode::from_u16(self.http_status) {
            Ok(status)
                if status.is_client_error()
                    && status != StatusCode::UNAUTHORIZED
                    && status != StatusCode::FORBIDDEN =>
            {
                status
            }
            Ok(_) | Err(_) => StatusCode::BAD_GATEWAY,
        }
    }
}

/// The `ErrorInfo` domain executor-svc gives the provider's errors (executor.proto).
const PROVIDER_ERROR_DOMAIN: &str = "provider";

impl CreditRefusal {
    /// Reads the credit refusal of a RESOURCE_EXHAUSTED status, if it is one.
    pub(super) fn from_status(status: &tonic::Status) -> Option<CreditRefusal> {
        let info = status.get_details_error_info()?;
        let reason = Refusal::parse(&info.reason).filter(|refusal| {
            matches!(
                refusal,
                Refusal::InsufficientCredits
                    | Refusal::DailyLimitExceeded
                    | Refusal::MonthlyLimitExceeded
            )
        })?;
        let amount = |key: &str| {
            let text = info.metadata.get(key)?;
            match Money::parse_decimal(text) {
                Ok(amount) => Some(amount),
                Err(error) => {
                    let error = error.naming(text);
                    tracing::warn!(key, %error, "billing sent an unreadable amount in a credit refusal");
                    None
                }
            }
        };
        Some(CreditRefusal {
            reason,
            current_balance: amount("current_balance"),
            limit: amount("limit"),
            scope: info.metadata.get("scope").cloned(),
        })
    }
}
