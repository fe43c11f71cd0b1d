//! The billing figures `/v1` answers carry: `x-billing-*` headers on whole answers, a `billing` object on
//! a stream's last chunk (internal keys get neither), and OpenAI's `x-ratelimit-*` headers for keys with
//! per-minute limits.

use axum::http::{HeaderMap, HeaderName, HeaderValue};
use proto::executor::v1::RateLimits;
use serde::Serialize;
use utoipa::ToSchema;

use crate::model_api::execution_summary::Billing;
use money::Money;
use proto::ending::FinishReason;

/// Why billing ended an answer early.
pub const CUT_OFF_CREDIT: &str = "credit_exhausted";

/// The account after the charge (standard keys only).
#[derive(Debug, Serialize, ToSchema)]
pub struct ChunkBilling {
    /// `settled`, or `pending` when the settlement was spooled (see `/execute`).
    pub status: &'static str,
    /// The execution's total cost; absent while pending.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cost: Option<Money>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub balance_after: Option<Money>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub total_spent: Option<Money>,
    /// `credit_exhausted` when credit or a cap ran out and the answer was cut short (its unfinished
    /// choices end with `finish_reason: "length"`); absent otherwise.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cut_off: Option<&'static str>,
}

/// The billing object of a charge; `None` for internal keys.
pub fn chunk_billing(
    cost: Option<Money>,
    billing: Option<&Billing>,
    finish: FinishReason,
) -> Option<ChunkBilling> {
    let cut_off = (finish == FinishReason::CreditExhausted).then_some(CUT_OFF_CREDIT);
    match billing? {
        Billing::Settled {
            balance_after,
            total_spent,
        } => Some(ChunkBilling {
            status: "settled",
            cost,
            balance_after: Some(*balance_after),
            total_spent: Some(*total_spent),
            cut_off,
        }),
        Billing::Pending { .. } => Some(ChunkBilling {
            status: "pending",
            cost,
            balance_after: None,
            total_spent: None,
            cut_off,
        }),
    }
}

/// `x-billing-status` (`settled` | `pending`), and when settled `x-billing-cost`,
/// `x-billing-balance-after` and `x-billing-total-spent`, all exact decimal USD; `x-billing-cut-off` when
/// billing ended the answer early.
pub fn billing_headers(billing: Option<ChunkBilling>) -> HeaderMap {
    let mut headers = HeaderMap::new();
    let Some(billing) = billing else {
        return headers;
    };
    let mut put = |name: &'static str, value: String| {
        if let Ok(value) = HeaderValue::from_str(&value) {
            headers.insert(HeaderName::from_static(name), value);
        }
    };
    put("x-billing-status", billing.status.to_string());
    if let Some(cost) = billing.cost {
        put("x-billing-cost", cost.to_string());
    }
    if let Some(balance_after) = billing.balance_after {
        put("x-billing-balance-after", balance_after.to_string());
    }
    if let Some(total_spent) = billing.total_spent {
        put("x-billing-total-spent", total_spent.to_string());
    }
    if let Some(cut_off) = billing.cut_off {
        put("x-billing-cut-off", cut_off.to_string());
    }
    headers
}

/// OpenAI's rate-limit headers for a key with per-minute limits (README.md, "The OpenAI-compatible API"):
/// `x-ratelimit-{limit,remaining,reset}-{requests,tokens}`, the reset as whole seconds (`"12s"`).
pub fn rate_limit_headers(limits: Option<&RateLimits>, headers: &mut HeaderMap) {
    let Some(limits) = limits else { return };
    for (kind, window) in [("requests", &limits.requests), ("tokens", &limits.tokens)] {
        let Some(window) = window else { continue };
        for (name, value) in [
            ("limit", window.limit.to_string()),
            ("remaining", window.remaining.to_string()),
            ("reset", format!("{}s", window.reset_secs)),
        ] {
            if let (Ok(name), Ok(value)) = (
                HeaderName::from_bytes(format!("x-ratelimit-{name}-{kind}").as_bytes()),
                HeaderValue::from_str(&value),
            ) {
                headers.insert(name, value);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;
    use crate::model_api::execution_summary::PendingStatus;

    fn settled() -> Billing {
        Billing::Settled {
            balance_after: "9.89692".parse().unwrap(),
            total_spent: "0.10308".parse().unwrap(),
        }
    }

    #[test]
    fn billing_headers_are_exact_and_absent_for_internal_keys() {
        let cost = Some("0.10308".parse().unwrap());
        let headers = billing_headers(chunk_billing(cost, Some(&settled()), FinishReason::Stop));
        assert_eq!(headers["x-billing-status"], "settled");
        assert_eq!(headers["x-billing-cost"], "0.10308");
        assert_eq!(headers["x-billing-balance-after"], "9.89692");
        assert_eq!(headers["x-billing-total-spent"], "0.10308");
        assert!(headers.get("x-billing-cut-off").is_none());
        assert!(billing_headers(chunk_billing(cost, None, FinishReason::Stop)).is_empty());
        let pending = Billing::Pending {
            status: PendingStatus::Pending,
        };
        let pending = billing_headers(chunk_billing(
            cost,
            Some(&pending),
            FinishReason::CreditExhausted,
        ));
        assert_eq!(pending["x-billing-status"], "pending");
        assert_eq!(pending["x-billing-cut-off"], "credit_exhausted");
        assert!(pending.get("x-billing-balance-after").is_none());
    }

    #[test]
    fn the_billing_object_is_exact() {
        let billing = chunk_billing(
            Some("0.10308".parse().unwrap()),
            Some(&settled()),
            FinishReason::CreditExhausted,
        );
        assert_eq!(
            serde_json::to_string(&billing).unwrap(),
            r#"{"status":"settled","cost":0.10308,"balance_after":9.89692,"total_spent":0.10308,"cut_off":"credit_exhausted"}"#
        );
    }
}
