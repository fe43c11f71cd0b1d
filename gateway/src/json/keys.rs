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

/// An API key as listed: never the plain key nor its hash.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ApiKey {
    /// The key's id (a UUID), also its account's id in every path.
    pub id: String,
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

/// The billing account of one key.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Account {
    pub api_key_id: String,
    pub key_type: KeyType,
    /// Always equal to the sum of the account's transactions.
    pub credits_balance: Usd,
    /// Reserved by in-flight executions.
    pub held_credits: Usd,
    /// Usage deductions minus refunds, over the account's life.
    pub total_spent: Usd,
    /// Cap on spend per UTC day; null = no cap.
    pub daily_limit: Option<Usd>,
    /// Cap on spend per UTC month; null = no cap.
    pub monthly_limit: Option<Usd>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

impl TryFrom<billing_pb::Account> for Account {
    type Error = ApiError;

    fn try_from(account: billing_pb::Account) -> Result<Account, ApiError> {
        let b = Service::Billing;
        Ok(Account {
            key_type: KeyType::from_wire(account.key_type())?,
            credits_balance: money(b, "credits_balance", &account.credits_balance)?,
            held_credits: money(b, "held_credits", &account.held_credits)?,
            total_spent: money(b, "total_spent", &account.total_spent)?,
            daily_limit: optional_money(b, "daily_limit", account.daily_limit.as_deref())?,
            monthly_limit: optional_money(b, "monthly_limit", account.monthly_limit.as_deref())?,
            created_at: time("account.created_at", account.created_at)?,
            updated_at: time("account.updated_at", account.updated_at)?,
            api_key_id: account.api_key_id,
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
