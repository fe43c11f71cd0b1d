//! Settlement: the charge of a finished execution sent to billing-svc with the provider's usage, or written
//! to the spool when billing-svc cannot take it, and what billing made of it ([`Charge`]); and the refusal
//! of a standard key's execution while the spool cannot be written.

use std::time::SystemTime;

use proto::billing::v1::{KeyType, MeterClose, MeterOpened, Settlement, UsageStatus};

use super::outcome::{BillingView, Costs};
use super::request::Call;
use crate::answer::TokenClasses;
use crate::error::ExecutorError;
use crate::metering::MeterSession;
use crate::spool::{Spool, SpooledSettlement};
use proto::ids::ApiKeyId;

/// What billing-svc made of an execution's charge.
pub(crate) struct Charge {
    pub costs: Option<Costs>,
    pub billing: BillingView,
}

/// Settles with billing-svc, or spools the settlement when it cannot take it; what billing made of it.
pub(super) async fn settle(
    spool: &Spool,
    call: &Call,
    opened: &MeterOpened,
    session: MeterSession,
    close: MeterClose,
    started_at: SystemTime,
) -> Charge {
    let settlement: Option<Settlement> = match session.close(close.clone()).await {
        Ok(settlement) => Some(settlement),
        Err(not_settled) => {
            tracing::warn!(%not_settled, "billing-svc did not settle; spooling the settlement");
            let spooled = SpooledSettlement {
                api_key_id: ApiKeyId::from(opened.api_key_id.clone()),
                execution_id: call.execution_id.clone(),
                request_id: call.request_id.clone(),
                model: call.labels.model.clone(),
                workspace_id: call.labels.workspace_id.clone(),
                session_id: call.labels.session_id.clone(),
                endpoint: call.labels.endpoint.clone(),
                end_user_id: call.labels.end_user_id.clone(),
                input_tokens: close.input_tokens,
                output_tokens: close.output_tokens,
                status: close.status().as_str_name().to_string(),
                duration_ms: close.duration_ms,
                started_at_unix_nanos: SpooledSettlement::started_at(started_at),
                provider: close.provider.clone(),
                attempts: close.attempts,
                classes: TokenClasses::from_pb(close.classes.as_ref()),
            };
            if let Err(error) = spool.add(spooled).await {
                tracing::error!(%error, "cannot write the spool; the settlement is kept in memory only");
            }
            None
        }
    };
    // Only billing-svc prices usage: the costs are those of its usage record, or none yet.
    let costs = settlement
        .as_ref()
        .and_then(|settlement| settlement.usage.as_ref())
        .map(|usage| Costs {
            input: usage.input_cost.clone(),
            output: usage.output_cost.clone(),
            total: usage.total_cost.clone(),
        });
    let billing = match (opened.key_type(), settlement) {
        (KeyType::Internal, _) => BillingView::Internal,
        (KeyType::Standard | KeyType::Unspecified, Some(settlement)) => BillingView::Settled {
            balance_after: settlement.balance_after,
            total_spent: settlement.total_spent,
        },
        (KeyType::Standard | KeyType::Unspecified, None) => BillingView::Pending,
    };
    Charge { costs, billing }
}

/// Refuses a standard key's execution, before the model is called, while the spool cannot be written:
/// if billing-svc did not take its settlement at the end, the settlement would live only in memory and
/// be lost on a restart. Its hold is settled at once with no tokens. Internal keys are never charged and
/// go ahead.
pub(super) async fn refuse_without_spool(
    spool: &Spool,
    call: &Call,
    session: MeterSession,
    started_at: SystemTime,
) -> Result<MeterSession, ExecutorError> {
    if spool.writable() || session.opened.key_type() == KeyType::Internal {
        return Ok(session);
    }
    let opened = session.opened.clone();
    let close = MeterClose {
        input_tokens: 0,
        output_tokens: 0,
        status: UsageStatus::Failed.into(),
        duration_ms: 0,
        provider: String::new(),
        attempts: 0,
        classes: None,
    };
    settle(spool, call, &opened, session, close, started_at).await;
    Err(ExecutorError::SpoolUnwritable)
}
