//! What billing-svc and executor-svc attach to a refusal as its `google.rpc.ErrorInfo` detail, read back:
//! a refusal to spend (402), a key's rate limit (429) and the model provider's own error.

use axum::http::StatusCode;
use tonic_types::StatusExt;

use crate::money::Usd;

/// Why billing refused to spend (the `reason` of the `google.rpc.ErrorInfo` detail).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CreditReason {
    InsufficientCredits,
    DailyLimitExceeded,
    MonthlyLimitExceeded,
}

impl CreditReason {
    pub(super) fn from_reason(reason: &str) -> Option<CreditReason> {
        match reason {
            "insufficient_credits" => Some(CreditReason::InsufficientCredits),
            "daily_limit_exceeded" => Some(CreditReason::DailyLimitExceeded),
            "monthly_limit_exceeded" => Some(CreditReason::MonthlyLimitExceeded),
            _ => None,
        }
    }

    pub fn code(self) -> &'static str {
        match self {
            CreditReason::InsufficientCredits => "insufficient_credits",
            CreditReason::DailyLimitExceeded => "daily_limit_exceeded",
            CreditReason::MonthlyLimitExceeded => "monthly_limit_exceeded",
        }
    }

    pub(super) fn title(self) -> &'static str {
        match self {
            CreditReason::InsufficientCredits => "Insufficient Credits",
            CreditReason::DailyLimitExceeded => "Daily Limit Exceeded",
            CreditReason::MonthlyLimitExceeded => "Monthly Limit Exceeded",
        }
    }
}

/// A refusal to spend: HTTP 402.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreditRefusal {
    pub reason: CreditReason,
    pub current_balance: Option<Usd>,
    pub limit: Option<Usd>,
    /// Whose cap: `account` or `key` (caps only).
    pub scope: Option<String>,
}

/// A key's rate or concurrency limit reached (BILLING.md, "Limits"): HTTP 429 with `Retry-After`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyRateLimit {
    /// `requests_per_minute_exceeded`, `tokens_per_minute_exceeded` or `concurrency_limit_exceeded`.
    pub code: &'static str,
    pub limit: Option<u64>,
    pub retry_after_secs: u64,
}

impl KeyRateLimit {
    pub(super) fn from_status(status: &tonic::Status) -> Option<KeyRateLimit> {
        let info = status.get_details_error_info()?;
        let code = match info.reason.as_str() {
            "requests_per_minute_exceeded" => "requests_per_minute_exceeded",
            "tokens_per_minute_exceeded" => "tokens_per_minute_exceeded",
            "concurrency_limit_exceeded" => "concurrency_limit_exceeded",
            _ => return None,
        };
        let number = |key: &str| info.metadata.get(key).and_then(|text| text.parse().ok());
        Some(KeyRateLimit {
            code,
            limit: number("limit"),
            retry_after_secs: number("retry_after_secs").unwrap_or(1).max(1),
        })
    }

    pub(super) fn title(&self) -> &'static str {
        match self.code {
            "requests_per_minute_exceeded" => "Requests Per Minute Exceeded",
            "tokens_per_minute_exceeded" => "Tokens Per Minute Exceeded",
            _ => "Concurrency Limit Exceeded",
        }
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
        let reason = CreditReason::from_reason(&info.reason)?;
        let amount = |key: &str| {
            let text = info.metadata.get(key)?;
            match text.parse::<Usd>() {
                Ok(amount) => Some(amount),
                Err(error) => {
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
