//! Operator operations on accounts: create, list, read with their keys, caps, volume tiers and `balance.low` alerts.

use crate::accounts::{self, Account};
use crate::error::BillingError;
use crate::events::alerts::{self, LowBalance};
use crate::keys;
use crate::keys::ops::KeySpend;
use crate::ledger::{Ledger, Page};
use crate::ledger::{page_by, page_size};
use crate::prices;
use crate::store::Shard;
use crate::time::{self, Millis};
use money::Money;
use proto::ids::AccountId;

/// The longest email address (RFC 5321's path limit).
const MAX_EMAIL_CHARS: usize = 254;

/// An account with its keys.
#[derive(Debug, Clone)]
pub struct AccountView {
    pub account: Account,
    pub keys: Vec<KeySpend>,
}

impl Ledger {
    /// Creates an empty account (a team's), to which keys are then added.
    #[tracing::instrument(skip_all, err)]
    pub async fn create_account(&self, name: &str) -> Result<Account, BillingError> {
        keys::validate_name(name)?;
        let account = Account::new(name, time::now_ms());
        let stored = account.clone();
        self.store
            .write(Shard::Account(&account.id), move |batch| {
                Box::pin(async move {
                    accounts::sql::insert(batch.connection().await?, &stored).await?;
                    Ok(())
                })
            })
            .await?;
        tracing::info!(account_id = %account.id, "account created");
        Ok(account)
    }

    /// Accounts oldest first, cursor paginated.
    pub async fn list_accounts(
        &self,
        limit: u32,
        cursor: Option<&str>,
    ) -> Result<Page<Account>, BillingError> {
        let limit = page_size(limit)?;
        let after = match cursor.filter(|cursor| !cursor.is_empty()) {
            None => None,
            Some(cursor) => Some(account_cursor(cursor)?),
        };
        let mut connection = self.store.reader().acquire().await?;
        let rows = accounts::sql::list(
            &mut connection,
            after.as_ref().map(|(time, id)| (*time, id)),
            limit + 1,
        )
        .await?;
        Ok(page_by(rows, limit, |account| {
            format!("{}.{}", account.created_at, account.id)
        }))
    }

    /// An account with its keys (revoked ones included) and their spend.
    pub async fn account_view(&self, id: &AccountId) -> Result<AccountView, BillingError> {
        let mut connection = self.store.reader().acquire().await?;
        let account = accounts::sql::by_id(&mut connection, id)
            .await?
            .ok_or(BillingError::NotFound("account"))?;
        let keys = keys::sql::list(&mut connection, Some(id), true).await?;
        drop(connection);
        Ok(AccountView {
            keys: self.with_spend(&account.id, keys).await?,
            account,
        })
    }

    /// Sets both caps; `None` clears one.
    #[tracing::instrument(skip(self), err)]
    pub async fn set_limits(
        &self,
        id: &str,
        daily_limit: Option<Money>,
        monthly_limit: Option<Money>,
    ) -> Result<Account, BillingError> {
        for (field, limit) in [
            ("daily_limit", daily_limit),
            ("monthly_limit", monthly_limit),
        ] {
            if limit.is_some_and(Money::is_negative) {
                return Err(BillingError::invalid(field, "must not be negative"));
            }
        }
        let (account_id, _) = self.resolve(id).await?;
        self.store
            .write(Shard::Account(&account_id.clone()), move |batch| {
                Box::pin(async move {
                    let mut account = batch.lock(&account_id).await?;
                    account.daily_limit = daily_limit;
                    account.monthly_limit = monthly_limit;
                    accounts::sql::set_limits(batch.connection().await?, &account).await?;
                    batch.save(&account);
                    Ok(account)
                })
            })
            .await
    }

    /// Replaces the volume tiers of the account `id` names (BILLING.md, "Volume tiers").
    #[tracing::instrument(skip(self, tiers), err)]
    pub async fn set_discount_tiers(
        &self,
        id: &str,
        tiers: Vec<prices::DiscountTier>,
    ) -> Result<Account, BillingError> {
        let tiers = prices::validate_tiers(tiers)?;
        let (account_id, _) = self.resolve(id).await?;
        self.store
            .write(Shard::Account(&account_id.clone()), move |batch| {
                Box::pin(async move {
                    let mut account = batch.lock(&account_id).await?;
                    account.discount_tiers = tiers;
                    account.updated_at = time::now_ms();
                    accounts::sql::set_discount_tiers(batch.connection().await?, &account).await?;
                    batch.save(&account);
                    Ok(account)
                })
            })
            .await
    }

    /// Sets the email address of the account `id` names (BILLING.md, "Email"); an empty one removes it.
    #[tracing::instrument(skip(self, email), err)]
    pub async fn set_email(&self, id: &str, email: &str) -> Result<Account, BillingError> {
        let email = checked_email(email)?;
        let (account_id, _) = self.resolve(id).await?;
        self.store
            .write(Shard::Account(&account_id.clone()), move |batch| {
                Box::pin(async move {
                    let mut account = batch.lock(&account_id).await?;
                    account.email = email;
                    account.updated_at = time::now_ms();
                    accounts::sql::set_email(batch.connection().await?, &account).await?;
                    batch.save(&account);
                    Ok(account)
                })
            })
            .await
    }

    /// Replaces the `balance.low` thresholds of the account `id` names (a key id: its account); each starts
    /// armed when the balance is at or above it.
    #[tracing::instrument(skip(self, thresholds), err)]
    pub async fn set_low_balance_alerts(
        &self,
        id: &str,
        thresholds: Vec<Money>,
    ) -> Result<Vec<LowBalance>, BillingError> {
        let (account_id, _) = self.resolve(id).await?;
        self.store
            .write(Shard::Account(&account_id.clone()), move |batch| {
                Box::pin(async move {
                    let mut account = batch.lock(&account_id).await?;
                    account.low_balance = alerts::configure(&thresholds, account.credits_balance)?;
                    batch.save(&account);
                    Ok(account.low_balance)
                })
            })
            .await
    }

    pub async fn account(&self, id: &AccountId) -> Result<Account, BillingError> {
        let mut connection = self.store.reader().acquire().await?;
        accounts::sql::by_id(&mut connection, id)
            .await?
            .ok_or(BillingError::NotFound("account"))
    }
}

/// An email address as stored: trimmed, empty (none) or one address of at most [`MAX_EMAIL_CHARS`].
pub fn checked_email(email: &str) -> Result<String, BillingError> {
    let email = email.trim();
    if email.is_empty() {
        return Ok(String::new());
    }
    if email.len() > MAX_EMAIL_CHARS {
        return Err(BillingError::invalid(
            "email",
            format!("at most {MAX_EMAIL_CHARS} characters"),
        ));
    }
    email.parse::<lettre::Address>().map_err(|error| {
        BillingError::invalid(
            "email",
            format!("{email:?} is not an email address: {error}"),
        )
    })?;
    Ok(email.to_string())
}

/// A cursor of the account listing: `<created_at>.<id>` of the last account of the previous page.
fn account_cursor(cursor: &str) -> Result<(Millis, AccountId), BillingError> {
    cursor
        .split_once('.')
        .and_then(|(time, id)| Some((time.parse::<Millis>().ok()?, AccountId::from(id))))
        .ok_or_else(|| BillingError::invalid("cursor", "is not a cursor returned by this API"))
}
