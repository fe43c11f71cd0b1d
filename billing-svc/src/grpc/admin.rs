//! `billing.v1.AdminService`: the operator's calls, admitted with the admin key only.

use proto::billing::v1 as pb;
use proto::billing::v1::admin_service_server::AdminService;
use tonic::{Request, Response, Status};

use super::{
    account_to_pb, api_key_to_pb, authorize_admin, key_type_from_pb, money, optional_money,
    price_to_pb, range, stats_to_pb, timestamp, transaction_to_pb,
};
use crate::config::Secret;
use crate::ledger::Ledger;
use crate::pricing::{self, Price};
use crate::store::accounts::Account;
use crate::store::transactions::Transaction;
use crate::time;

pub struct AdminApi {
    ledger: Ledger,
    admin_key: Secret,
}

impl AdminApi {
    pub fn new(ledger: Ledger, admin_key: Secret) -> AdminApi {
        AdminApi { ledger, admin_key }
    }

    async fn authorize<T>(&self, request: &Request<T>) -> Result<(), Status> {
        Ok(authorize_admin(&self.ledger, &self.admin_key, request.metadata()).await?)
    }

    async fn ledger_response(
        &self,
        (transaction, account): (Transaction, Account),
    ) -> Result<pb::LedgerResponse, Status> {
        let key_type = self.ledger.key_type_of(&account.api_key_id).await?;
        Ok(pb::LedgerResponse {
            transaction: Some(transaction_to_pb(&transaction)),
            account: Some(account_to_pb(&account, key_type)),
        })
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
        let created = self
            .ledger
            .create_key(
                &request.name,
                key_type,
                request.prefix.as_deref(),
                expires_at,
            )
            .await?;
        Ok(Response::new(pb::CreateKeyResponse {
            api_key: Some(api_key_to_pb(&created.api_key)),
            key: created.plain_key,
            account: Some(account_to_pb(&created.account, key_type)),
        }))
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
        let key = self.ledger.revoke_key(&request.get_ref().id).await?;
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
        let written = self
            .ledger
            .add_credits(
                &request.api_key_id,
                amount,
                request.description.as_deref(),
                request.idempotency_key.as_deref(),
            )
            .await?;
        Ok(Response::new(self.ledger_response(written).await?))
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
        Ok(Response::new(self.ledger_response(written).await?))
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
        Ok(Response::new(self.ledger_response(written).await?))
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
        let key_type = self.ledger.key_type_of(&account.api_key_id).await?;
        Ok(Response::new(account_to_pb(&account, key_type)))
    }

    async fn get_account_stats(
        &self,
        request: Request<pb::GetAccountStatsRequest>,
    ) -> Result<Response<pb::Stats>, Status> {
        self.authorize(&request).await?;
        let request = request.into_inner();
        let (from, to) = range(request.range.as_ref())?;
        let stats = self.ledger.stats(&request.api_key_id, from, to).await?;
        Ok(Response::new(stats_to_pb(&stats)))
    }

    async fn set_price(
        &self,
        request: Request<pb::SetPriceRequest>,
    ) -> Result<Response<pb::Price>, Status> {
        self.authorize(&request).await?;
        let request = request.into_inner();
        let price = Price {
            model: request.model,
            base_input_per_1k: money("base_input_price_per_1k", &request.base_input_price_per_1k)?,
            base_output_per_1k: money(
                "base_output_price_per_1k",
                &request.base_output_price_per_1k,
            )?,
            markup: pricing::parse_markup(
                request.markup.as_deref().unwrap_or(pricing::DEFAULT_MARKUP),
            )?,
            effective_from: timestamp("effective_from", request.effective_from.as_ref())?
                .unwrap_or_else(time::now_ms),
        };
        let price = self.ledger.set_price(price).await?;
        Ok(Response::new(price_to_pb(&price)))
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
