//! `billing.v1.AccountService`: a customer's view of its own account, and nothing else. An owner key sees
//! the whole account, a member key the balance and its own usage (API_KEY_MANAGEMENT.md, "Keys").

use proto::billing::v1 as pb;
use proto::billing::v1::account_service_server::AccountService;
use tonic::{Request, Response, Status};

use super::{
    Audience, Reader, account_price_to_pb, account_to_pb, alerts_to_pb, authorize_customer,
    authorize_reader, auto_recharge_to_pb, bucket_page_to_pb, bucket_query, endpoint_to_pb,
    endpoints_to_pb, event_type_filter, events_to_pb, grant_to_pb, key_filter, key_spend_to_pb,
    money, range, statement_summary_to_pb, statement_to_pb, stats_to_pb, thresholds, totals_to_pb,
    transaction_to_pb, transaction_type_from_pb, usage_filter, usage_to_pb,
};
use crate::error::BillingError;
use crate::events::webhooks::Webhooks;
use crate::keys::ApiKey;
use crate::keys::Role;
use crate::ledger::{Ledger, View};
use crate::payments::auto_recharge::Settings;
use crate::payments::stripe::StripeApi;
use crate::sessions::Sessions;
use crate::statements::Month;
use lifecycle::secret::SecretString;
use proto::ids::AccountId;

pub struct AccountApi {
    ledger: Ledger,
    webhooks: Webhooks,
    sessions: Sessions,
    stripe: Option<StripeApi>,
    /// Only for `GetUsageBuckets`, which the operator may call too.
    admin_key: SecretString,
}

impl AccountApi {
    pub fn new(
        ledger: Ledger,
        webhooks: Webhooks,
        sessions: Sessions,
        stripe: Option<StripeApi>,
        admin_key: SecretString,
    ) -> AccountApi {
        AccountApi {
            ledger,
            webhooks,
            sessions,
            stripe,
            admin_key,
        }
    }

    /// The account a report (usage buckets, statements) is read for: an owner key's (or owner session's)
    /// own, which it may not name; the operator's, which it must name (an account or one of its keys).
    async fn report_account(
        &self,
        metadata: &tonic::metadata::MetadataMap,
        named: Option<String>,
    ) -> Result<AccountId, Status> {
        let reader =
            authorize_reader(&self.ledger, &self.sessions, &self.admin_key, metadata).await?;
        match (reader, named.filter(|id| !id.is_empty())) {
            (Reader::Operator, Some(id)) => Ok(self.ledger.resolve(&id).await?.0),
            (Reader::Operator, None) => Err(BillingError::invalid(
                "account_id",
                "is required with the operator's key: the account (or one of its keys) to read",
            )
            .into()),
            (Reader::Customer(key), None) if key.role == Role::Owner => Ok(key.account_id),
            (Reader::Customer(_), None) => Err(BillingError::OwnerRequired.into()),
            (Reader::Customer(_), Some(_)) => Err(BillingError::AdminRequired.into()),
        }
    }

    /// The caller's key, which must be an owner of its account.
    async fn owner<T>(&self, request: &Request<T>) -> Result<ApiKey, Status> {
        let key = self.caller(request).await?;
        if key.role != Role::Owner {
            return Err(BillingError::OwnerRequired.into());
        }
        Ok(key)
    }

    async fn caller<T>(&self, request: &Request<T>) -> Result<ApiKey, Status> {
        Ok(
            authorize_customer(&self.ledger, &self.sessions, request.metadata())
                .await?
                .key,
        )
    }
}

#[tonic::async_trait]
impl AccountService for AccountApi {
    async fn get_account(
        &self,
        request: Request<pb::GetAccountRequest>,
    ) -> Result<Response<pb::Account>, Status> {
        let key = self.caller(&request).await?;
        let account = self.ledger.account(&key.account_id).await?;
        Ok(Response::new(account_to_pb(&account, Some(&key))))
    }

    async fn list_keys(
        &self,
        request: Request<pb::ListAccountKeysRequest>,
    ) -> Result<Response<pb::ListAccountKeysResponse>, Status> {
        let key = self.caller(&request).await?;
        let keys = self.ledger.visible_keys(&key).await?;
        Ok(Response::new(pb::ListAccountKeysResponse {
            keys: keys.iter().map(key_spend_to_pb).collect(),
        }))
    }

    async fn list_grants(
        &self,
        request: Request<pb::ListAccountGrantsRequest>,
    ) -> Result<Response<pb::ListGrantsResponse>, Status> {
        let key = self.caller(&request).await?;
        let grants = self
            .ledger
            .list_grants(&key.account_id, request.get_ref().include_spent)
            .await?;
        Ok(Response::new(pb::ListGrantsResponse {
            grants: grants.iter().map(grant_to_pb).collect(),
        }))
    }

    async fn list_events(
        &self,
        request: Request<pb::ListAccountEventsRequest>,
    ) -> Result<Response<pb::ListEventsResponse>, Status> {
        let key = self.caller(&request).await?;
        let request = request.into_inner();
        let page = self
            .ledger
            .list_events(
                Some(&key.account_id),
                event_type_filter(request.r#type)?,
                request.limit,
                request.cursor.as_deref(),
            )
            .await?;
        Ok(Response::new(events_to_pb(&self.webhooks, page).await?))
    }

    async fn set_alerts(
        &self,
        request: Request<pb::SetAccountAlertsRequest>,
    ) -> Result<Response<pb::Alerts>, Status> {
        let key = self.owner(&request).await?;
        let thresholds = thresholds(&request.get_ref().low_balance)?;
        let alerts = self
            .ledger
            .set_low_balance_alerts(key.account_id.as_str(), thresholds)
            .await?;
        Ok(Response::new(alerts_to_pb(&alerts)))
    }

    async fn create_checkout(
        &self,
        request: Request<pb::CreateCheckoutRequest>,
    ) -> Result<Response<pb::CheckoutSession>, Status> {
        let key = self.owner(&request).await?;
        let stripe = self
            .stripe
            .as_ref()
            .ok_or(BillingError::PaymentsNotConfigured)?;
        let amount = money("amount", &request.get_ref().amount)?;
        let session = stripe
            .create_checkout_session(key.account_id.as_str(), amount)
            .await?;
        tracing::info!(session_id = %session.id, %amount, "checkout session created");
        Ok(Response::new(pb::CheckoutSession {
            checkout_url: session.url,
            session_id: session.id,
        }))
    }

    async fn set_auto_recharge(
        &self,
        request: Request<pb::SetAutoRechargeRequest>,
    ) -> Result<Response<pb::AutoRecharge>, Status> {
        let key = self.owner(&request).await?;
        if self.stripe.is_none() {
            return Err(BillingError::PaymentsNotConfigured.into());
        }
        let request = request.into_inner();
        let settings = Settings {
            enabled: request.enabled,
            threshold: money("threshold", &request.threshold)?,
            amount: money("amount", &request.amount)?,
            monthly_max: money("monthly_max", &request.monthly_max)?,
        };
        let view = self
            .ledger
            .set_auto_recharge(key.account_id.as_str(), settings)
            .await?;
        tracing::info!(enabled = settings.enabled, "auto-recharge set");
        Ok(Response::new(auto_recharge_to_pb(
            &view,
            self.stripe.is_some(),
        )))
    }

    async fn get_auto_recharge(
        &self,
        request: Request<pb::GetAutoRechargeRequest>,
    ) -> Result<Response<pb::AutoRecharge>, Status> {
        let key = self.owner(&request).await?;
        let view = self.ledger.auto_recharge(key.account_id.as_str()).await?;
        Ok(Response::new(auto_recharge_to_pb(
            &view,
            self.stripe.is_some(),
        )))
    }

    async fn create_webhook(
        &self,
        request: Request<pb::CreateWebhookRequest>,
    ) -> Result<Response<pb::WebhookEndpoint>, Status> {
        let key = self.owner(&request).await?;
        let request = request.into_inner();
        let endpoint = self
            .webhooks
            .create(Some(key.account_id), &request.url, request.event_types)
            .await?;
        Ok(Response::new(endpoint_to_pb(&endpoint, true)))
    }

    async fn list_webhooks(
        &self,
        request: Request<pb::ListWebhooksRequest>,
    ) -> Result<Response<pb::ListWebhooksResponse>, Status> {
        let key = self.owner(&request).await?;
        let endpoints = self.webhooks.list(Some(&key.account_id)).await?;
        Ok(Response::new(endpoints_to_pb(&endpoints)))
    }

    async fn delete_webhook(
        &self,
        request: Request<pb::DeleteWebhookRequest>,
    ) -> Result<Response<pb::DeleteWebhookResponse>, Status> {
        let key = self.owner(&request).await?;
        self.webhooks
            .delete(&request.get_ref().id, Some(key.account_id))
            .await?;
        Ok(Response::new(pb::DeleteWebhookResponse {}))
    }

    async fn get_stats(
        &self,
        request: Request<pb::GetStatsRequest>,
    ) -> Result<Response<pb::Stats>, Status> {
        let key = self.caller(&request).await?;
        let request = request.into_inner();
        let (from, to) = range(request.range.as_ref())?;
        let view = View::of_caller(&key, key_filter(request.api_key_id));
        let stats = self.ledger.stats(&view, from, to).await?;
        Ok(Response::new(stats_to_pb(
            &stats,
            Some(&key.id),
            Audience::Customer,
        )))
    }

    async fn list_usage(
        &self,
        request: Request<pb::ListUsageRequest>,
    ) -> Result<Response<pb::ListUsageResponse>, Status> {
        let key = self.caller(&request).await?;
        let request = request.into_inner();
        let (filter, only_key) = usage_filter(&request)?;
        let view = View::of_caller(&key, only_key);
        let page = self
            .ledger
            .list_usage(&view, filter, request.limit, request.cursor.as_deref())
            .await?;
        Ok(Response::new(pb::ListUsageResponse {
            records: page
                .items
                .iter()
                .map(|record| usage_to_pb(record, Audience::Customer))
                .collect(),
            next_cursor: page.next_cursor,
        }))
    }

    async fn list_prices(
        &self,
        request: Request<pb::ListAccountPricesRequest>,
    ) -> Result<Response<pb::ListAccountPricesResponse>, Status> {
        let key = self.caller(&request).await?;
        let prices = self.ledger.prices_for(&key.account_id).await?;
        Ok(Response::new(pb::ListAccountPricesResponse {
            prices: prices.iter().map(account_price_to_pb).collect(),
        }))
    }

    async fn list_transactions(
        &self,
        request: Request<pb::ListTransactionsRequest>,
    ) -> Result<Response<pb::ListTransactionsResponse>, Status> {
        let key = self.caller(&request).await?;
        let request = request.into_inner();
        let kind = transaction_type_from_pb(request.r#type)?;
        let view = View::of_caller(&key, None);
        let page = self
            .ledger
            .list_transactions(&view, kind, request.limit, request.cursor.as_deref())
            .await?;
        Ok(Response::new(pb::ListTransactionsResponse {
            transactions: page.items.iter().map(transaction_to_pb).collect(),
            next_cursor: page.next_cursor,
        }))
    }

    async fn get_usage_buckets(
        &self,
        request: Request<pb::UsageBucketsRequest>,
    ) -> Result<Response<pb::UsageBuckets>, Status> {
        let (metadata, _, mut request) = request.into_parts();
        let account_id = self
            .report_account(&metadata, request.account_id.take())
            .await?;
        let page = self
            .ledger
            .usage_buckets(&account_id, bucket_query(request)?)
            .await?;
        Ok(Response::new(bucket_page_to_pb(page)))
    }

    async fn list_statements(
        &self,
        request: Request<pb::ListStatementsRequest>,
    ) -> Result<Response<pb::ListStatementsResponse>, Status> {
        let (metadata, _, request) = request.into_parts();
        let account_id = self.report_account(&metadata, request.account_id).await?;
        let statements = self.ledger.statements(&account_id).await?;
        Ok(Response::new(pb::ListStatementsResponse {
            statements: statements.iter().map(statement_summary_to_pb).collect(),
        }))
    }

    async fn get_statement(
        &self,
        request: Request<pb::GetStatementRequest>,
    ) -> Result<Response<pb::Statement>, Status> {
        let (metadata, _, request) = request.into_parts();
        let account_id = self.report_account(&metadata, request.account_id).await?;
        let month: Month = request.month.parse()?;
        let statement = self.ledger.statement(&account_id, month).await?;
        Ok(Response::new(statement_to_pb(&statement)))
    }

    async fn get_ledger_head(
        &self,
        request: Request<pb::GetLedgerHeadRequest>,
    ) -> Result<Response<pb::LedgerHead>, Status> {
        let key = self.caller(&request).await?;
        let head = self.ledger.ledger_head(&key.account_id).await?;
        Ok(Response::new(pb::LedgerHead {
            account_id: head.account_id.to_string(),
            transaction_id: head.transaction_id.map(|id| id.to_string()),
            hash: head.hash,
        }))
    }

    async fn list_workspace_usage(
        &self,
        request: Request<pb::ListWorkspaceUsageRequest>,
    ) -> Result<Response<pb::ListWorkspaceUsageResponse>, Status> {
        let key = self.caller(&request).await?;
        let request = request.into_inner();
        let (from, to) = range(request.range.as_ref())?;
        let view = View::of_caller(&key, key_filter(request.api_key_id));
        let workspaces = self.ledger.workspace_usage(&view, from, to).await?;
        Ok(Response::new(pb::ListWorkspaceUsageResponse {
            workspaces: workspaces
                .iter()
                .map(|(workspace_id, totals)| pb::WorkspaceUsage {
                    workspace_id: workspace_id.clone(),
                    totals: Some(totals_to_pb(totals, Audience::Customer)),
                })
                .collect(),
        }))
    }
}
