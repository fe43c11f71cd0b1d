//! The gRPC surface: authentication of each service and the conversions between wire and domain types.
//! Money crosses the wire as decimal strings, times as `google.protobuf.Timestamp`.

mod account;
mod admin;
mod console;
mod metering;
mod payments;

pub use account::AccountApi;
pub use admin::AdminApi;
pub use console::ConsoleApi;
pub use metering::MeteringApi;
pub use payments::PaymentsApi;

use proto::billing::v1 as pb;
use tonic::metadata::MetadataMap;

use crate::accounts::Account;
use crate::credits::grants::{Category, CreditGrant};
use crate::credits::transactions::{Transaction, TransactionType};
use crate::error::BillingError;
use crate::events::webhooks::Webhooks;
use crate::events::webhooks::{Attempt, Endpoint};
use crate::events::{Event, EventType};
use crate::keys::ApiKey;
use crate::keys::ops::KeySpend;
use crate::keys::policy::Policy;
use crate::keys::{self, KeyType, Role};
use crate::ledger::{Caller, GrantTerms, Ledger};
use crate::payments::auto_recharge::AutoRecharge;
use crate::payments::ops::AutoRechargeView;
use crate::prices::{Price, TokenClasses};
use crate::sessions::Sessions;
use crate::statements::{Movement, Statement};
use crate::time::{self, Millis};
use crate::usage::buckets::{BucketPage, BucketQuery, Filters, Group, Report, Width};
use crate::usage::{Totals, UsageFilter, UsageRecord, UsageStatus};
use lifecycle::secret::{ExposeSecret, SecretString};
use money::Money;
use proto::credentials::{self, BearerError};
use proto::ids::ApiKeyId;

/// The secret of `authorization: Bearer <secret>`.
fn bearer(metadata: &MetadataMap) -> Result<&str, BillingError> {
    credentials::bearer(metadata).map_err(|error| match error {
        BearerError::Missing => BillingError::MissingCredentials,
        BearerError::Malformed => BillingError::MalformedCredentials,
    })
}

/// Admits the admin key and the operator's console sessions. A valid customer key (or a customer's
/// session) is told it lacks the right (PERMISSION_DENIED), anything else is unauthenticated.
async fn authorize_admin(
    ledger: &Ledger,
    sessions: &Sessions,
    admin_key: &SecretString,
    metadata: &MetadataMap,
) -> Result<(), BillingError> {
    let secret = bearer(metadata)?;
    if keys::secret_matches(secret, admin_key.expose_secret()) {
        return Ok(());
    }
    if let Some(session) = sessions.find(secret).await? {
        return match session.api_key_id {
            None => Ok(()),
            Some(_) => Err(BillingError::AdminRequired),
        };
    }
    ledger.authenticate(secret).await?;
    Err(BillingError::AdminRequired)
}

/// Admits the service token only; customer keys and the admin key are refused.
async fn authorize_service(
    ledger: &Ledger,
    service_token: &SecretString,
    admin_key: &SecretString,
    metadata: &MetadataMap,
) -> Result<(), BillingError> {
    let secret = bearer(metadata)?;
    if keys::secret_matches(secret, service_token.expose_secret()) {
        return Ok(());
    }
    if keys::secret_matches(secret, admin_key.expose_secret()) {
        return Err(BillingError::ServiceTokenRequired);
    }
    ledger.authenticate(secret).await?;
    Err(BillingError::ServiceTokenRequired)
}

/// The customer key of the call: the key itself, or the key of a customer's console session.
async fn authorize_customer(
    ledger: &Ledger,
    sessions: &Sessions,
    metadata: &MetadataMap,
) -> Result<Caller, BillingError> {
    let secret = bearer(metadata)?;
    match sessions.find(secret).await? {
        Some(session) => match &session.api_key_id {
            Some(key_id) => ledger.session_caller(key_id).await,
            // The operator's session is no customer.
            None => Err(BillingError::UnknownKey),
        },
        None => ledger.authenticate(secret).await,
    }
}

/// Who reads an account's usage reports (`AccountService/GetUsageBuckets`): the operator, or a customer.
enum Reader {
    Operator,
    Customer(Box<ApiKey>),
}

/// Admits the admin key and operator sessions as the operator, and customer keys and sessions as
/// themselves; anything else is unauthenticated.
async fn authorize_reader(
    ledger: &Ledger,
    sessions: &Sessions,
    admin_key: &SecretString,
    metadata: &MetadataMap,
) -> Result<Reader, BillingError> {
    let secret = bearer(metadata)?;
    if keys::secret_matches(secret, admin_key.expose_secret()) {
        return Ok(Reader::Operator);
    }
    if let Some(session) = sessions.find(secret).await? {
        return match &session.api_key_id {
            None => Ok(Reader::Operator),
            Some(key_id) => Ok(Reader::Customer(Box::new(
                ledger.session_caller(key_id).await?.key,
            ))),
        };
    }
    Ok(Reader::Customer(Box::new(
        ledger.authenticate(secret).await?.key,
    )))
}

fn money(field: &'static str, text: &str) -> Result<Money, BillingError> {
    Money::parse_request_amount(text)
        .map_err(|error| BillingError::invalid(field, error.to_string()))
}

fn optional_money(field: &'static str, text: Option<&str>) -> Result<Option<Money>, BillingError> {
    text.map(|text| money(field, text)).transpose()
}

fn timestamp(
    field: &'static str,
    ts: Option<&prost_types::Timestamp>,
) -> Result<Option<Millis>, BillingError> {
    ts.map(|ts| time::from_timestamp(field, ts)).transpose()
}

fn range(range: Option<&pb::TimeRange>) -> Result<(Option<Millis>, Option<Millis>), BillingError> {
    let Some(range) = range else {
        return Ok((None, None));
    };
    Ok((
        timestamp("range.from", range.from.as_ref())?,
        timestamp("range.to", range.to.as_ref())?,
    ))
}

fn key_type_to_pb(key_type: KeyType) -> pb::KeyType {
    match key_type {
        KeyType::Standard => pb::KeyType::Standard,
        KeyType::Internal => pb::KeyType::Internal,
    }
}

fn key_type_from_pb(value: i32) -> Result<KeyType, BillingError> {
    match pb::KeyType::try_from(value) {
        Ok(pb::KeyType::Standard) => Ok(KeyType::Standard),
        Ok(pb::KeyType::Internal) => Ok(KeyType::Internal),
        Ok(pb::KeyType::Unspecified) | Err(_) => Err(BillingError::invalid(
            "key_type",
            "must be standard or internal",
        )),
    }
}

fn transaction_type_to_pb(kind: TransactionType) -> pb::TransactionType {
    match kind {
        TransactionType::CreditPurchase => pb::TransactionType::CreditPurchase,
        TransactionType::UsageDeduction => pb::TransactionType::UsageDeduction,
        TransactionType::CreditAdjustment => pb::TransactionType::CreditAdjustment,
        TransactionType::Refund => pb::TransactionType::Refund,
        TransactionType::CreditGrant => pb::TransactionType::CreditGrant,
        TransactionType::CreditExpiry => pb::TransactionType::CreditExpiry,
    }
}

/// `None` for UNSPECIFIED (all types).
fn transaction_type_from_pb(value: i32) -> Result<Option<TransactionType>, BillingError> {
    match pb::TransactionType::try_from(value) {
        Ok(pb::TransactionType::Unspecified) => Ok(None),
        Ok(pb::TransactionType::CreditPurchase) => Ok(Some(TransactionType::CreditPurchase)),
        Ok(pb::TransactionType::UsageDeduction) => Ok(Some(TransactionType::UsageDeduction)),
        Ok(pb::TransactionType::CreditAdjustment) => Ok(Some(TransactionType::CreditAdjustment)),
        Ok(pb::TransactionType::Refund) => Ok(Some(TransactionType::Refund)),
        Ok(pb::TransactionType::CreditGrant) => Ok(Some(TransactionType::CreditGrant)),
        Ok(pb::TransactionType::CreditExpiry) => Ok(Some(TransactionType::CreditExpiry)),
        Err(_) => Err(BillingError::invalid("type", "unknown transaction type")),
    }
}

fn usage_status_from_pb(value: i32) -> Result<UsageStatus, BillingError> {
    UsageStatus::from_wire(value).ok_or_else(|| BillingError::invalid("status", "must be set"))
}

fn role_to_pb(role: Role) -> pb::Role {
    match role {
        Role::Owner => pb::Role::Owner,
        Role::Member => pb::Role::Member,
    }
}

/// `None` for UNSPECIFIED (the default applies).
fn role_from_pb(value: i32) -> Result<Option<Role>, BillingError> {
    match pb::Role::try_from(value) {
        Ok(pb::Role::Unspecified) => Ok(None),
        Ok(pb::Role::Owner) => Ok(Some(Role::Owner)),
        Ok(pb::Role::Member) => Ok(Some(Role::Member)),
        Err(_) => Err(BillingError::invalid("role", "must be owner or member")),
    }
}

fn policy_to_pb(policy: &Policy, expires_at: Option<Millis>) -> pb::KeyPolicy {
    pb::KeyPolicy {
        daily_limit: policy.daily_limit.map(|limit| limit.to_string()),
        monthly_limit: policy.monthly_limit.map(|limit| limit.to_string()),
        requests_per_minute: policy.requests_per_minute,
        tokens_per_minute: policy.tokens_per_minute,
        max_concurrent: policy.max_concurrent,
        allowed_models: policy.allowed_models.as_ref().map(|models| pb::ModelList {
            models: models.clone(),
        }),
        expires_at: expires_at.map(time::to_timestamp),
    }
}

/// A policy and the key expiry it carries.
fn policy_from_pb(policy: pb::KeyPolicy) -> Result<(Policy, Option<Millis>), BillingError> {
    Ok((
        Policy {
            daily_limit: optional_money("policy.daily_limit", policy.daily_limit.as_deref())?,
            monthly_limit: optional_money("policy.monthly_limit", policy.monthly_limit.as_deref())?,
            requests_per_minute: policy.requests_per_minute,
            tokens_per_minute: policy.tokens_per_minute,
            max_concurrent: policy.max_concurrent,
            allowed_models: policy.allowed_models.map(|list| list.models),
        },
        timestamp("policy.expires_at", policy.expires_at.as_ref())?,
    ))
}

/// An optional key id filter of a usage read.
/// An optional filter: absent or empty means "any"; otherwise bounded printable text.
fn filter_text(field: &'static str, value: Option<&str>) -> Result<String, BillingError> {
    let value = value.unwrap_or_default().to_string();
    crate::ledger::validate_text(field, &value, 200)?;
    Ok(value)
}

/// The filters of a usage listing (customer or operator), and the key it names if any.
fn usage_filter(
    request: &pb::ListUsageRequest,
) -> Result<(UsageFilter, Option<ApiKeyId>), BillingError> {
    // UNSPECIFIED: any status.
    let status = if request.status == pb::UsageStatus::Unspecified as i32 {
        None
    } else {
        Some(usage_status_from_pb(request.status)?)
    };
    let (from, to) = range(request.range.as_ref())?;
    let (from, to) = crate::ledger::range(from, to)?;
    let filter = UsageFilter {
        api_key_id: None,
        from,
        to,
        workspace_id: filter_text("workspace_id", request.workspace_id.as_deref())?,
        model: filter_text("model", request.model.as_deref())?,
        status,
        end_user_id: request
            .end_user_id
            .as_deref()
            .map(|id| filter_text("end_user_id", Some(id)))
            .transpose()?,
    };
    Ok((filter, key_filter(request.api_key_id.clone())))
}

/// What an account pays for a model: each class price after markup, and the fee.
fn account_price_to_pb(price: &Price) -> pb::AccountPrice {
    let charged = |base: Money| (base.decimal() * price.markup).normalize().to_string();
    let base = &price.base;
    pb::AccountPrice {
        model: price.model.clone(),
        input_price_per_1k: charged(base.input),
        output_price_per_1k: charged(base.output),
        cached_input_price_per_1k: charged(base.cached_input),
        cache_write_price_per_1k: charged(base.cache_write),
        cache_write_1h_price_per_1k: charged(base.cache_write_1h),
        audio_input_price_per_1k: charged(base.audio_input),
        audio_output_price_per_1k: charged(base.audio_output),
        request_fee: price.request_fee.to_string(),
        effective_from: Some(time::to_timestamp(price.effective_from)),
    }
}

/// A usage report's query from the wire.
fn bucket_query(request: pb::UsageBucketsRequest) -> Result<BucketQuery, BillingError> {
    let report = match pb::UsageReport::try_from(request.report) {
        Ok(pb::UsageReport::Completions) => Report::Completions,
        Ok(pb::UsageReport::Embeddings) => Report::Embeddings,
        Ok(pb::UsageReport::Costs) => Report::Costs,
        Ok(pb::UsageReport::Unspecified) | Err(_) => {
            return Err(BillingError::invalid("report", "unknown report"));
        }
    };
    let width = match pb::BucketWidth::try_from(request.bucket_width) {
        Ok(pb::BucketWidth::Minute) => Width::Minute,
        Ok(pb::BucketWidth::Hour) => Width::Hour,
        Ok(pb::BucketWidth::Day | pb::BucketWidth::Unspecified) => Width::Day,
        Err(_) => return Err(BillingError::invalid("bucket_width", "unknown width")),
    };
    let group_by = request
        .group_by
        .iter()
        .map(|group| match pb::UsageGroup::try_from(*group) {
            Ok(pb::UsageGroup::Model) => Ok(Group::Model),
            Ok(pb::UsageGroup::ApiKey) => Ok(Group::ApiKey),
            Ok(pb::UsageGroup::EndUser) => Ok(Group::EndUser),
            Ok(pb::UsageGroup::Workspace) => Ok(Group::Workspace),
            Ok(pb::UsageGroup::LineItem) => Ok(Group::LineItem),
            Ok(pb::UsageGroup::Unspecified) | Err(_) => {
                Err(BillingError::invalid("group_by", "unknown group"))
            }
        })
        .collect::<Result<_, _>>()?;
    let start = timestamp("start", request.start.as_ref())?
        .ok_or_else(|| BillingError::invalid("start_time", "is required"))?;
    Ok(BucketQuery {
        report,
        start,
        end: timestamp("end", request.end.as_ref())?,
        width,
        limit: request.limit,
        page: request.page,
        group_by,
        filters: Filters {
            models: request.models,
            api_key_ids: request.api_key_ids,
            end_user_ids: request.end_user_ids,
            workspace_ids: request.workspace_ids,
        },
    })
}

fn bucket_page_to_pb(page: BucketPage) -> pb::UsageBuckets {
    pb::UsageBuckets {
        buckets: page
            .buckets
            .into_iter()
            .map(|bucket| pb::UsageBucket {
                start: Some(time::to_timestamp(bucket.start)),
                end: Some(time::to_timestamp(bucket.end)),
                results: bucket
                    .results
                    .into_iter()
                    .map(|result| pb::UsageBucketResult {
                        model: result.model,
                        api_key_id: result.api_key_id,
                        end_user_id: result.end_user_id,
                        workspace_id: result.workspace_id,
                        line_item: result.line_item,
                        requests: result.requests,
                        input_tokens: result.input_tokens,
                        output_tokens: result.output_tokens,
                        cached_input_tokens: result.cached_input_tokens,
                        audio_input_tokens: result.audio_input_tokens,
                        audio_output_tokens: result.audio_output_tokens,
                        amount: result.amount.to_string(),
                    })
                    .collect(),
            })
            .collect(),
        next_page: page.next_page,
    }
}

fn key_filter(id: Option<String>) -> Option<ApiKeyId> {
    id.filter(|id| !id.is_empty()).map(ApiKeyId::from)
}

fn key_spend_to_pb(spend: &KeySpend) -> pb::KeySpend {
    pb::KeySpend {
        api_key: Some(api_key_to_pb(&spend.key)),
        spent_today: spend.spent_today.to_string(),
        spent_this_month: spend.spent_this_month.to_string(),
        last_used_at: spend.last_used_at.map(time::to_timestamp),
    }
}

fn api_key_to_pb(key: &ApiKey) -> pb::ApiKey {
    pb::ApiKey {
        id: key.id.to_string(),
        account_id: key.account_id.to_string(),
        role: role_to_pb(key.role).into(),
        policy: Some(policy_to_pb(&key.policy, key.expires_at)),
        previous_key_expires_at: key.previous_key_expires_at.map(time::to_timestamp),
        name: key.name.clone(),
        key_type: key_type_to_pb(key.key_type).into(),
        prefix: key.prefix.clone(),
        hint: key.hint.clone(),
        created_at: Some(time::to_timestamp(key.created_at)),
        revoked_at: key.revoked_at.map(time::to_timestamp),
        expires_at: key.expires_at.map(time::to_timestamp),
    }
}

/// An account, as seen through `key` (the calling key, or the key an admin call named) when there is one.
fn account_to_pb(account: &Account, key: Option<&ApiKey>) -> pb::Account {
    pb::Account {
        api_key_id: key.map(|key| key.id.to_string()).unwrap_or_default(),
        key_type: key
            .map_or(pb::KeyType::Unspecified, |key| key_type_to_pb(key.key_type))
            .into(),
        account_id: account.id.to_string(),
        name: account.name.clone(),
        role: key
            .map_or(pb::Role::Unspecified, |key| role_to_pb(key.role))
            .into(),
        policy: key.map(|key| policy_to_pb(&key.policy, key.expires_at)),
        credits_balance: account.credits_balance.to_string(),
        held_credits: account.held_credits.to_string(),
        total_spent: account.total_spent.to_string(),
        daily_limit: account.daily_limit.map(|limit| limit.to_string()),
        monthly_limit: account.monthly_limit.map(|limit| limit.to_string()),
        overage: account.overage.to_string(),
        email: account.email.clone(),
        discount_tiers: account
            .discount_tiers
            .iter()
            .map(|tier| pb::DiscountTier {
                from_monthly_spend: tier.from_monthly_spend.to_string(),
                percent_off: tier.percent_off.normalize().to_string(),
            })
            .collect(),
        low_balance_alerts: account
            .low_balance
            .iter()
            .map(|alert| alert.threshold.to_string())
            .collect(),
        created_at: Some(time::to_timestamp(account.created_at)),
        updated_at: Some(time::to_timestamp(account.updated_at)),
    }
}

/// The terms of a credit: category (default paid), expiry and priority (default by category).
fn grant_terms_from_pb(
    category: i32,
    expires_at: Option<&prost_types::Timestamp>,
    priority: Option<i64>,
) -> Result<GrantTerms, BillingError> {
    let category = match pb::GrantCategory::try_from(category) {
        Ok(pb::GrantCategory::Unspecified | pb::GrantCategory::Paid) => Category::Paid,
        Ok(pb::GrantCategory::Promotional) => Category::Promotional,
        Err(_) => {
            return Err(BillingError::invalid(
                "category",
                "must be paid or promotional",
            ));
        }
    };
    Ok(GrantTerms {
        category,
        priority: priority.unwrap_or(category.default_priority()),
        expires_at: timestamp("expires_at", expires_at)?,
    })
}

fn grant_to_pb(grant: &CreditGrant) -> pb::CreditGrant {
    pb::CreditGrant {
        id: grant.id.to_string(),
        account_id: grant.account_id.to_string(),
        category: match grant.category {
            Category::Paid => pb::GrantCategory::Paid,
            Category::Promotional => pb::GrantCategory::Promotional,
        }
        .into(),
        amount: grant.amount.to_string(),
        remaining: grant.remaining.to_string(),
        priority: grant.priority,
        expires_at: grant.expires_at.map(time::to_timestamp),
        created_at: Some(time::to_timestamp(grant.created_at)),
        transaction_id: grant.transaction_id.map(|id| id.to_string()),
        expired_at: grant.expired_at.map(time::to_timestamp),
    }
}

fn auto_recharge_to_pb(view: &AutoRechargeView, payments_configured: bool) -> pb::AutoRecharge {
    let settings = view.settings.as_ref();
    let money =
        |get: fn(&AutoRecharge) -> Money| settings.map(get).unwrap_or(Money::ZERO).to_string();
    pb::AutoRecharge {
        configured: settings.is_some(),
        enabled: settings.is_some_and(|settings| settings.enabled),
        threshold: money(|settings| settings.threshold),
        amount: money(|settings| settings.amount),
        monthly_max: money(|settings| settings.monthly_max),
        charged_this_month: money(|settings| settings.month_charged),
        consecutive_failures: settings.map_or(0, |settings| settings.failures),
        in_flight: settings.and_then(|settings| settings.in_flight.clone()),
        saved_card: view.saved_card,
        payments_configured,
        recent: view
            .recent
            .iter()
            .map(|charge| pb::AutoRechargeCharge {
                id: charge.id.clone(),
                amount: charge.amount.to_string(),
                status: charge.status.as_str().to_string(),
                payment_intent_id: charge.payment_intent_id.clone(),
                error: charge.error.clone(),
                created_at: Some(time::to_timestamp(charge.created_at)),
                updated_at: Some(time::to_timestamp(charge.updated_at)),
            })
            .collect(),
    }
}

fn attempt_to_pb(attempt: &Attempt) -> pb::DeliveryAttempt {
    pb::DeliveryAttempt {
        endpoint_id: attempt.endpoint_id.to_string(),
        attempt: u64::try_from(attempt.attempt).unwrap_or(0),
        at: Some(time::to_timestamp(attempt.at)),
        status: attempt.status.and_then(|status| u32::try_from(status).ok()),
        error: attempt.error.clone(),
        duration_ms: u64::try_from(attempt.duration_ms).unwrap_or(0),
        succeeded: attempt.succeeded,
    }
}

fn endpoint_to_pb(endpoint: &Endpoint, with_secret: bool) -> pb::WebhookEndpoint {
    pb::WebhookEndpoint {
        id: endpoint.id.to_string(),
        account_id: endpoint
            .account_id
            .as_ref()
            .map(ToString::to_string)
            .unwrap_or_default(),
        url: endpoint.url.clone(),
        event_types: endpoint.event_types.clone(),
        created_at: Some(time::to_timestamp(endpoint.created_at)),
        disabled_at: endpoint.disabled_at.map(time::to_timestamp),
        secret: with_secret.then(|| endpoint.secret.clone()),
    }
}

fn endpoints_to_pb(endpoints: &[Endpoint]) -> pb::ListWebhooksResponse {
    pb::ListWebhooksResponse {
        endpoints: endpoints
            .iter()
            .map(|endpoint| endpoint_to_pb(endpoint, false))
            .collect(),
    }
}

/// A page of events with the delivery attempts of each.
async fn events_to_pb(
    webhooks: &Webhooks,
    page: crate::ledger::Page<Event>,
) -> Result<pb::ListEventsResponse, BillingError> {
    let mut events = Vec::with_capacity(page.items.len());
    for event in &page.items {
        let attempts = webhooks.attempts(event.id.as_str()).await?;
        events.push(pb::Event {
            id: event.id.to_string(),
            account_id: event.account_id.to_string(),
            r#type: event.kind.as_str().to_string(),
            data_json: event.data.to_string(),
            created_at: Some(time::to_timestamp(event.created_at)),
            deliveries: attempts.iter().map(attempt_to_pb).collect(),
        });
    }
    Ok(pb::ListEventsResponse {
        events,
        next_cursor: page.next_cursor,
    })
}

/// An optional event type filter.
fn event_type_filter(kind: Option<String>) -> Result<Option<EventType>, BillingError> {
    match kind.as_deref() {
        None | Some("") => Ok(None),
        Some(text) => EventType::parse(text)
            .map(Some)
            .ok_or_else(|| BillingError::invalid("type", "unknown event type")),
    }
}

fn thresholds(texts: &[String]) -> Result<Vec<Money>, BillingError> {
    texts
        .iter()
        .map(|text| money("low_balance", text))
        .collect()
}

fn alerts_to_pb(alerts: &[crate::events::alerts::LowBalance]) -> pb::Alerts {
    pb::Alerts {
        low_balance: alerts
            .iter()
            .map(|alert| alert.threshold.to_string())
            .collect(),
    }
}

fn transaction_to_pb(transaction: &Transaction) -> pb::Transaction {
    pb::Transaction {
        id: transaction.id.to_string(),
        account_id: transaction.account_id.to_string(),
        api_key_id: transaction
            .api_key_id
            .as_ref()
            .map(ToString::to_string)
            .unwrap_or_default(),
        r#type: transaction_type_to_pb(transaction.kind).into(),
        amount: transaction.amount.to_string(),
        balance_after: transaction.balance_after.to_string(),
        total_spent_after: transaction.total_spent_after.to_string(),
        description: transaction.description.clone(),
        metadata_json: transaction.metadata.clone(),
        timestamp: Some(time::to_timestamp(transaction.timestamp)),
        idempotency_key: transaction.idempotency_key.clone(),
        prev_hash: transaction.prev_hash.clone(),
        hash: transaction.hash.clone(),
    }
}

/// Who reads money figures: the operator (AdminService, and executor-svc over MeteringService) sees each
/// record's provider cost and margin; a customer does not.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Audience {
    Operator,
    Customer,
}

fn classes_to_pb(classes: &TokenClasses) -> pb::TokenClasses {
    pb::TokenClasses {
        cached_input_tokens: classes.cached_input,
        cache_write_tokens: classes.cache_write,
        cache_write_1h_tokens: classes.cache_write_1h,
        reasoning_tokens: classes.reasoning,
        audio_input_tokens: classes.audio_input,
        audio_output_tokens: classes.audio_output,
    }
}

/// Token classes as sent (absent: none).
fn classes_from_pb(classes: Option<&pb::TokenClasses>) -> TokenClasses {
    classes.map_or_else(TokenClasses::default, |classes| TokenClasses {
        cached_input: classes.cached_input_tokens,
        cache_write: classes.cache_write_tokens,
        cache_write_1h: classes.cache_write_1h_tokens,
        reasoning: classes.reasoning_tokens,
        audio_input: classes.audio_input_tokens,
        audio_output: classes.audio_output_tokens,
    })
}

fn usage_to_pb(record: &UsageRecord, audience: Audience) -> pb::UsageRecord {
    let count = |value: i64| u64::try_from(value).unwrap_or(0);
    pb::UsageRecord {
        id: record.id.to_string(),
        account_id: record.account_id.to_string(),
        api_key_id: record.api_key_id.to_string(),
        execution_id: record.execution_id.to_string(),
        session_id: record.session_id.clone(),
        workspace_id: record.workspace_id.clone(),
        model: record.model.clone(),
        input_tokens: count(record.input_tokens),
        output_tokens: count(record.output_tokens),
        total_tokens: count(record.total_tokens),
        input_cost: record.input_cost.to_string(),
        output_cost: record.output_cost.to_string(),
        total_cost: record.total_cost.to_string(),
        charged: record.charged.to_string(),
        overage: record.overage.to_string(),
        duration_ms: count(record.duration_ms),
        status: pb::UsageStatus::from(record.status).into(),
        endpoint: record.endpoint.clone(),
        key_type: key_type_to_pb(record.key_type).into(),
        timestamp: Some(time::to_timestamp(record.timestamp)),
        refunded_amount: record.refunded_amount.map(|amount| amount.to_string()),
        provider: record.provider.clone(),
        attempts: u32::try_from(record.attempts).unwrap_or(u32::MAX),
        classes: Some(classes_to_pb(&record.classes)),
        request_fee: record.request_fee.to_string(),
        provider_cost: match audience {
            Audience::Operator => record.provider_cost.map(|cost| cost.to_string()),
            Audience::Customer => None,
        },
        discount_percent: record.discount_percent.normalize().to_string(),
        end_user_id: record.end_user_id.clone(),
    }
}

fn totals_to_pb(totals: &Totals, audience: Audience) -> pb::UsageTotals {
    let count = |value: i64| u64::try_from(value).unwrap_or(0);
    let operator = |money: Money| match audience {
        Audience::Operator => money.to_string(),
        Audience::Customer => String::new(),
    };
    pb::UsageTotals {
        requests: count(totals.requests),
        input_tokens: count(totals.input_tokens),
        output_tokens: count(totals.output_tokens),
        total_tokens: count(totals.total_tokens),
        total_cost: totals.total_cost.to_string(),
        provider_cost: operator(totals.provider_cost),
        margin: operator(totals.margin),
        classes: Some(classes_to_pb(&totals.classes)),
    }
}

fn price_to_pb(price: &Price) -> pb::Price {
    let base = &price.base;
    pb::Price {
        model: price.model.clone(),
        base_input_price_per_1k: base.input.to_string(),
        base_output_price_per_1k: base.output.to_string(),
        markup: price.markup.normalize().to_string(),
        input_price_per_1k: price.input_per_1k().normalize().to_string(),
        output_price_per_1k: price.output_per_1k().normalize().to_string(),
        effective_from: Some(time::to_timestamp(price.effective_from)),
        base_cached_input_price_per_1k: base.cached_input.to_string(),
        base_cache_write_price_per_1k: base.cache_write.to_string(),
        base_cache_write_1h_price_per_1k: base.cache_write_1h.to_string(),
        base_audio_input_price_per_1k: base.audio_input.to_string(),
        base_audio_output_price_per_1k: base.audio_output.to_string(),
        request_fee: price.request_fee.to_string(),
        account_id: price
            .account_id
            .as_ref()
            .map(ToString::to_string)
            .unwrap_or_default(),
        ended: price.ended,
    }
}

/// Statistics, reported for `api_key_id` (the calling or named key; empty when the account was named).
fn stats_to_pb(
    stats: &crate::usage::ops::Stats,
    api_key_id: Option<&ApiKeyId>,
    audience: Audience,
) -> pb::Stats {
    pb::Stats {
        api_key_id: api_key_id.map(ToString::to_string).unwrap_or_default(),
        account_id: stats.account.id.to_string(),
        totals: Some(totals_to_pb(&stats.totals, audience)),
        today: Some(totals_to_pb(&stats.today, audience)),
        this_month: Some(totals_to_pb(&stats.this_month, audience)),
        by_model: stats
            .by_model
            .iter()
            .map(|(model, totals)| pb::ModelUsage {
                model: model.clone(),
                totals: Some(totals_to_pb(totals, audience)),
            })
            .collect(),
        by_day: stats
            .by_day
            .iter()
            .map(|(day, totals)| pb::DayUsage {
                day: day.clone(),
                totals: Some(totals_to_pb(totals, audience)),
            })
            .collect(),
        forecast: Some(pb::Forecast {
            month_to_date: stats.forecast.month_to_date.to_string(),
            last_7_days: stats.forecast.last_7_days.to_string(),
            month_end: stats.forecast.month_end.to_string(),
        }),
        by_end_user: stats
            .by_end_user
            .iter()
            .map(|(end_user_id, totals)| pb::EndUserUsage {
                end_user_id: end_user_id.clone(),
                totals: Some(totals_to_pb(totals, audience)),
            })
            .collect(),
        credits_balance: stats.account.credits_balance.to_string(),
        total_spent: stats.account.total_spent.to_string(),
    }
}

fn settlement_to_pb(settlement: &crate::holds::ops::Settlement) -> pb::Settlement {
    pb::Settlement {
        usage: Some(usage_to_pb(&settlement.usage, Audience::Operator)),
        balance_after: settlement
            .usage
            .balance_after
            .map(|balance| balance.to_string()),
        total_spent: settlement
            .usage
            .total_spent_after
            .map(|spent| spent.to_string()),
        replayed: settlement.replayed,
    }
}

fn statement_summary_to_pb(statement: &Statement) -> pb::StatementSummary {
    pb::StatementSummary {
        month: statement.month.to_string(),
        number: statement.number,
        closed: statement.closed,
        opening_balance: statement.opening_balance.to_string(),
        closing_balance: statement.closing_balance.to_string(),
    }
}

fn movement_to_pb(movement: Movement) -> Option<pb::StatementMovement> {
    Some(pb::StatementMovement {
        amount: movement.amount.to_string(),
        count: movement.count,
    })
}

fn statement_to_pb(statement: &Statement) -> pb::Statement {
    pb::Statement {
        account_id: statement.account_id.to_string(),
        account_name: statement.account_name.clone(),
        month: statement.month.to_string(),
        number: statement.number,
        period_start: Some(time::to_timestamp(statement.month.start())),
        period_end: Some(time::to_timestamp(statement.month.end())),
        closed: statement.closed,
        issued_at: Some(time::to_timestamp(statement.issued_at)),
        opening_balance: statement.opening_balance.to_string(),
        credits: movement_to_pb(statement.credits),
        grants: movement_to_pb(statement.grants),
        usage: movement_to_pb(statement.usage),
        refunds: movement_to_pb(statement.refunds),
        adjustments: movement_to_pb(statement.adjustments),
        expiries: movement_to_pb(statement.expiries),
        closing_balance: statement.closing_balance.to_string(),
        usage_by_model: statement
            .usage_by_model
            .iter()
            .map(|model| pb::StatementUsage {
                model: model.model.clone(),
                requests: model.requests,
                input_tokens: model.input_tokens,
                output_tokens: model.output_tokens,
                classes: Some(classes_to_pb(&model.classes)),
                input_cost: model.input_cost.to_string(),
                output_cost: model.output_cost.to_string(),
                request_fees: model.request_fees.to_string(),
                charged: model.charged.to_string(),
                volume_discount: model.volume_discount.to_string(),
            })
            .collect(),
        volume_discounts: statement.volume_discounts.to_string(),
    }
}
