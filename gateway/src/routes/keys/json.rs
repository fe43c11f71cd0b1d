//! A key as the JSON answers show it: its type, role and policy, the listed key and its spend.
//!
//! Apart from the key routes (`mod.rs`) so that the imports run one way: an account's JSON carries the
//! calling key's type, role and policy (`accounts.rs` imports them from here), and a created key carries
//! its account (`mod.rs` imports `accounts.rs`).

use proto::billing::v1 as pb;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::error::{ApiError, Service};
use crate::timestamp::Timestamp;
use crate::wire::{contract, money, optional_money, required, time};
use money::Money;

/// How a key is billed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum KeyType {
    /// Charged, needs credit, budget checks apply.
    Standard,
    /// Never charged; usage recorded with its cost; responses carry no `billing`.
    Internal,
}

impl KeyType {
    pub(crate) fn from_wire(value: pb::KeyType) -> Result<KeyType, ApiError> {
        match value {
            pb::KeyType::Standard => Ok(KeyType::Standard),
            pb::KeyType::Internal => Ok(KeyType::Internal),
            pb::KeyType::Unspecified => {
                Err(contract(Service::Billing, "key type unspecified".into()))
            }
        }
    }

    pub fn to_wire(self) -> pb::KeyType {
        match self {
            KeyType::Standard => pb::KeyType::Standard,
            KeyType::Internal => pb::KeyType::Internal,
        }
    }
}

/// What a key may see and manage of its account.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Sees and manages its whole account.
    Owner,
    /// Sees the account's balance and its own usage only.
    Member,
}

impl Role {
    pub(crate) fn from_wire(value: pb::Role) -> Option<Role> {
        match value {
            pb::Role::Owner => Some(Role::Owner),
            pb::Role::Member => Some(Role::Member),
            pb::Role::Unspecified => None,
        }
    }

    pub fn to_wire(self) -> pb::Role {
        match self {
            Role::Owner => pb::Role::Owner,
            Role::Member => pb::Role::Member,
        }
    }
}

/// A key's own limits (API_KEY_MANAGEMENT.md, "Keys"); every field null = no limit.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct KeyPolicy {
    /// Cap on the key's spend per UTC day (settled plus held), within the account's caps.
    #[serde(default)]
    pub daily_limit: Option<Money>,
    /// Cap on the key's spend per UTC month, within the account's caps.
    #[serde(default)]
    pub monthly_limit: Option<Money>,
    /// Executions opened in the last 60 s.
    #[serde(default)]
    pub requests_per_minute: Option<u32>,
    /// Tokens settled plus held in the last 60 s.
    #[serde(default)]
    pub tokens_per_minute: Option<u64>,
    /// Executions in flight.
    #[serde(default)]
    pub max_concurrent: Option<u32>,
    /// The models the key may call; null = any.
    #[serde(default)]
    pub allowed_models: Option<Vec<String>>,
    /// The key is refused from this moment on.
    #[serde(default)]
    pub expires_at: Option<Timestamp>,
}

impl KeyPolicy {
    pub fn from_wire(policy: pb::KeyPolicy) -> Result<KeyPolicy, ApiError> {
        let b = Service::Billing;
        Ok(KeyPolicy {
            daily_limit: optional_money(b, "policy.daily_limit", policy.daily_limit.as_deref())?,
            monthly_limit: optional_money(
                b,
                "policy.monthly_limit",
                policy.monthly_limit.as_deref(),
            )?,
            requests_per_minute: policy.requests_per_minute,
            tokens_per_minute: policy.tokens_per_minute,
            max_concurrent: policy.max_concurrent,
            allowed_models: policy.allowed_models.map(|list| list.models),
            expires_at: policy.expires_at.map(Timestamp),
        })
    }

    pub fn to_wire(self) -> pb::KeyPolicy {
        pb::KeyPolicy {
            daily_limit: self.daily_limit.map(|limit| limit.to_string()),
            monthly_limit: self.monthly_limit.map(|limit| limit.to_string()),
            requests_per_minute: self.requests_per_minute,
            tokens_per_minute: self.tokens_per_minute,
            max_concurrent: self.max_concurrent,
            allowed_models: self.allowed_models.map(|models| pb::ModelList { models }),
            expires_at: self.expires_at.map(|t| t.0),
        }
    }
}

/// An API key as listed: never the plain key nor its hash.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ApiKey {
    /// The key's id (a UUID). Under `/billing/admin/:id` it names the key's account.
    pub id: String,
    /// The account the key spends from.
    pub account_id: String,
    pub role: Role,
    pub policy: KeyPolicy,
    /// After a rotation with a grace period: when the previous secret stops working.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub previous_key_expires_at: Option<Timestamp>,
    pub name: String,
    pub key_type: KeyType,
    /// e.g. `tb_prod_`.
    pub prefix: String,
    /// The prefix and the last four characters, e.g. `tb_prod_…9f3a`.
    pub hint: String,
    pub created_at: Timestamp,
    /// Null unless revoked.
    pub revoked_at: Option<Timestamp>,
    /// Null unless the key expires.
    pub expires_at: Option<Timestamp>,
}

impl TryFrom<pb::ApiKey> for ApiKey {
    type Error = ApiError;

    fn try_from(key: pb::ApiKey) -> Result<ApiKey, ApiError> {
        Ok(ApiKey {
            key_type: KeyType::from_wire(key.key_type())?,
            role: Role::from_wire(key.role())
                .ok_or_else(|| contract(Service::Billing, "key role unspecified".into()))?,
            policy: KeyPolicy::from_wire(key.policy.unwrap_or_default())?,
            previous_key_expires_at: key.previous_key_expires_at.map(Timestamp),
            account_id: key.account_id,
            created_at: time("api_key.created_at", key.created_at)?,
            revoked_at: key.revoked_at.map(Timestamp),
            expires_at: key.expires_at.map(Timestamp),
            id: key.id,
            name: key.name,
            prefix: key.prefix,
            hint: key.hint,
        })
    }
}

#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct KeyList {
    pub keys: Vec<ApiKey>,
}

/// A key with what it spent in the current UTC day and month.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct KeySpend {
    #[serde(flatten)]
    pub api_key: ApiKey,
    pub spent_today: Money,
    pub spent_this_month: Money,
    /// When the key's latest call was recorded; null before its first.
    pub last_used_at: Option<Timestamp>,
}

impl TryFrom<pb::KeySpend> for KeySpend {
    type Error = ApiError;

    fn try_from(spend: pb::KeySpend) -> Result<KeySpend, ApiError> {
        let b = Service::Billing;
        Ok(KeySpend {
            api_key: required(b, "api_key", spend.api_key)?.try_into()?,
            spent_today: money(b, "spent_today", &spend.spent_today)?,
            spent_this_month: money(b, "spent_this_month", &spend.spent_this_month)?,
            last_used_at: spend.last_used_at.map(Timestamp),
        })
    }
}

/// Keys with their spend.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct KeySpendList {
    pub keys: Vec<KeySpend>,
}
