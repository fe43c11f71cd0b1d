//! The metering protocol: open (authenticate, check, hold), extend (grow the hold chunk by chunk or
//! stop), settle (usage record + deduction + balance + hold release, once per execution id), and the
//! release of expired holds.

use rust_decimal::Decimal;
use serde_json::json;

use super::limits;
use crate::credits::transactions::{self, TransactionType};
use crate::error::BillingError;
use crate::events::EventType;
use crate::holds::{self, Hold};
use crate::keys::ApiKey;
use crate::keys::KeyType;
use crate::ledger::{
    Bound, Caller, Entry, GrantEffect, Ledger, LedgerSettings, emit, validate_text,
};
use crate::prices::{self, Price, TokenClasses, TokenUsage};
use crate::store::{Batch, ExecutionState, Prefetch, Shard};
use crate::time::{self, Millis};
use crate::usage::{self, UsageRecord, UsageStatus};
use money::Money;
use proto::billing::v1::Labels;
use proto::ids::{AccountId, ApiKeyId, ExecutionId};
use proto::refusal::Refusal;

const MAX_ID_CHARS: usize = 128;
/// Expired holds released per sweep transaction batch.
const EXPIRY_BATCH: i64 = 500;

/// Whether an execution generates output tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputKind {
    Tokens,
    /// Embeddings: the input is all there is to pay for.
    None,
}

/// What an execution asks for at open.
#[derive(Debug, Clone)]
pub struct OpenRequest {
    pub execution_id: ExecutionId,
    pub labels: Labels,
    pub estimated_input_tokens: u64,
    /// 0 = no explicit limit.
    pub max_output_tokens: u64,
    /// No output at all (embeddings): nothing is held or required for output.
    pub output: OutputKind,
}

/// A placed hold.
#[derive(Debug, Clone)]
pub struct Opened {
    pub account_id: AccountId,
    pub api_key_id: ApiKeyId,
    pub key_type: KeyType,
    pub covered_output_tokens: u64,
    pub held: Money,
    pub price: Price,
    /// Where the key stands against its per-minute limits, this execution counted.
    pub rates: limits::RateStatus,
}

/// The answer to progress: whether the hold covers more output (ARCHITECTURE.md, "Vocabulary").
#[derive(Debug, Clone, PartialEq)]
pub enum Extension {
    /// Keep going: the hold covers this many output tokens.
    Continue {
        covered_output_tokens: u64,
        held: Money,
    },
    /// Stop once `covered_output_tokens` are out: the hold cannot be extended.
    Stop {
        covered_output_tokens: u64,
        reason: Refusal,
    },
}

/// A finished execution to settle.
#[derive(Debug, Clone)]
pub struct SettleRequest {
    pub account_id: AccountId,
    pub api_key_id: ApiKeyId,
    pub execution_id: ExecutionId,
    pub labels: Labels,
    pub input_tokens: u64,
    pub output_tokens: u64,
    pub status: UsageStatus,
    pub duration_ms: u64,
    /// Prices are those effective at this time; default: the hold's start, else now.
    pub started_at: Option<Millis>,
    /// The provider that served the call (empty: none did), and the providers asked.
    pub provider: String,
    pub attempts: u32,
    /// The token classes inside `input_tokens` and `output_tokens`.
    pub classes: TokenClasses,
}

/// The longest provider name recorded.
const MAX_PROVIDER_CHARS: usize = 128;

/// The result of a settlement, identical on every replay.
#[derive(Debug, Clone)]
pub struct Settlement {
    pub usage: UsageRecord,
    pub replayed: bool,
}

fn tokens(field: &'static str, count: u64, ceiling: u64) -> Result<i64, BillingError> {
    if count > ceiling {
        return Err(BillingError::invalid(
            field,
            format!("must be at most {ceiling}"),
        ));
    }
    i64::try_from(count).map_err(|_| BillingError::invalid(field, "too large"))
}

/// Checks what names an execution, the same at open and at settle: its id here, its labels by their one
/// rule (`proto::labels`).
fn validate_execution(execution_id: &ExecutionId, labels: &Labels) -> Result<(), BillingError> {
    if execution_id.as_str().is_empty() {
        return Err(BillingError::invalid("execution_id", "is required"));
    }
    validate_text("execution_id", execution_id.as_str(), MAX_ID_CHARS)?;
    labels
        .validate()
        .map_err(|error| BillingError::invalid(error.field, error.problem))
}

impl Ledger {
    /// Checks the key's policy, credit and caps and places a hold for the input and a first chunk of
    /// output.
    #[tracing::instrument(skip_all, fields(api_key_id = %caller.key.id, execution_id = %request.execution_id), err)]
    pub async fn open(
        &self,
        caller: &Caller,
        request: &OpenRequest,
    ) -> Result<Opened, BillingError> {
        validate_execution(&request.execution_id, &request.labels)?;
        let ceiling = self.settings.max_execution_tokens;
        let input_tokens = tokens(
            "estimated_input_tokens",
            request.estimated_input_tokens,
            ceiling,
        )?;
        tokens("max_output_tokens", request.max_output_tokens, ceiling)?;
        let max_output = match (request.output, request.max_output_tokens) {
            (OutputKind::None, _) => 0,
            (OutputKind::Tokens, 0) => ceiling,
            (OutputKind::Tokens, max_output) => max_output,
        };

        let (settings, caller, request) = (self.settings.clone(), caller.clone(), request.clone());
        let prefetch = Prefetch {
            accounts: vec![caller.key.account_id.clone()],
            keys: vec![caller.key.id.clone()],
            models: vec![request.labels.model.clone()],
            executions: vec![request.execution_id.clone()],
            rows: 0,
        };
        self.store
            .write_prefetched(
                Shard::Account(&caller.key.account_id.clone()),
                prefetch,
                move |batch| {
                    Box::pin(async move {
                        Self::open_in(
                            batch,
                            &settings,
                            &caller,
                            &request,
                            input_tokens,
                            max_output,
                        )
                        .await
                    })
                },
            )
            .await
    }

    /// The transaction of [`Ledger::open`].
    async fn open_in(
        batch: &mut Batch,
        settings: &LedgerSettings,
        caller: &Caller,
        request: &OpenRequest,
        input_tokens: i64,
        max_output: u64,
    ) -> Result<Opened, BillingError> {
        let ceiling = settings.max_execution_tokens;
        let now = time::now_ms();
        let mut account = batch.lock(&caller.key.account_id).await?;
        // The authenticated key may come from the cache: it is checked again under the lock.
        let key = Ledger::recheck(batch, caller, now).await?;
        // A repeated open is told so whatever else is wrong with it.
        if batch.execution(&request.execution_id).await? != ExecutionState::Unused {
            return Err(BillingError::ExecutionExists);
        }
        let rates = Self::admit(batch, &key, request, now).await?;
        let price = batch.price(&account.id, &request.labels.model, now).await?;

        let (amount, covered) = match key.key_type {
            // Internal keys are never charged: no money is held and nothing limits the output.
            KeyType::Internal => (Money::ZERO, max_output),
            KeyType::Standard => {
                let input_cost = price.hold_input_cost(request.estimated_input_tokens)?;
                let minimal = price.hold_output_cost(settings.min_output_tokens.min(max_output))?;
                let needed = input_cost
                    .checked_add(minimal)
                    .ok_or(BillingError::Overflow)?;
                let headroom = Ledger::headroom(batch, &account, Some(&key), now).await?;
                if headroom.amount < needed {
                    return Err(headroom.bound.refusal(account.credits_balance));
                }
                let budget = headroom
                    .amount
                    .checked_sub(input_cost)
                    .ok_or(BillingError::Overflow)?;
                let first_chunk = settings.hold_chunk_tokens.min(max_output);
                let covered = price.affordable_output_tokens(budget, first_chunk);
                let amount = input_cost
                    .checked_add(price.hold_output_cost(covered)?)
                    .ok_or(BillingError::Overflow)?;
                (amount, covered)
            }
        };
        let hold = Hold {
            id: uuid::Uuid::new_v4().to_string(),
            account_id: account.id.clone(),
            api_key_id: key.id.clone(),
            execution_id: request.execution_id.clone(),
            amount,
            input_tokens,
            covered_output_tokens: tokens("covered_output_tokens", covered, ceiling)?,
            max_output_tokens: tokens("max_output_tokens", max_output, ceiling)?,
            model: request.labels.model.clone(),
            workspace_id: request.labels.workspace_id.clone(),
            session_id: request.labels.session_id.clone(),
            endpoint: request.labels.endpoint.clone(),
            end_user_id: request.labels.end_user_id.clone(),
            started_at: now,
            expires_at: now + settings.hold_ttl_ms,
        };
        batch
            .set_execution(&request.execution_id, ExecutionState::Held(Box::new(hold)))
            .await?;
        account.held_credits = account
            .held_credits
            .checked_add(amount)
            .ok_or(BillingError::Overflow)?;
        batch.save(&account);
        Ok(Opened {
            account_id: account.id.clone(),
            api_key_id: key.id.clone(),
            key_type: key.key_type,
            covered_output_tokens: covered,
            held: amount,
            price,
            rates,
        })
    }

    /// The key's model allow-list and rate and concurrency limits.
    async fn admit(
        batch: &mut Batch,
        key: &ApiKey,
        request: &OpenRequest,
        now: Millis,
    ) -> Result<limits::RateStatus, BillingError> {
        if !key.policy.allows_model(&request.labels.model) {
            return Err(BillingError::ModelNotAllowed {
                model: request.labels.model.clone(),
            });
        }
        if !key.policy.limits_rate() {
            return Ok(limits::RateStatus::default());
        }
        let since = now - limits::WINDOW_MS;
        let holds = holds::sql::of_key(batch.connection().await?, &key.id, since).await?;
        let recent = usage::sql::recent(batch.connection().await?, &key.id, since).await?;
        limits::check(
            &key.policy,
            &holds,
            &recent,
            request.estimated_input_tokens,
            now,
        )
    }

    /// Whether output has come within half a chunk of what the hold covers, so that it should be extended.
    pub fn due_for_extension(&self, output_tokens: u64, covered_output_tokens: u64) -> bool {
        due_for_extension(&self.settings, output_tokens, covered_output_tokens)
    }

    /// The output from which [`Ledger::due_for_extension`] holds for `covered_output_tokens`: the executor reports
    /// progress from there on, and not before. At least 1 (0 on the wire means "every interval").
    pub fn report_at(&self, covered_output_tokens: u64) -> u64 {
        covered_output_tokens
            .saturating_sub(self.settings.hold_chunk_tokens / 2)
            .max(1)
    }

    /// Extends the hold of a running execution by up to a chunk when its output nears what the hold covers;
    /// answers stop when the output has reached it and credit or a cap leaves no room to extend it. Every call also
    /// pushes the hold's expiry back: a live stream keeps its hold.
    #[tracing::instrument(skip(self), err)]
    pub async fn extend(
        &self,
        (account_id, api_key_id): (&AccountId, &ApiKeyId),
        execution_id: &ExecutionId,
        output_tokens: u64,
    ) -> Result<Extension, BillingError> {
        let (settings, account_id, api_key_id, execution_id) = (
            self.settings.clone(),
            account_id.clone(),
            api_key_id.clone(),
            execution_id.clone(),
        );
        let prefetch = Prefetch {
            accounts: vec![account_id.clone()],
            keys: vec![api_key_id.clone()],
            models: Vec::new(),
            executions: vec![execution_id.clone()],
            rows: 0,
        };
        self.store
            .write_prefetched(
                Shard::Account(&account_id.clone()),
                prefetch,
                move |batch| {
                    Box::pin(async move {
                        Self::extend_in(
                            batch,
                            &settings,
                            (&account_id, &api_key_id),
                            &execution_id,
                            output_tokens,
                        )
                        .await
                    })
                },
            )
            .await
    }

    /// The transaction of [`Ledger::extend`].
    async fn extend_in(
        batch: &mut Batch,
        settings: &LedgerSettings,
        (account_id, api_key_id): (&AccountId, &ApiKeyId),
        execution_id: &ExecutionId,
        output_tokens: u64,
    ) -> Result<Extension, BillingError> {
        let now = time::now_ms();
        let mut account = batch.lock(account_id).await?;
        let ExecutionState::Held(mut hold) = batch.execution(execution_id).await? else {
            // The hold expired (the stream was silent for longer than the TTL): nothing covers more output.
            return Ok(Extension::Stop {
                covered_output_tokens: output_tokens,
                reason: Refusal::HoldExpired,
            });
        };
        if &hold.api_key_id != api_key_id {
            return Err(BillingError::ExecutionExists);
        }
        let covered = u64::try_from(hold.covered_output_tokens).unwrap_or(0);
        let max_output = u64::try_from(hold.max_output_tokens).unwrap_or(0);
        hold.expires_at = now + settings.hold_ttl_ms;
        let wants_more =
            due_for_extension(settings, output_tokens, covered) && covered < max_output;
        let mut stop_reason = None;
        let key = batch.key(api_key_id).await?;
        if wants_more && key.key_type == KeyType::Standard {
            let price = batch
                .price(account_id, &hold.model, hold.started_at)
                .await?;
            let headroom = Ledger::headroom(batch, &account, Some(&key), now).await?;
            let held_for_output = price.hold_output_cost(covered)?;
            let budget = held_for_output
                .checked_add(headroom.amount)
                .ok_or(BillingError::Overflow)?;
            let target = covered
                .saturating_add(settings.hold_chunk_tokens)
                .min(max_output);
            let new_cover = price.affordable_output_tokens(budget, target).max(covered);
            if new_cover > covered {
                let delta = price
                    .hold_output_cost(new_cover)?
                    .checked_sub(held_for_output)
                    .ok_or(BillingError::Overflow)?;
                hold.amount = hold
                    .amount
                    .checked_add(delta)
                    .ok_or(BillingError::Overflow)?;
                hold.covered_output_tokens =
                    tokens("covered_output_tokens", new_cover, max_output)?;
                account.held_credits = account
                    .held_credits
                    .checked_add(delta)
                    .ok_or(BillingError::Overflow)?;
                batch.save(&account);
            } else if output_tokens >= covered {
                stop_reason = Some(headroom.bound.reason());
                let data = json!({
                    "executionId": execution_id.as_str(), "apiKeyId": api_key_id.as_str(),
                    "reason": headroom.bound.reason().as_str(), "grantedOutputTokens": covered,
                    "model": hold.model,
                });
                emit(
                    batch,
                    account_id,
                    EventType::ExecutionCutOff,
                    data.clone(),
                    now,
                );
                if let Bound::Daily(limit, scope) | Bound::Monthly(limit, scope) = headroom.bound {
                    let mut data = data;
                    data["limit"] = limit.to_string().into();
                    data["scope"] = scope.as_str().into();
                    emit(batch, account_id, EventType::LimitReached, data, now);
                }
            }
        }
        let covered_output_tokens = u64::try_from(hold.covered_output_tokens).unwrap_or(0);
        let held = hold.amount;
        batch
            .set_execution(execution_id, ExecutionState::Held(hold))
            .await?;
        Ok(match stop_reason {
            Some(reason) => Extension::Stop {
                covered_output_tokens,
                reason,
            },
            None => Extension::Continue {
                covered_output_tokens,
                held,
            },
        })
    }

    /// Settles an execution with the provider's usage: usage record, deduction, balance, total spent and
    /// hold release in one transaction. A second settlement of the same execution id changes nothing and
    /// returns the first.
    #[tracing::instrument(skip_all, fields(api_key_id = %request.api_key_id, execution_id = %request.execution_id), err)]
    pub async fn settle(&self, request: &SettleRequest) -> Result<Settlement, BillingError> {
        validate_execution(&request.execution_id, &request.labels)?;
        if request.provider.chars().count() > MAX_PROVIDER_CHARS {
            return Err(BillingError::invalid("provider", "too long"));
        }
        TokenUsage {
            input: request.input_tokens,
            output: request.output_tokens,
            classes: request.classes,
        }
        .validate()?;
        let ceiling = self.settings.max_execution_tokens;
        let input_tokens = tokens("input_tokens", request.input_tokens, ceiling)?;
        let output_tokens = tokens("output_tokens", request.output_tokens, ceiling)?;
        let duration_ms = i64::try_from(request.duration_ms)
            .map_err(|_| BillingError::invalid("duration_ms", "too large"))?;

        let request = request.clone();
        let prefetch = Prefetch {
            accounts: vec![request.account_id.clone()],
            keys: vec![request.api_key_id.clone()],
            models: vec![request.labels.model.clone()],
            executions: vec![request.execution_id.clone()],
            rows: 1,
        };
        self.store
            .write_prefetched(
                Shard::Account(&request.account_id.clone()),
                prefetch,
                move |batch| {
                    Box::pin(async move {
                        Self::settle_in(batch, &request, input_tokens, output_tokens, duration_ms)
                            .await
                    })
                },
            )
            .await
    }

    /// The transaction of [`Ledger::settle`].
    async fn settle_in(
        batch: &mut Batch,
        request: &SettleRequest,
        input_tokens: i64,
        output_tokens: i64,
        duration_ms: i64,
    ) -> Result<Settlement, BillingError> {
        let now = time::now_ms();
        let mut account = batch.lock(&request.account_id).await?;
        let key = batch.key(&request.api_key_id).await?;
        if key.account_id != account.id {
            return Err(BillingError::NotFound("api key"));
        }
        // Settling takes the hold away (the usage record replaces it). No hold: it expired, the execution
        // never opened one, or this is a replay.
        let hold = match batch.execution(&request.execution_id).await? {
            // Another key's execution.
            ExecutionState::Held(hold) if hold.api_key_id != request.api_key_id => {
                return Err(BillingError::ExecutionExists);
            }
            ExecutionState::Held(hold) => Some(*hold),
            ExecutionState::Unused => None,
            ExecutionState::Settled(_) => {
                let first = batch
                    .usage_of(&request.execution_id)
                    .await?
                    .ok_or(BillingError::NotFound("usage record"))?;
                if first.api_key_id != request.api_key_id {
                    return Err(BillingError::ExecutionExists);
                }
                return Ok(Settlement {
                    usage: first,
                    replayed: true,
                });
            }
        };
        let key_type = key.key_type;
        let started_at = hold
            .as_ref()
            .map(|hold| hold.started_at)
            .or(request.started_at)
            .unwrap_or(now);
        let price = batch
            .price(&account.id, &request.labels.model, started_at)
            .await?;
        // The volume tier reached by the month's settled spend so far (BILLING.md, "Volume tiers").
        let percent_off = if account.discount_tiers.is_empty() {
            Decimal::ZERO
        } else {
            let month_spend = transactions::sql::spend_since(
                batch.connection().await?,
                &account.id,
                None,
                time::month_start(now),
            )
            .await?;
            prices::percent_off(&account.discount_tiers, month_spend)
        };
        let usage = TokenUsage {
            input: request.input_tokens,
            output: request.output_tokens,
            classes: request.classes,
        };
        let cost = price.cost(&usage, percent_off)?;
        let charged = match key_type {
            KeyType::Standard => cost.total,
            KeyType::Internal => Money::ZERO,
        };
        let held = hold.as_ref().map_or(Money::ZERO, |hold| hold.amount);
        // What the provider's count cost beyond the hold (the local estimate's gap), recorded.
        let overage = charged
            .checked_sub(held)
            .filter(|gap| gap.is_positive())
            .unwrap_or(Money::ZERO);

        if let Some(hold) = &hold {
            account.held_credits = account
                .held_credits
                .checked_sub(hold.amount)
                .ok_or(BillingError::Overflow)?;
        }
        let (balance_after, total_spent_after) = match key_type {
            KeyType::Standard => (
                Some(
                    account
                        .credits_balance
                        .checked_sub(charged)
                        .ok_or(BillingError::Overflow)?,
                ),
                Some(
                    account
                        .total_spent
                        .checked_add(charged)
                        .ok_or(BillingError::Overflow)?,
                ),
            ),
            KeyType::Internal => (None, None),
        };
        let record = batch
            .insert_usage(UsageRecord {
                id: 0,
                account_id: account.id.clone(),
                api_key_id: request.api_key_id.clone(),
                execution_id: request.execution_id.clone(),
                session_id: request.labels.session_id.clone(),
                workspace_id: request.labels.workspace_id.clone(),
                timestamp: now,
                input_tokens,
                output_tokens,
                total_tokens: input_tokens + output_tokens,
                input_cost: cost.input,
                output_cost: cost.output,
                total_cost: cost.total,
                charged,
                overage,
                model: request.labels.model.clone(),
                duration_ms,
                status: request.status,
                endpoint: request.labels.endpoint.clone(),
                key_type,
                balance_after,
                total_spent_after,
                refunded_amount: None,
                started_at: Some(started_at),
                provider: request.provider.clone(),
                attempts: i64::from(request.attempts),
                classes: request.classes,
                request_fee: cost.request_fee,
                provider_cost: Some(cost.provider),
                discount_percent: percent_off,
                end_user_id: request.labels.end_user_id.clone(),
                discount: match key_type {
                    KeyType::Standard => cost.discount,
                    KeyType::Internal => Money::ZERO,
                },
            })
            .await?;
        if charged.is_positive() {
            let entry = Entry {
                kind: TransactionType::UsageDeduction,
                grant: GrantEffect::Draw,
                api_key_id: Some(request.api_key_id.clone()),
                amount: charged.negated(),
                description: format!(
                    "Usage: {} ({} tokens)",
                    request.labels.model,
                    input_tokens + output_tokens
                ),
                metadata: json!({ "execution_id": request.execution_id.as_str(), "usage_record_id": record.id.to_string() }),
                idempotency_key: None,
            };
            Ledger::post(batch, &mut account, entry, now).await?;
        }
        account.updated_at = now;
        batch.save(&account);
        if overage.is_positive() {
            tracing::info!(%overage, "charge exceeded the hold (provider count above the estimate)");
        }
        Ok(Settlement {
            usage: record,
            replayed: false,
        })
    }

    /// Releases holds whose time is up, one account transaction each. Returns how many were released.
    pub async fn release_expired_holds(&self) -> Result<usize, BillingError> {
        let now = time::now_ms();
        let candidates = {
            let mut connection = self.store.reader().acquire().await?;
            holds::sql::expired(&mut connection, now, EXPIRY_BATCH).await?
        };
        let mut released = 0;
        for candidate in candidates {
            let (execution_id, account_id) =
                (candidate.execution_id.clone(), candidate.account_id.clone());
            let prefetch = Prefetch {
                accounts: vec![account_id.clone()],
                executions: vec![execution_id.clone()],
                ..Prefetch::default()
            };
            let released_hold = self
                .store
                .write_prefetched(
                    Shard::Account(&candidate.account_id),
                    prefetch,
                    move |batch| {
                        Box::pin(async move {
                            Self::release_in(batch, &account_id, &execution_id, now).await
                        })
                    },
                )
                .await?;
            if let Some(hold) = released_hold {
                tracing::info!(execution_id = %hold.execution_id, amount = %hold.amount, "expired hold released");
                released += 1;
            }
        }
        Ok(released)
    }

    /// Deletes the hold of `execution_id` if it is still expired under the account lock (the stream may have
    /// extended or settled it since it was listed). Returns the released hold.
    async fn release_in(
        batch: &mut Batch,
        account_id: &AccountId,
        execution_id: &ExecutionId,
        now: Millis,
    ) -> Result<Option<Hold>, BillingError> {
        let mut account = batch.lock(account_id).await?;
        let hold = match batch.execution(execution_id).await? {
            ExecutionState::Held(hold) if hold.expires_at <= now => *hold,
            ExecutionState::Held(_) | ExecutionState::Unused | ExecutionState::Settled(_) => {
                return Ok(None);
            }
        };
        batch
            .set_execution(execution_id, ExecutionState::Unused)
            .await?;
        account.held_credits = account
            .held_credits
            .checked_sub(hold.amount)
            .ok_or(BillingError::Overflow)?;
        batch.save(&account);
        Ok(Some(hold))
    }
}

/// Whether output has come within half a chunk of what the hold covers, so that it should be extended.
fn due_for_extension(
    settings: &LedgerSettings,
    output_tokens: u64,
    covered_output_tokens: u64,
) -> bool {
    output_tokens.saturating_add(settings.hold_chunk_tokens / 2) >= covered_output_tokens
}
