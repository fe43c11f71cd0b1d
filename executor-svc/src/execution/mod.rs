//! One execution from start to settlement: open the metering stream (the hold), call the model, keep the
//! output inside what the hold covers, stop when billing says so, settle with the provider's usage, and
//! spool the settlement when billing-svc cannot take it.
//!
//! Unary and streamed executions run the same way: the model is always streamed, and the hold grows chunk
//! by chunk while it generates, so a unary call gets every token a streamed one would (it is never capped
//! to its first hold). Each execution runs in its own task (tracked, so a shutdown waits for it): the gRPC
//! handler only waits for the result, and a client that goes away cancels the model call but never skips
//! the settlement.
//!
//! Where things are: [`Executor`] here (open, generate, settle, in that order); [`request`] (what is
//! asked), [`outcome`] (what is answered), [`sink`] (where the output goes), [`hold`] (the executor's view
//! of the hold and when it grows), [`generation`] (the model's answer under the hold, and what to charge),
//! [`settlement`] (settle, or spool).

mod generation;
mod hold;
mod outcome;
mod request;
mod settlement;
mod sink;

use lifecycle::secret::ExposeSecret;
use std::sync::Arc;
use std::time::{Instant, SystemTime};

use proto::billing::v1::{MeterClose, MeterOpen, MeterOpened};
use proto::ending::FinishReason;
use tokio_util::task::TaskTracker;
use tracing::Instrument;

use crate::answer::ProviderUsage;
use crate::error::ExecutorError;
use crate::metering::{MeterSession, Metering};
use crate::providers::Providers;
use crate::spool::Spool;
use crate::tokens;
use crate::upstream::Wire;
use generation::{End, charge, generate};

pub use outcome::{BillingView, Costs, Outcome, StreamEvent, rate_limits};
pub use request::{Call, ExecutionRequest, Shape};
pub(crate) use settlement::Charge;
pub use sink::Sink;

/// Settings of every execution.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Report progress every this many output tokens.
    pub progress_interval_tokens: u64,
}

/// Runs executions.
pub struct Executor {
    pub(crate) providers: Providers,
    metering: Metering,
    spool: Spool,
    limits: Limits,
    pub(crate) tasks: TaskTracker,
}

impl Executor {
    pub fn new(
        providers: Providers,
        metering: Metering,
        spool: Spool,
        limits: Limits,
        tasks: TaskTracker,
    ) -> Executor {
        Executor {
            providers,
            metering,
            spool,
            limits,
            tasks,
        }
    }

    /// Starts an execution in its own tracked task; the result goes to `sink`.
    pub fn spawn(self: &Arc<Self>, request: ExecutionRequest, sink: Sink) {
        let span = tracing::info_span!(
            "execution",
            request_id = %request.call.request_id,
            execution_id = %request.call.execution_id,
            model = %request.call.labels.model,
        );
        let executor = self.clone();
        self.tasks.spawn(
            async move {
                let mut sink = sink;
                let result = executor.run(&request, &mut sink).await;
                match &result {
                    Ok(outcome) => tracing::info!(
                        input_tokens = outcome.input_tokens,
                        output_tokens = outcome.output_tokens,
                        finish = ?outcome.finish,
                        billing = ?outcome.billing,
                        "execution finished"
                    ),
                    Err(error) => tracing::info!(%error, "execution failed"),
                }
                sink.finish(result).await;
            }
            .instrument(span),
        );
    }

    async fn run(
        &self,
        request: &ExecutionRequest,
        sink: &mut Sink,
    ) -> Result<Outcome, ExecutorError> {
        let started_at = SystemTime::now();
        let clock = Instant::now();
        let call = &request.call;
        // A model no route serves is refused before anything is held.
        self.providers.check_routed(&call.labels.model)?;
        let estimated_input_tokens = tokens::prompt_tokens(
            &call.labels.model,
            request.chat.messages(),
            request.chat.body.get("tools"),
        );
        let open = MeterOpen {
            api_key: call.api_key.expose_secret().to_string(),
            execution_id: call.execution_id.to_string(),
            estimated_input_tokens,
            max_output_tokens: request.chat.hold_ceiling(),
            input_only: false,
            labels: Some(call.labels.clone()),
            ..MeterOpen::default()
        };
        // The hold comes first: without it the model is never called.
        let session = self.metering.open(open, &call.request_id).await?;
        let mut session = self.refuse_without_spool(call, session, started_at).await?;
        let opened = session.opened.clone();
        tracing::debug!(covered = opened.covered_output_tokens, held = %opened.held, "hold placed");
        let rate_limits = rate_limits(&opened);
        if let Some(limits) = &rate_limits {
            sink.limits(limits).await;
        }

        let assemble = sink.is_unary() && request.shape == Shape::ChatCompletion;
        let (mut generation, end) = generate(
            &self.providers,
            self.limits.progress_interval_tokens,
            request,
            &mut session,
            sink,
            assemble,
        )
        .await;
        if matches!(end, End::StoppedByCredit)
            && generation.wire == Some(Wire::ChatChunks)
            && let Some(last) = generation.answer.cut_off_chunk()
        {
            sink.made_chunk(request.shape, last).await;
        }

        let (charged_usage, status) = charge(
            &generation,
            &end,
            estimated_input_tokens,
            &call.labels.model,
        );
        let ProviderUsage {
            input_tokens,
            output_tokens,
            classes,
        } = charged_usage;
        let finish = match &end {
            End::StoppedByCredit => FinishReason::CreditExhausted,
            End::Completed if generation.first_choice_finish.as_deref() == Some("length") => {
                FinishReason::Length
            }
            End::Completed | End::ClientGone | End::Failed(_) => FinishReason::Stop,
        };
        let close = MeterClose {
            input_tokens,
            output_tokens,
            status: status.into(),
            duration_ms: u64::try_from(clock.elapsed().as_millis()).unwrap_or(u64::MAX),
            provider: std::mem::take(&mut generation.provider),
            attempts: generation.attempts,
            classes: Some(classes.to_pb()),
        };
        let charged = self.settle(call, &opened, session, close, started_at).await;

        if let End::Failed(error) = end {
            return Err(error);
        }
        let native = generation.wire == Some(Wire::MessageEvents);
        let chat_completion = (assemble && !native).then(|| {
            std::mem::take(&mut generation.answer)
                .completion(finish, charged_usage)
                .to_string()
        });
        let message = (assemble && native).then(|| {
            std::mem::take(&mut generation.message)
                .message(finish, charged_usage)
                .to_string()
        });
        Ok(Outcome {
            execution_id: call.execution_id.clone(),
            model: call.labels.model.clone(),
            output: generation.output,
            chat_completion,
            usage_chunk: generation.usage_chunk,
            message,
            usage_event: generation.usage_event,
            input_tokens,
            output_tokens,
            costs: charged.costs,
            billing: charged.billing,
            finish,
            rate_limits,
        })
    }

    /// Settles with billing-svc, or spools the settlement when it cannot take it; what billing made of it.
    pub(crate) async fn settle(
        &self,
        call: &Call,
        opened: &MeterOpened,
        session: MeterSession,
        close: MeterClose,
        started_at: SystemTime,
    ) -> Charge {
        settlement::settle(&self.spool, call, opened, session, close, started_at).await
    }

    /// Opens the metering stream for `open`; used by every kind of call.
    pub(crate) async fn open(
        &self,
        open: MeterOpen,
        request_id: &str,
    ) -> Result<MeterSession, ExecutorError> {
        self.metering.open(open, request_id).await
    }

    /// Refuses a standard key's execution while the spool cannot be written (see
    /// [`settlement::refuse_without_spool`]).
    pub(crate) async fn refuse_without_spool(
        &self,
        call: &Call,
        session: MeterSession,
        started_at: SystemTime,
    ) -> Result<MeterSession, ExecutorError> {
        settlement::refuse_without_spool(&self.spool, call, session, started_at).await
    }
}
