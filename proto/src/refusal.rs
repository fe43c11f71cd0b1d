//! Why billing-svc refused: the `reason` of the `google.rpc.ErrorInfo` detail (domain `billing`) it attaches
//! to a refusal status, and the `reason` of a `MeterStop` (credit, a cap, or an expired hold). One enum, written by billing-svc and read back by the gateway
//! (BILLING.md, "Limits"; QUICK_START.md lists the HTTP status and code of each).

/// A refusal's reason; on the wire, its snake_case code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Refusal {
    InsufficientCredits,
    DailyLimitExceeded,
    MonthlyLimitExceeded,
    RequestsPerMinuteExceeded,
    TokensPerMinuteExceeded,
    ConcurrencyLimitExceeded,
    ModelNotAllowed,
    ModelNotPriced,
    KeyRevoked,
    InvalidSignature,
    PaymentsNotConfigured,
    /// A `MeterStop` only: the hold's time to live passed before the execution settled.
    HoldExpired,
}

impl Refusal {
    pub const ALL: [Refusal; 12] = [
        Refusal::InsufficientCredits,
        Refusal::DailyLimitExceeded,
        Refusal::MonthlyLimitExceeded,
        Refusal::RequestsPerMinuteExceeded,
        Refusal::TokensPerMinuteExceeded,
        Refusal::ConcurrencyLimitExceeded,
        Refusal::ModelNotAllowed,
        Refusal::ModelNotPriced,
        Refusal::KeyRevoked,
        Refusal::InvalidSignature,
        Refusal::PaymentsNotConfigured,
        Refusal::HoldExpired,
    ];

    /// The code on the wire, which is also the public API's `code`.
    pub fn as_str(self) -> &'static str {
        match self {
            Refusal::InsufficientCredits => "insufficient_credits",
            Refusal::DailyLimitExceeded => "daily_limit_exceeded",
            Refusal::MonthlyLimitExceeded => "monthly_limit_exceeded",
            Refusal::RequestsPerMinuteExceeded => "requests_per_minute_exceeded",
            Refusal::TokensPerMinuteExceeded => "tokens_per_minute_exceeded",
            Refusal::ConcurrencyLimitExceeded => "concurrency_limit_exceeded",
            Refusal::ModelNotAllowed => "model_not_allowed",
            Refusal::ModelNotPriced => "model_not_priced",
            Refusal::KeyRevoked => "key_revoked",
            Refusal::InvalidSignature => "invalid_signature",
            Refusal::PaymentsNotConfigured => "payments_not_configured",
            Refusal::HoldExpired => "hold_expired",
        }
    }

    /// The refusal a code names; `None` for a code this build does not know.
    pub fn parse(code: &str) -> Option<Refusal> {
        Refusal::ALL
            .into_iter()
            .find(|refusal| refusal.as_str() == code)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_reads_back_as_its_refusal() {
        for refusal in Refusal::ALL {
            assert_eq!(Refusal::parse(refusal.as_str()), Some(refusal));
        }
        assert_eq!(Refusal::parse("Insufficient_Credits"), None);
    }
}
