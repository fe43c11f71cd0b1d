//! Keys and the accounts they bill.

use proto::billing::v1 as billing_pb;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::*;
use crate::error::{ApiError, Service};
use crate::money::Usd;

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
    pub(crate) fn from_wire(value: billing_pb::KeyType) -> Result<KeyType, ApiError> {
        match value {
            billing_pb::KeyType::Standard => Ok(KeyType::Standard),
            billing_pb::KeyType::Internal => Ok(KeyType::Internal),
            billing_pb::KeyType::Unspecified => {
                Err(contract(Service::Billing, "key type unspecified".into()))
            }
        }
    }

    pub fn to_wire(self) -> billing_pb::KeyType {
        match self {
            KeyType::Standard => billing_pb::KeyType::Standard,
            KeyType::Internal => billing_pb::KeyType::Internal,
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
    fn from_wire(value: billing_pb::Role) -> Option<Role> {
        match value {
            billing_pb::Role::Owner => Some(Role::Owner),
            billing_pb::Role::Member => Some(Role::Member),
            billing_pb::Role::Unspecified => None,
        }
    }

    pub fn to_wire(self) -> billing_pb::Role {
        match self {
            Role::Owner => billing_pb::Role::Owner,
            Role::Member => billing_pb::Role::Member,
        }
    }
}

/// A key's own limits (API_KEY_MANAGEMENT.md, "Keys"); every field null = no limit.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct KeyPolicy {
    /// Cap on the key's spend per UTC day (settled plus held), within the account's caps.
    #[serde(default)]
    pub daily_limit: Option<Usd>,
    /// Cap on the key's spend per UTC month, within the account's caps.
    #[serde(default)]
    pub monthly_limit: Option<Usd>,
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
    pub fn from_wire(policy: billing_pb::KeyPolicy) -> Result<KeyPolicy, ApiError> {
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

    pub fn to_wire(self) -> billing_pb::KeyPolicy {
        billing_pb::KeyPolicy {
            daily_limit: self.daily_limit.map(|limit| limit.to_wire()),
            monthly_limit: self.monthly_limit.map(|limit| limit.to_wire()),
            requests_per_minute: self.requests_per_minute,
            tokens_per_minute: self.tokens_per_minute,
            max_concurrent: self.max_concurrent,
            allowed_models: self
                .allowed_models
                .map(|models| billing_pb::ModelList { models }),
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

impl TryFrom<billing_pb::ApiKey> for ApiKey {
    type Error = ApiError;

    fn try_from(key: billing_pb::ApiKey) -> Result<ApiKey, ApiError> {
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

/// A billing account: one balance shared by its keys. Seen through a key (the calling key, or the key
/// an admin path named), it also carries that key's id, type, role and policy.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Account {
    pub account_id: String,
    pub account_name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub api_key_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key_type: Option<KeyType>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub role: Option<Role>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub policy: Option<KeyPolicy>,
    /// Always equal to the sum of the account's transactions.
    pub credits_balance: Usd,
    /// Reserved by in-flight executions.
    pub held_credits: Usd,
    /// Usage deductions minus refunds, over the account's life.
    pub total_spent: Usd,
    /// Charged beyond every grant; the next grant pays it first (the balance is the grants' remainders
    /// minus this).
    pub overage: Usd,
    /// Cap on spend per UTC day; null = no cap.
    pub daily_limit: Option<Usd>,
    /// Cap on spend per UTC month; null = no cap.
    pub monthly_limit: Option<Usd>,
    /// Volume discounts, lowest threshold first; empty = list prices.
    pub discount_tiers: Vec<super::prices::DiscountTier>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

impl TryFrom<billing_pb::Account> for Account {
    type Error = ApiError;

    fn try_from(account: billing_pb::Account) -> Result<Account, ApiError> {
        let b = Service::Billing;
        let key_type = match account.key_type() {
            billing_pb::KeyType::Unspecified => None,
            key_type => Some(KeyType::from_wire(key_type)?),
        };
        Ok(Account {
            key_type,
            role: Role::from_wire(account.role()),
            policy: account.policy.map(KeyPolicy::from_wire).transpose()?,
            credits_balance: money(b, "credits_balance", &account.credits_balance)?,
            held_credits: money(b, "held_credits", &account.held_credits)?,
            total_spent: money(b, "total_spent", &account.total_spent)?,
            overage: money(b, "overage", &account.overage)?,
            daily_limit: optional_money(b, "daily_limit", account.daily_limit.as_deref())?,
            monthly_limit: optional_money(b, "monthly_limit", account.monthly_limit.as_deref())?,
            discount_tiers: account
                .discount_tiers
                .into_iter()
                .map(super::prices::DiscountTier::from_wire)
                .collect::<Result<_, _>>()?,
            created_at: time("account.created_at", account.created_at)?,
            updated_at: time("account.updated_at", account.updated_at)?,
            api_key_id: Some(account.api_key_id).filter(|id| !id.is_empty()),
            account_id: account.account_id,
            account_name: account.name,
        })
    }
}

/// A newly created key: the listed fields, the plain `key` (shown this once) and its account.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CreatedKey {
    #[serde(flatten)]
    pub api_key: ApiKey,
    /// The plain key, `<prefix><64 lowercase hex>`. It cannot be read again.
    pub key: String,
    pub account: Account,
}

impl TryFrom<billing_pb::CreateKeyResponse> for CreatedKey {
    type Error = ApiError;

    fn try_from(response: billing_pb::CreateKeyResponse) -> Result<CreatedKey, ApiError> {
        Ok(CreatedKey {
            api_key: required(Service::Billing, "api_key", response.api_key)?.try_into()?,
            account: required(Service::Billing, "account", response.account)?.try_into()?,
            key: response.key,
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
    pub spent_today: Usd,
    pub spent_this_month: Usd,
    /// When the key's latest call was recorded; null before its first.
    pub last_used_at: Option<Timestamp>,
}

impl TryFrom<billing_pb::KeySpend> for KeySpend {
    type Error = ApiError;

    fn try_from(spend: billing_pb::KeySpend) -> Result<KeySpend, ApiError> {
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

/// An account with its keys.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AccountWithKeys {
    #[serde(flatten)]
    pub account: Account,
    pub keys: Vec<KeySpend>,
}

impl TryFrom<billing_pb::AccountWithKeys> for AccountWithKeys {
    type Error = ApiError;

    fn try_from(response: billing_pb::AccountWithKeys) -> Result<AccountWithKeys, ApiError> {
        Ok(AccountWithKeys {
            account: required(Service::Billing, "account", response.account)?.try_into()?,
            keys: response
                .keys
                .into_iter()
                .map(TryInto::try_into)
                .collect::<Result<_, _>>()?,
        })
    }
}

/// A page of accounts, oldest first.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AccountPage {
    pub accounts: Vec<Account>,
    /// Pass as `cursor` for the next page; null on the last page.
    pub next_cursor: Option<String>,
}
