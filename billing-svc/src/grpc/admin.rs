//! `billing.v1.AdminService`: the operator's calls, admitted with the admin key only.

use proto::billing::v1 as pb;
use proto::billing::v1::admin_service_server::AdminService;
use rust_decimal::Decimal;
use tonic::{Request, Response, Status};

use super::{
    Audience, account_to_pb, alerts_to_pb, api_key_to_pb, attempt_to_pb, authorize_admin,
    endpoint_to_pb, endpoints_to_pb, event_type_filter, events_to_pb, grant_terms_from_pb,
    grant_to_pb, key_spend_to_pb, key_type_from_pb, money, optional_money, policy_from_pb,
    price_to_pb, range, role_from_pb, stats_to_pb, thresholds, timestamp, totals_to_pb,
    transaction_to_pb, transaction_type_from_pb, usage_filter, usage_to_pb,
};
use crate::accounts::{self, Account};
use crate::credits::ops::LedgerWrite;
use crate::error::BillingError;
use crate::events::webhooks::Webhooks;
use crate::keys::ops::{CreatedKey, KeyChange, NewKey};
use crate::ledger::{Ledger, View};
use crate::prices::{self, ClassPrices, GivenPrices, Price};
use crate::sessions::Sessions;
use crate::time;
use lifecycle::secret::SecretString;
use money::Money;
use proto::ids::{AccountId, ApiKeyId};

pub struct AdminApi {
    ledger: Ledger,
    webhooks: Webhooks,
    sessions: Sessions,
    admin_key: SecretString,
}

impl AdminApi {
    pub fn new(
        ledger: Ledger,
        webhooks: Webhooks,
        sessions: Sessions,
        admin_key: SecretString,
    ) -> AdminApi {
        AdminApi {
            ledger,
            webhooks,
            sessions,
            admin_key,
        }
    }

    async fn authorize<T>(&self, request: &Request<T>) -> Result<(), Status> {
        Ok(authorize_admin(
            &self.ledger,
            &self.sessions,
            &self.admin_key,
            request.metadata(),
        )
        .await?)
    }

    /// The account as seen through the key `id` names, if it names one.
    async fn account_response(&self, account: &Account, id: &str) -> Result<pb::Account, Status> {
        let (_, key_id) = self.ledger.resolve(id).await?;
        let key = match key_id {
            Some(key_id) => Some(self.ledger.key(&key_id).await?),
            None => None,
        };
        Ok(account_to_pb(account, key.as_ref()))
    }

    async fn ledger_response(
        &self,
        id: &str,
        written: LedgerWrite,
    ) -> Result<pb::LedgerResponse, Status> {
        Ok(pb::LedgerResponse {
            transaction: Some(transaction_to_pb(&written.transaction)),
            account: Some(self.account_response(&written.account, id).await?),
            grant: written.grant.as_ref().map(grant_to_pb),
        })
    }
}

fn created_to_pb(created: &CreatedKey) -> pb::CreateKeyResponse {
    pb::CreateKeyResponse {
        api_key: Some(api_key_to_pb(&created.api_key)),
        key: created.plain_key.clone(),
        account: Some(account_to_pb(&created.account, Some(&created.api_key))),
    }
}

#[tonic::async_trait]
impl AdminService for AdminApi {
    async fn create_key(
        &self,
        request: Request<pb::CreateKeyRequest>,
    ) -> Result<Response<pb::CreateKeyResponse>, Status> {
        self.authorize(&request).await?;
        let request = request.into_inner();
        let key_type = key_type_from_pb(request.key_type)?;
        let expires_at = timestamp("expires_at", request.expires_at.as_ref())?;
        let (policy, policy_expiry) = policy_from_pb(request.policy.unwrap_or_default())?;
        let created = self
            .ledger
            .create_key(NewKey {
                name: request.name,
                key_type,
                prefix: request.prefix,
                expires_at: policy_expiry.or(expires_at),
                account_id: request.account_id.map(AccountId::from),
                role: role_from_pb(request.role)?,
                policy,
            })
            .await?;
        Ok(Response::new(created_to_pb(&created)))
    }

    async fn create_account(
        &self,
        request: Request<pb::CreateAccountRequest>,
    ) -> Result<Response<pb::Account>, Status> {
        self.authorize(&request).await?;
        let account = self.ledger.create_account(&request.get_ref().name).await?;
        Ok(Response::new(account_to_pb(&account, None)))
    }

    async fn list_accounts(
        &self,
        request: Request<pb::ListAccountsRequest>,
    ) -> Result<Response<pb::ListAccountsResponse>, Status> {
        self.authorize(&request).await?;
        let request = request.into_inner();
        let page = self
            .ledger
            .list_accounts(request.limit, request.cursor.as_deref())
            .await?;
        Ok(Response::new(pb::ListAccountsResponse {
            accounts: page
                .items
                .iter()
                .map(|account| account_to_pb(account, None))
                .collect(),
            next_cursor: page.next_cursor,
        }))
    }

    async fn get_account(
        &self,
        request: Request<pb::GetAccountAdminRequest>,
    ) -> Result<Response<pb::AccountWithKeys>, Status> {
        self.authorize(&request).await?;
        let (account_id, _) = self.ledger.resolve(&request.get_ref().account_id).await?;
        let view = self.ledger.account_view(&account_id).await?;
        Ok(Response::new(pb::AccountWithKeys {
            account: Some(account_to_pb(&view.account, None)),
            keys: view.keys.iter().map(key_spend_to_pb).collect(),
        }))
    }

    async fn update_key(
        &self,
        request: Request<pb::UpdateKeyRequest>,
    ) -> Result<Response<pb::ApiKey>, Status> {
        self.authorize(&request).await?;
        let request = request.into_inner();
        let change = KeyChange {
            name: request.name,
            role: role_from_pb(request.role)?,
            policy: request.policy.map(policy_from_pb).transpose()?,
        };
        let key = self
            .ledger
            .update_key(&ApiKeyId::from(request.id), change)
            .await?;
        Ok(Response::new(api_key_to_pb(&key)))
    }

    async fn rotate_key(
        &self,
        request: Request<pb::RotateKeyRequest>,
    ) -> Result<Response<pb::CreateKeyResponse>, Status> {
        self.authorize(&request).await?;
        let request = request.into_inner();
        let created = self
            .ledger
            .rotate_key(
                &ApiKeyId::from(request.id),
                request.grace_period_secs.unwrap_or(0),
            )
            .await?;
        Ok(Response::new(created_to_pb(&created)))
    }

    async fn list_keys(
        &self,
        request: Request<pb::ListKeysRequest>,
    ) -> Result<Response<pb::ListKeysResponse>, Status> {
        self.authorize(&request).await?;
        let keys = self
            .ledger
            .list_keys(request.get_ref().include_revoked)
            .await?;
        Ok(Response::new(pb::ListKeysResponse {
            keys: keys.iter().map(api_key_to_pb).collect(),
        }))
    }

    async fn revoke_key(
        &self,
        request: Request<pb::RevokeKeyRequest>,
    ) -> Result<Response<pb::RevokeKeyResponse>, Status> {
        self.authorize(&request).await?;
        let key = self
            .ledger
            .revoke_key(&ApiKeyId::from(request.get_ref().id.as_str()))
            .await?;
        Ok(Response::new(pb::RevokeKeyResponse {
            api_key: Some(api_key_to_pb(&key)),
        }))
    }

    async fn add_credits(
        &self,
        request: Request<pb::AddCreditsRequest>,
    ) -> Result<Response<pb::LedgerResponse>, Status> {
        self.authorize(&request).await?;
        let request = request.into_inner();
        let amount = money("amount", &request.amount)?;
        let terms = grant_terms_from_pb(
            request.category,
            request.expires_at.as_ref(),
            request.priority,
        )?;
        let written = self
            .ledger
            .add_credits(
                &request.api_key_id,
                amount,
                terms,
                request.description.as_deref(),
                request.idempotency_key.as_deref(),
            )
            .await?;
        Ok(Response::new(
            self.ledger_response(&request.api_key_id, written).await?,
        ))
    }

    async fn adjust_credits(
        &self,
        request: Request<pb::AdjustCreditsRequest>,
    ) -> Result<Response<pb::LedgerResponse>, Status> {
        self.authorize(&request).await?;
        let request = request.into_inner();
        let amount = money("amount", &request.amount)?;
        let written = self
            .ledger
            .adjust_credits(
                &request.api_key_id,
                amount,
                &request.reason,
                request.idempotency_key.as_deref(),
            )
            .await?;
        Ok(Response::new(
            self.ledger_response(&request.api_key_id, written).await?,
        ))
    }

    async fn refund(
        &self,
        request: Request<pb::RefundRequest>,
    ) -> Result<Response<pb::LedgerResponse>, Status> {
        self.authorize(&request).await?;
        let request = request.into_inner();
        let amount = optional_money("amount", request.amount.as_deref())?;
        let written = self
            .ledger
            .refund(
                &request.api_key_id,
                &request.usage_record_id,
                amount,
                request.reason.as_deref(),
            )
            .await?;
        Ok(Response::new(
            self.ledger_response(&request.api_key_id, written).await?,
        ))
    }

    async fn set_limits(
        &self,
        request: Request<pb::SetLimitsRequest>,
    ) -> Result<Response<pb::Account>, Status> {
        self.authorize(&request).await?;
        let request = request.into_inner();
        let daily = optional_money("daily_limit", request.daily_limit.as_deref())?;
        let monthly = optional_money("monthly_limit", request.monthly_limit.as_deref())?;
        let account = self
            .ledger
            .set_limits(&request.api_key_id, daily, monthly)
            .await?;
        Ok(Response::new(
            self.account_response(&account, &request.api_key_id).await?,
        ))
    }

    async fn get_account_stats(
        &self,
        request: Request<pb::GetAccountStatsRequest>,
    ) -> Result<Response<pb::Stats>, Status> {
        self.authorize(&request).await?;
        let request = request.into_inner();
        let (from, to) = range(request.range.as_ref())?;
        let (account_id, key_id) = self.ledger.resolve(&request.api_key_id).await?;
        let stats = self
            .ledger
            .stats(&View::account(account_id), from, to)
            .await?;
        Ok(Response::new(stats_to_pb(
            &stats,
            key_id.as_ref(),
            Audience::Operator,
        )))
    }

    async fn set_price(
        &self,
        request: Request<pb::SetPriceRequest>,
    ) -> Result<Response<pb::Price>, Status> {
        self.authorize(&request).await?;
        let request = request.into_inner();
        let input = money("base_input_price_per_1k", &request.base_input_price_per_1k)?;
        let output = money(
            "base_output_price_per_1k",
            &request.base_output_price_per_1k,
        )?;
        let given =
            |field: &'static str, value: &Option<String>| optional_money(field, value.as_deref());
        let base = ClassPrices::resolve(
            input,
            output,
            GivenPrices {
                cached_input: given(
                    "base_cached_input_price_per_1k",
                    &request.base_cached_input_price_per_1k,
                )?,
                cache_write: given(
                    "base_cache_write_price_per_1k",
                    &request.base_cache_write_price_per_1k,
                )?,
                cache_write_1h: given(
                    "base_cache_write_1h_price_per_1k",
                    &request.base_cache_write_1h_price_per_1k,
                )?,
                audio_input: given(
                    "base_audio_input_price_per_1k",
                    &request.base_audio_input_price_per_1k,
                )?,
                audio_output: given(
                    "base_audio_output_price_per_1k",
                    &request.base_audio_output_price_per_1k,
                )?,
            },
        );
        let price = Price {
            model: request.model,
            account_id: request
                .account_id
                .filter(|id| !id.is_empty())
                .map(AccountId::from),
            base,
            request_fee: optional_money("request_fee", request.request_fee.as_deref())?
                .unwrap_or(Money::ZERO),
            markup: prices::parse_markup(
                request.markup.as_deref().unwrap_or(prices::DEFAULT_MARKUP),
            )?,
            effective_from: timestamp("effective_from", request.effective_from.as_ref())?
                .unwrap_or_else(time::now_ms),
            ended: false,
        };
        let price = self.ledger.set_price(price).await?;
        Ok(Response::new(price_to_pb(&price)))
    }

    async fn end_price(
        &self,
        request: Request<pb::EndPriceRequest>,
    ) -> Result<Response<pb::Price>, Status> {
        self.authorize(&request).await?;
        let request = request.into_inner();
        let account_id = request
            .account_id
            .filter(|id| !id.is_empty())
            .map(AccountId::from);
        let ended = self.ledger.end_price(request.model, account_id).await?;
        Ok(Response::new(price_to_pb(&ended)))
    }

    async fn update_account(
        &self,
        request: Request<pb::UpdateAccountRequest>,
    ) -> Result<Response<pb::Account>, Status> {
        self.authorize(&request).await?;
        let request = request.into_inner();
        let mut account = self
            .ledger
            .account(&AccountId::from(request.account_id.clone()))
            .await?;
        // Both changes are checked before either is made.
        let email = request
            .email
            .as_deref()
            .map(accounts::ops::checked_email)
            .transpose()?;
        if let Some(tiers) = request.discount_tiers {
            let tiers = tiers
                .tiers
                .iter()
                .map(|tier| {
                    Ok(prices::DiscountTier {
                        from_monthly_spend: money("from_monthly_spend", &tier.from_monthly_spend)?,
                        percent_off: Decimal::from_str_exact(tier.percent_off.trim()).map_err(
                            |_| BillingError::invalid("percent_off", "must be a decimal number"),
                        )?,
                    })
                })
                .collect::<Result<Vec<_>, BillingError>>()?;
            account = self
                .ledger
                .set_discount_tiers(&request.account_id, tiers)
                .await?;
        }
        if let Some(email) = email {
            account = self.ledger.set_email(&request.account_id, &email).await?;
        }
        Ok(Response::new(account_to_pb(&account, None)))
    }

    async fn list_account_usage(
        &self,
        request: Request<pb::ListAccountUsageRequest>,
    ) -> Result<Response<pb::ListUsageResponse>, Status> {
        self.authorize(&request).await?;
        let request = request.into_inner();
        let query = request.query.unwrap_or_default();
        let (filter, only_key) = usage_filter(&query)?;
        let view = View {
            account_id: self
                .ledger
                .account(&AccountId::from(request.account_id))
                .await?
                .id,
            api_key_id: only_key,
        };
        let page = self
            .ledger
            .list_usage(&view, filter, query.limit, query.cursor.as_deref())
            .await?;
        Ok(Response::new(pb::ListUsageResponse {
            records: page
                .items
                .iter()
                .map(|record| usage_to_pb(record, Audience::Operator))
                .collect(),
            next_cursor: page.next_cursor,
        }))
    }

    async fn list_account_transactions(
        &self,
        request: Request<pb::ListAccountTransactionsRequest>,
    ) -> Result<Response<pb::ListTransactionsResponse>, Status> {
        self.authorize(&request).await?;
        let request = request.into_inner();
        let query = request.query.unwrap_or_default();
        let kind = transaction_type_from_pb(query.r#type)?;
        let view = View {
            account_id: self
                .ledger
                .account(&AccountId::from(request.account_id))
                .await?
                .id,
            api_key_id: request
                .api_key_id
                .filter(|id| !id.is_empty())
                .map(ApiKeyId::from),
        };
        let page = self
            .ledger
            .list_transactions(&view, kind, query.limit, query.cursor.as_deref())
            .await?;
        Ok(Response::new(pb::ListTransactionsResponse {
            transactions: page.items.iter().map(transaction_to_pb).collect(),
            next_cursor: page.next_cursor,
        }))
    }

    async fn get_platform_stats(
        &self,
        request: Request<pb::GetPlatformStatsRequest>,
    ) -> Result<Response<pb::PlatformStats>, Status> {
        self.authorize(&request).await?;
        let request = request.into_inner();
        let (from, to) = range(request.range.as_ref())?;
        let stats = self
            .ledger
            .platform_stats(from, to, request.top_accounts)
            .await?;
        let totals = |totals| Some(totals_to_pb(totals, Audience::Operator));
        Ok(Response::new(pb::PlatformStats {
            totals: totals(&stats.totals),
            by_day: stats
                .by_day
                .iter()
                .map(|(day, day_totals)| pb::DayUsage {
                    day: day.clone(),
                    totals: totals(day_totals),
                })
                .collect(),
            by_model: stats
                .by_model
                .iter()
                .map(|(model, model_totals)| pb::ModelUsage {
                    model: model.clone(),
                    totals: totals(model_totals),
                })
                .collect(),
            top_accounts: stats
                .top_accounts
                .iter()
                .map(|(id, name, account_totals)| pb::AccountUsage {
                    account_id: id.to_string(),
                    name: name.clone(),
                    totals: totals(account_totals),
                })
                .collect(),
        }))
    }

    async fn list_grants(
        &self,
        request: Request<pb::ListGrantsRequest>,
    ) -> Result<Response<pb::ListGrantsResponse>, Status> {
        self.authorize(&request).await?;
        let request = request.into_inner();
        let (account_id, _) = self.ledger.resolve(&request.api_key_id).await?;
        let grants = self
            .ledger
            .list_grants(&account_id, request.include_spent)
            .await?;
        Ok(Response::new(pb::ListGrantsResponse {
            grants: grants.iter().map(grant_to_pb).collect(),
        }))
    }

    async fn list_events(
        &self,
        request: Request<pb::ListEventsRequest>,
    ) -> Result<Response<pb::ListEventsResponse>, Status> {
        self.authorize(&request).await?;
        let request = request.into_inner();
        let account_id = match request.account_id.as_deref().filter(|id| !id.is_empty()) {
            Some(id) => Some(self.ledger.resolve(id).await?.0),
            None => None,
        };
        let page = self
            .ledger
            .list_events(
                account_id.as_ref(),
                event_type_filter(request.r#type)?,
                request.limit,
                request.cursor.as_deref(),
            )
            .await?;
        Ok(Response::new(events_to_pb(&self.webhooks, page).await?))
    }

    async fn set_alerts(
        &self,
        request: Request<pb::SetAlertsRequest>,
    ) -> Result<Response<pb::Alerts>, Status> {
        self.authorize(&request).await?;
        let request = request.into_inner();
        let alerts = self
            .ledger
            .set_low_balance_alerts(&request.api_key_id, thresholds(&request.low_balance)?)
            .await?;
        Ok(Response::new(alerts_to_pb(&alerts)))
    }

    async fn create_webhook(
        &self,
        request: Request<pb::CreateWebhookRequest>,
    ) -> Result<Response<pb::WebhookEndpoint>, Status> {
        self.authorize(&request).await?;
        let request = request.into_inner();
        let endpoint = self
            .webhooks
            .create(None, &request.url, request.event_types)
            .await?;
        Ok(Response::new(endpoint_to_pb(&endpoint, true)))
    }

    async fn list_webhooks(
        &self,
        request: Request<pb::ListWebhooksRequest>,
    ) -> Result<Response<pb::ListWebhooksResponse>, Status> {
        self.authorize(&request).await?;
        let endpoints = self.webhooks.list(None).await?;
        Ok(Response::new(endpoints_to_pb(&endpoints)))
    }

    async fn delete_webhook(
        &self,
        request: Request<pb::DeleteWebhookRequest>,
    ) -> Result<Response<pb::DeleteWebhookResponse>, Status> {
        self.authorize(&request).await?;
        self.webhooks.delete(&request.get_ref().id, None).await?;
        Ok(Response::new(pb::DeleteWebhookResponse {}))
    }

    async fn redeliver_event(
        &self,
        request: Request<pb::RedeliverEventRequest>,
    ) -> Result<Response<pb::RedeliverEventResponse>, Status> {
        self.authorize(&request).await?;
        let attempts = self.webhooks.redeliver(&request.get_ref().event_id).await?;
        Ok(Response::new(pb::RedeliverEventResponse {
            attempts: attempts.iter().map(attempt_to_pb).collect(),
        }))
    }

    async fn list_prices(
        &self,
        request: Request<pb::ListPricesRequest>,
    ) -> Result<Response<pb::ListPricesResponse>, Status> {
        self.authorize(&request).await?;
        let prices = self.ledger.list_prices().await?;
        Ok(Response::new(pb::ListPricesResponse {
            prices: prices.iter().map(price_to_pb).collect(),
        }))
    }
}
