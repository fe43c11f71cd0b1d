//! Key policies (API_KEY_MANAGEMENT.md, "Keys"): optional per-key caps within the account's, rate and
//! concurrency limits and a model allow-list. Every field is optional; absent = no limit. The expiry of a key
//! is its own column (`api_keys.expires_at`) and is shown as the policy's `expiresAt`.
//!
//! Stored as a JSON object in `api_keys.policy` (money as integer nano-dollars), read with the key.

use serde::{Deserialize, Serialize};

use crate::error::BillingError;
use crate::prices;
use money::Money;

/// Most models an allow-list may name.
const MAX_ALLOWED_MODELS: usize = 1000;

/// The limits of one key.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Policy {
    /// Cap on the key's spend per UTC day (settled plus held).
    pub daily_limit: Option<Money>,
    /// Cap on the key's spend per UTC month (settled plus held).
    pub monthly_limit: Option<Money>,
    /// Executions opened in the last 60 s.
    pub requests_per_minute: Option<u32>,
    /// Tokens settled plus held in the last 60 s.
    pub tokens_per_minute: Option<u64>,
    /// Executions in flight (active holds).
    pub max_concurrent: Option<u32>,
    /// The models the key may call; `None` = any.
    pub allowed_models: Option<Vec<String>>,
}

/// The stored form.
#[derive(Debug, Default, Serialize, Deserialize)]
struct Stored {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    daily_limit_nanos: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    monthly_limit_nanos: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    requests_per_minute: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    tokens_per_minute: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    max_concurrent: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    allowed_models: Option<Vec<String>>,
}

impl Policy {
    /// Refuses limits that cannot mean anything: negative caps, zero rates, empty or invalid model names.
    pub fn validate(&self) -> Result<(), BillingError> {
        for (field, limit) in [
            ("policy.daily_limit", self.daily_limit),
            ("policy.monthly_limit", self.monthly_limit),
        ] {
            if limit.is_some_and(Money::is_negative) {
                return Err(BillingError::invalid(field, "must not be negative"));
            }
        }
        for (field, value) in [
            (
                "policy.requests_per_minute",
                self.requests_per_minute.map(u64::from),
            ),
            ("policy.tokens_per_minute", self.tokens_per_minute),
            ("policy.max_concurrent", self.max_concurrent.map(u64::from)),
        ] {
            if value == Some(0) {
                return Err(BillingError::invalid(
                    field,
                    "must be at least 1 (omit it for no limit)",
                ));
            }
        }
        if let Some(models) = &self.allowed_models {
            if models.len() > MAX_ALLOWED_MODELS {
                return Err(BillingError::invalid(
                    "policy.allowed_models",
                    format!("must name at most {MAX_ALLOWED_MODELS} models"),
                ));
            }
            for model in models {
                prices::validate_model(model).map_err(|_| {
                    BillingError::invalid(
                        "policy.allowed_models",
                        "each model must be a valid model name",
                    )
                })?;
            }
        }
        Ok(())
    }

    /// Whether the key may call `model`.
    pub fn allows_model(&self, model: &str) -> bool {
        self.allowed_models
            .as_ref()
            .is_none_or(|models| models.iter().any(|allowed| allowed == model))
    }

    /// Whether any rate or concurrency limit is set (they are counted at open).
    pub fn limits_rate(&self) -> bool {
        self.requests_per_minute.is_some()
            || self.tokens_per_minute.is_some()
            || self.max_concurrent.is_some()
    }

    pub fn to_json(&self) -> String {
        let stored = Stored {
            daily_limit_nanos: self.daily_limit.map(Money::nanos),
            monthly_limit_nanos: self.monthly_limit.map(Money::nanos),
            requests_per_minute: self.requests_per_minute,
            tokens_per_minute: self.tokens_per_minute,
            max_concurrent: self.max_concurrent,
            allowed_models: self.allowed_models.clone(),
        };
        serde_json::to_string(&stored).unwrap_or_else(|_| "{}".to_string())
    }

    pub fn from_json(text: &str) -> Result<Policy, serde_json::Error> {
        let stored: Stored = serde_json::from_str(text)?;
        Ok(Policy {
            daily_limit: stored.daily_limit_nanos.map(Money::from_nanos),
            monthly_limit: stored.monthly_limit_nanos.map(Money::from_nanos),
            requests_per_minute: stored.requests_per_minute,
            tokens_per_minute: stored.tokens_per_minute,
            max_concurrent: stored.max_concurrent,
            allowed_models: stored.allowed_models,
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn a_policy_survives_its_stored_form() {
        let policy = Policy {
            daily_limit: Some(Money::from_nanos(1_500_000_000)),
            monthly_limit: None,
            requests_per_minute: Some(3),
            tokens_per_minute: Some(10_000),
            max_concurrent: Some(2),
            allowed_models: Some(vec!["gpt-4o-mini".into()]),
        };
        assert_eq!(Policy::from_json(&policy.to_json()).unwrap(), policy);
        assert_eq!(Policy::from_json("{}").unwrap(), Policy::default());
        assert_eq!(Policy::default().to_json(), "{}");
    }

    #[test]
    fn meaningless_limits_are_refused() {
        let zero_rate = Policy {
            requests_per_minute: Some(0),
            ..Policy::default()
        };
        assert!(zero_rate.validate().is_err());
        let negative = Policy {
            daily_limit: Some(Money::from_nanos(-1)),
            ..Policy::default()
        };
        assert!(negative.validate().is_err());
        let models = Policy {
            allowed_models: Some(vec![String::new()]),
            ..Policy::default()
        };
        assert!(models.validate().is_err());
        assert!(!models.allows_model("x"));
        assert!(Policy::default().allows_model("anything"));
    }
}
