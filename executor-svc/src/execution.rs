//! One execution from start to settlement: open the metering stream (the hold), call the model, keep the
//! output inside what the hold covers, stop when billing says so, settle with the provider's usage, and
//! spool the settlement when billing-svc cannot take it.
//!
//! Unary and streamed executions run the same way: the model is always streamed, and the hold grows chunk
//! by chunk while it generates, so a unary call gets every token a streamed one would (it is never capped
//! to its first hold). Each execution runs in its own task (tracked, so a shutdown waits for it): the gRPC
//! handler only waits for the result, and a client that goes away cancels the model call but never skips
//! the settlement.

use std::sync::Arc;
use std::time::{Instant, SystemTime};

use proto::billing::v1::{
    KeyType, MeterClose, MeterOpen, MeterOpened, RateLimitStatus, Settlement, UsageStatus,
};
use proto::executor::v1::{RateLimit, RateLimits};
use serde_json::Value;
use serde_json::value::RawValue;
use tokio::sync::{mpsc, oneshot};
use tokio_util::task::TaskTracker;
use tracing::Instrument;

use crate::answer::{self, Answer, Ending, ProviderUsage, TokenClasses};
use crate::anthropic::events::{self, Message as MessageAnswer};
use crate::anthropic::translate::finish_reason;
use crate::chat::ChatRequest;
use crate::config::Secret;
use crate::error::ExecutorError;
use crate::metering::{MeterSession, Metering};
use crate::providers::{Providers, Served};
use crate::spool::{Spool, SpooledSettlement};
use crate::tokens;
use crate::upstream::{Upstream, Wire};
use proto::ids::{ApiKeyId, ExecutionId};

/// Who wrote a chat message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    System,
    User,
    Assistant,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::System => "system",
            Role::User => "user",
            Role::Assistant => "assistant",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub role: Role,
    pub content: String,
}

/// Who calls and under which names the usage is recorded.
#[derive(Debug, Clone)]
pub struct Call {
    pub api_key: Secret,
    pub request_id: String,
    pub execution_id: ExecutionId,
    pub model: String,
    pub workspace_id: String,
    pub session_id: String,
    pub endpoint: String,
    /// The customer's end user (empty: none named).
    pub end_user_id: String,
}

/// How the output travels back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// The first choice's text (`/execute`'s simple shape).
    Text,
    /// The provider's own JSON: chunks (or, natively from an Anthropic provider, events) as it sent them,
    /// or the assembled `chat.completion` (or Anthropic `message`).
    ChatCompletion,
}

/// A validated chat request.
#[derive(Debug, Clone)]
pub struct ExecutionRequest {
    pub call: Call,
    pub chat: ChatRequest,
    pub shape: Shape,
}

/// Why the output ended, as the client sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Finish {
    Stop,
    Length,
    CreditExhausted,
}

/// Where the charge stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BillingView {
    /// Internal key: never charged, no billing block.
    Internal,
    Settled {
        balance_after: Option<String>,
        total_spent: Option<String>,
    },
    /// Spooled; replayed until billing-svc acknowledges it.
    Pending,
}

/// A finished execution.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub execution_id: ExecutionId,
    pub model: String,
    /// The first choice's text (streams send it as deltas too).
    pub output: String,
    /// Unary [`Shape::ChatCompletion`] calls: the provider's answer as a `chat.completion`.
    pub chat_completion: Option<String>,
    /// Streamed [`Shape::ChatCompletion`] calls: the provider's usage chunk as it sent it.
    pub usage_chunk: Option<String>,
    /// Unary calls served natively by an Anthropic provider: its answer as a `message`.
    pub message: Option<String>,
    /// Streams served natively by an Anthropic provider: its `message_delta` event, held back.
    pub usage_event: Option<String>,
    pub input_tokens: u64,
    pub output_tokens: u64,
    /// As billing-svc recorded them; `None` while the settlement is pending.
    pub costs: Option<Costs>,
    pub billing: BillingView,
    pub finish: Finish,
    /// The key's per-minute limits as they stood at open.
    pub rate_limits: Option<RateLimits>,
}

/// The costs of an execution as decimal USD strings, from billing-svc's usage record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Costs {
    pub input: String,
    pub output: String,
    pub total: String,
}

/// What a streaming client receives, in order: deltas or chunks, then one final result.
#[derive(Debug)]
pub enum StreamEvent {
    /// [`Shape::Text`]: a piece of the first choice's text.
    Delta(String),
    /// [`Shape::ChatCompletion`]: a provider chunk as it sent it.
    Chunk(String),
    /// [`Shape::ChatCompletion`] served natively by an Anthropic provider: one of its events as it sent it.
    Event(String),
    /// First, when the key has per-minute limits: where it stands against them.
    Limits(RateLimits),
    Done(Box<Result<Outcome, ExecutorError>>),
}

/// The key's per-minute limits billing-svc reported at open, if it has any.
pub fn rate_limits(opened: &MeterOpened) -> Option<RateLimits> {
    let window = |status: &RateLimitStatus| RateLimit {
        limit: status.limit,
        remaining: status.remaining,
        reset_secs: status.reset_secs,
    };
    (opened.requests.is_some() || opened.tokens.is_some()).then(|| RateLimits {
        requests: opened.requests.as_ref().map(window),
        tokens: opened.tokens.as_ref().map(window),
    })
}

/// Where the output goes.
pub enum Sink {
    /// Unary: the whole result once.
    Unary(oneshot::Sender<Result<Outcome, ExecutorError>>),
    /// Streaming: deltas as they come, then the result.
    Stream(mpsc::Sender<StreamEvent>),
}

/// The client went away.
struct ClientGone;

impl Sink {
    /// Resolves once nobody is waiting for this execution any more.
    async fn client_gone(&mut self) {
        match self {
            Sink::Unary(reply) => reply.closed().await,
            Sink::Stream(events) => events.closed().await,
        }
    }

    /// Delivers one chunk of the answer in the request's shape.
    async fn deliver(
        &mut self,
        shape: Shape,
        wire: Wire,
        chunk: &RawValue,
        first_choice_text: Option<&str>,
    ) -> Result<(), ClientGone> {
        let sent = match (self, shape, first_choice_text) {
            (Sink::Unary(reply), _, _) if reply.is_closed() => return Err(ClientGone),
            (Sink::Unary(_), _, _) | (Sink::Stream(_), Shape::Text, None) => return Ok(()),
            (Sink::Stream(events), Shape::ChatCompletion, _) => {
                let item = chunk.get().to_string();
                let event = match wire {
                    Wire::ChatChunks => StreamEvent::Chunk(item),
                    Wire::MessageEvents => StreamEvent::Event(item),
                };
                events.send(event).await
            }
            (Sink::Stream(events), Shape::Text, Some(text)) => {
                events.send(StreamEvent::Delta(text.to_string())).await
            }
        };
        sent.map_err(|_| ClientGone)
    }

    /// Tells a streaming client the key's per-minute limits before any output.
    async fn limits(&mut self, limits: &RateLimits) {
        if let Sink::Stream(events) = self {
            let _ = events.send(StreamEvent::Limits(*limits)).await;
        }
    }

    /// A chunk the executor made (the end of a cut-off stream); only chunk streams receive it.
    async fn made_chunk(&mut self, shape: Shape, chunk: Value) {
        if let (Sink::Stream(events), Shape::ChatCompletion) = (self, shape) {
            let _ = events.send(StreamEvent::Chunk(chunk.to_string())).await;
        }
    }

    async fn finish(self, result: Result<Outcome, ExecutorError>) {
        // A client that is gone no longer cares; the settlement is already done.
        match self {
            Sink::Unary(reply) => {
                let _ = reply.send(result);
            }
            Sink::Stream(events) => {
                let _ = events.send(StreamEvent::Done(Box::new(result))).await;
            }
        }
    }

    fn is_unary(&self) -> bool {
        matches!(self, Sink::Unary(_))
    }
}

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

/// How generation ended.
#[derive(Debug)]
enum End {
    Completed,
    StoppedByCredit,
    ClientGone,
    Failed(ExecutorError),
}

/// What generation produced.
struct Generation {
    /// What the provider's items are, once one answered.
    wire: Option<Wire>,
    answer: Answer,
    /// The answer as Anthropic events tell it (native calls).
    message: MessageAnswer,
    /// Native calls: the provider's `message_delta`, held back.
    usage_event: Option<String>,
    /// Native calls: the prompt tokens `message_start` reported (cache reads and writes included), charged
    /// rather than the local estimate when the answer ends before its final usage.
    reported_input_tokens: Option<u64>,
    /// The first choice's text.
    output: String,
    /// Output tokens counted locally over every choice, as delivered.
    output_tokens: u64,
    provider_usage: Option<ProviderUsage>,
    usage_chunk: Option<String>,
    first_choice_finish: Option<String>,
    /// The provider started answering (so it may bill the call even if it is cut short).
    upstream_answered: bool,
    /// The provider that served the call (empty when none did).
    provider: String,
    /// Providers asked.
    attempts: u32,
}

/// The hold as known from billing's answers.
struct Hold {
    granted: u64,
    /// Progress reports sent and not yet answered.
    outstanding: u32,
    last_reported: u64,
    /// Billing said stop, or the stream broke: `granted` will not grow any more.
    final_grant: bool,
    /// Billing's `report_at_output_tokens` for the grant in force: below it the hold cannot grow, so no
    /// progress is reported; 0 (a billing-svc that does not say): report every progress interval.
    report_at: u64,
}

impl Hold {
    /// Whether to report `output_tokens` now, without waiting for the answer (BILLING.md, "Holds and the
    /// metering stream"): once output reaches billing's `report_at` (one report per grant: a grant that did
    /// not move `report_at` is not asked again before output reaches it), or every `interval` tokens when
    /// billing gave none.
    fn report_due(&self, output_tokens: u64, interval: u64) -> bool {
        if self.final_grant {
            return false;
        }
        if self.report_at == 0 {
            return output_tokens - self.last_reported >= interval;
        }
        self.outstanding == 0
            && output_tokens >= self.report_at
            && self.last_reported < self.report_at
    }

    fn apply(&mut self, answer: Result<crate::metering::Answer, crate::metering::StreamBroken>) {
        match answer {
            Ok(crate::metering::Answer::Grant(grant)) => {
                self.outstanding = self.outstanding.saturating_sub(1);
                self.granted = self.granted.max(grant.granted_output_tokens);
                self.report_at = self.report_at.max(grant.report_at_output_tokens);
            }
            Ok(crate::metering::Answer::Stop(stop)) => {
                self.outstanding = self.outstanding.saturating_sub(1);
                tracing::info!(granted = stop.granted_output_tokens, reason = %stop.reason, "billing answered stop");
                // Output already delivered stays delivered; nothing more is.
                self.granted = stop.granted_output_tokens;
                self.final_grant = true;
            }
            Err(broken) => {
                tracing::warn!(%broken, "metering stream broke; output is capped to the current hold");
                self.outstanding = 0;
                self.final_grant = true;
            }
        }
    }
}

/// Whether the hold covers a chunk.
enum Cover {
    Covered,
    Exhausted,
    ClientGone,
}

/// What billing-svc made of an execution's charge.
pub(crate) struct Charge {
    pub costs: Option<Costs>,
    pub billing: BillingView,
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
            model = %request.call.model,
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
        self.providers.check_routed(&call.model)?;
        let estimated_input_tokens = tokens::prompt_tokens(
            &call.model,
            request.chat.messages(),
            request.chat.body.get("tools"),
        );
        let open = MeterOpen {
            api_key: call.api_key.expose().to_string(),
            execution_id: call.execution_id.to_string(),
            model: call.model.clone(),
            estimated_input_tokens,
            max_output_tokens: request.chat.hold_ceiling(),
            workspace_id: call.workspace_id.clone(),
            session_id: call.session_id.clone(),
            endpoint: call.endpoint.clone(),
            input_only: false,
            end_user_id: call.end_user_id.clone(),
        };
        // The hold comes first: without it the model is never called.
        let session = self.metering.open(open, &call.request_id).await?;
        let mut session = self.refuse_without_spool(call, session, started_at).await?;
        let opened = session.opened.clone();
        tracing::debug!(granted = opened.granted_output_tokens, held = %opened.held, "hold placed");
        let rate_limits = rate_limits(&opened);
        if let Some(limits) = &rate_limits {
            sink.limits(limits).await;
        }

        let assemble = sink.is_unary() && request.shape == Shape::ChatCompletion;
        let (mut generation, end) = self.generate(request, &mut session, sink, assemble).await;
        if matches!(end, End::StoppedByCredit)
            && generation.wire == Some(Wire::ChatChunks)
            && let Some(last) = generation.answer.cut_off_chunk()
        {
            sink.made_chunk(request.shape, last).await;
        }

        let (charged_usage, status) =
            charge(&generation, &end, estimated_input_tokens, &call.model);
        let ProviderUsage {
            input_tokens,
            output_tokens,
            classes,
        } = charged_usage;
        let finish = match &end {
            End::StoppedByCredit => Finish::CreditExhausted,
            End::Completed if generation.first_choice_finish.as_deref() == Some("length") => {
                Finish::Length
            }
            End::Completed | End::ClientGone | End::Failed(_) => Finish::Stop,
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
        let ending = match finish {
            Finish::CreditExhausted => Ending::CutOff,
            Finish::Stop | Finish::Length => Ending::Whole,
        };
        let native = generation.wire == Some(Wire::MessageEvents);
        let chat_completion = (assemble && !native).then(|| {
            std::mem::take(&mut generation.answer)
                .completion(ending, charged_usage)
                .to_string()
        });
        let message = (assemble && native).then(|| {
            std::mem::take(&mut generation.message)
                .message(ending, charged_usage)
                .to_string()
        });
        Ok(Outcome {
            execution_id: call.execution_id.clone(),
            model: call.model.clone(),
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
        let settlement: Option<Settlement> = match session.close(close.clone()).await {
            Ok(settlement) => Some(settlement),
            Err(not_settled) => {
                tracing::warn!(%not_settled, "billing-svc did not settle; spooling the settlement");
                let spooled = SpooledSettlement {
                    api_key_id: ApiKeyId::from(opened.api_key_id.clone()),
                    execution_id: call.execution_id.clone(),
                    request_id: call.request_id.clone(),
                    model: call.model.clone(),
                    workspace_id: call.workspace_id.clone(),
                    session_id: call.session_id.clone(),
                    endpoint: call.endpoint.clone(),
                    end_user_id: call.end_user_id.clone(),
                    input_tokens: close.input_tokens,
                    output_tokens: close.output_tokens,
                    status: close.status().as_str_name().to_string(),
                    duration_ms: close.duration_ms,
                    started_at_unix_nanos: SpooledSettlement::started_at(started_at),
                    provider: close.provider.clone(),
                    attempts: close.attempts,
                    classes: TokenClasses::from_pb(close.classes.as_ref()),
                };
                if let Err(error) = self.spool.add(spooled).await {
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

    /// Opens the metering stream for `open`; used by every kind of call.
    pub(crate) async fn open(
        &self,
        open: MeterOpen,
        request_id: &str,
    ) -> Result<MeterSession, ExecutorError> {
        self.metering.open(open, request_id).await
    }

    /// Refuses a standard key's execution, before the model is called, while the spool cannot be written:
    /// if billing-svc did not take its settlement at the end, the settlement would live only in memory and
    /// be lost on a restart. Its hold is settled at once with no tokens. Internal keys are never charged and
    /// go ahead.
    pub(crate) async fn refuse_without_spool(
        &self,
        call: &Call,
        session: MeterSession,
        started_at: SystemTime,
    ) -> Result<MeterSession, ExecutorError> {
        if self.spool.writable() || session.opened.key_type() == KeyType::Internal {
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
        self.settle(call, &opened, session, close, started_at).await;
        Err(ExecutorError::SpoolUnwritable)
    }

    /// Streams the model's answer to the sink, never past what the hold covers.
    async fn generate(
        &self,
        request: &ExecutionRequest,
        session: &mut MeterSession,
        sink: &mut Sink,
        assemble: bool,
    ) -> (Generation, End) {
        let model = &request.call.model;
        let mut generation = Generation::new(assemble);
        let mut hold = Hold {
            granted: session.opened.granted_output_tokens,
            outstanding: 0,
            last_reported: 0,
            final_grant: false,
            report_at: session.opened.report_at_output_tokens,
        };
        let mut stream: Upstream = tokio::select! {
            started = self.providers.stream(model, &request.chat) => match started {
                Ok(Served { stream, provider, attempts }) => {
                    generation.provider = provider;
                    generation.attempts = attempts;
                    stream
                }
                Err(not_served) => {
                    generation.attempts = not_served.attempts;
                    return (generation, End::Failed(not_served.error));
                }
            },
            () = sink.client_gone() => return (generation, End::ClientGone),
        };
        generation.upstream_answered = true;
        generation.wire = Some(stream.wire);
        loop {
            tokio::select! {
                biased;
                () = sink.client_gone() => return (generation, End::ClientGone),
                answer = session.next_answer(), if hold.outstanding > 0 => hold.apply(answer),
                chunk = stream.next() => {
                    let raw = match chunk {
                        Ok(Some(raw)) => raw,
                        Ok(None) => return (generation, End::Completed),
                        Err(error) => return (generation, End::Failed(error)),
                    };
                    let chunk: Value = match serde_json::from_str(raw.get()) {
                        Ok(chunk) => chunk,
                        Err(error) => {
                            let error = ExecutorError::UpstreamUnavailable(format!("malformed chunk: {error}"));
                            return (generation, End::Failed(error));
                        }
                    };
                    let (generated, text, finish) = match stream.wire {
                        Wire::ChatChunks => {
                            let reading = match answer::read(&chunk) {
                                Ok(reading) => reading,
                                Err(error) => return (generation, End::Failed(ExecutorError::Provider(error))),
                            };
                            if reading.usage.is_some() {
                                generation.provider_usage = reading.usage;
                            }
                            if reading.usage_only {
                                generation.usage_chunk = Some(raw.get().to_string());
                                generation.answer.absorb(chunk);
                                continue;
                            }
                            let generated = tokens::chunk_output_tokens(model, &chunk);
                            (generated, reading.first_choice_text, reading.first_choice_finish)
                        }
                        Wire::MessageEvents => {
                            generation.message.absorb(&chunk);
                            let usage = generation.message.usage();
                            if events::held_back(&chunk) {
                                // `message_delta` carries the final usage: the charge from now on.
                                if chunk["type"] == "message_delta" {
                                    generation.provider_usage = usage.map(|usage| usage.charged());
                                    generation.usage_event = Some(raw.get().to_string());
                                    generation.first_choice_finish = generation.message.stop_reason().map(|reason| finish_reason(reason).to_string());
                                }
                                continue;
                            }
                            if chunk["type"] == "message_start" {
                                generation.reported_input_tokens = usage.map(|usage| usage.charged().input_tokens);
                            }
                            let generated = events::generated(&chunk);
                            let count = generated.output.iter().map(|text| tokens::text_tokens(model, text)).sum::<u64>();
                            (count, generated.text.map(str::to_string), None)
                        }
                    };
                    let needed = generation.output_tokens + generated;
                    match self.cover(session, sink, &mut hold, needed).await {
                        Cover::Covered => {}
                        // Dropping the stream on return cancels the upstream request at once.
                        Cover::Exhausted => return (generation, End::StoppedByCredit),
                        Cover::ClientGone => return (generation, End::ClientGone),
                    }
                    if sink.deliver(request.shape, stream.wire, &raw, text.as_deref()).await.is_err() {
                        return (generation, End::ClientGone);
                    }
                    if let Some(text) = text {
                        generation.output.push_str(&text);
                    }
                    if finish.is_some() {
                        generation.first_choice_finish = finish;
                    }
                    if stream.wire == Wire::ChatChunks {
                        generation.answer.absorb(chunk);
                    }
                    generation.output_tokens = needed;
                    if hold.report_due(needed, self.limits.progress_interval_tokens) && session.report_progress(needed) {
                        hold.outstanding += 1;
                        hold.last_reported = needed;
                    }
                }
            }
        }
    }

    /// Makes sure the hold covers `needed` output tokens, asking billing (and waiting for its answer) when
    /// it does not yet. Generation pauses meanwhile; the provider's chunks wait in the HTTP stream.
    async fn cover(
        &self,
        session: &mut MeterSession,
        sink: &mut Sink,
        hold: &mut Hold,
        needed: u64,
    ) -> Cover {
        loop {
            if needed <= hold.granted {
                return Cover::Covered;
            }
            if hold.final_grant {
                return Cover::Exhausted;
            }
            if hold.outstanding == 0 {
                // Billing already answered for this much output and it is still not covered.
                if hold.last_reported >= needed || !session.report_progress(needed) {
                    return Cover::Exhausted;
                }
                hold.outstanding += 1;
                hold.last_reported = needed;
            }
            tokio::select! {
                () = sink.client_gone() => return Cover::ClientGone,
                answer = session.next_answer() => hold.apply(answer),
            }
        }
    }
}

impl Generation {
    /// `assemble`: keep the whole answer (unary calls).
    fn new(assemble: bool) -> Generation {
        Generation {
            wire: None,
            answer: Answer::new(assemble),
            message: MessageAnswer::new(assemble),
            usage_event: None,
            reported_input_tokens: None,
            output: String::new(),
            output_tokens: 0,
            provider_usage: None,
            usage_chunk: None,
            first_choice_finish: None,
            upstream_answered: false,
            provider: String::new(),
            attempts: 0,
        }
    }
}

/// What to charge and with which status.
///
/// - The provider reported usage: that usage, whatever happened (a failed or cut-off call it billed).
/// - Completed without a usage report: local counts (prompt estimate, tiktoken over every choice's output).
/// - Stopped by credit or cancelled by the client after the provider started answering: local counts of
///   what was generated and delivered (the provider bills a cancelled call for what it produced), with the
///   prompt tokens an Anthropic provider reported at the start in place of the estimate.
/// - Failed without a usage report, or cancelled before any answer: nothing, the provider did not bill it.
fn charge(
    generation: &Generation,
    end: &End,
    estimated_input_tokens: u64,
    model: &str,
) -> (ProviderUsage, UsageStatus) {
    let status = match end {
        End::Completed => UsageStatus::Completed,
        End::StoppedByCredit => UsageStatus::StoppedByCredit,
        End::ClientGone => UsageStatus::Cancelled,
        End::Failed(_) => UsageStatus::Failed,
    };
    if let Some(usage) = generation.provider_usage {
        return (usage, status);
    }
    let local = |input_tokens| ProviderUsage {
        input_tokens,
        output_tokens: generation.output_tokens,
        ..ProviderUsage::default()
    };
    match end {
        End::Completed => {
            tracing::warn!(
                output_tokens = generation.output_tokens,
                model,
                "the provider reported no usage; charging local token counts"
            );
            (local(estimated_input_tokens), status)
        }
        End::StoppedByCredit | End::ClientGone if generation.upstream_answered => {
            let input_tokens = generation
                .reported_input_tokens
                .unwrap_or(estimated_input_tokens);
            (local(input_tokens), status)
        }
        End::StoppedByCredit | End::ClientGone | End::Failed(_) => {
            (ProviderUsage::default(), status)
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn progress_is_reported_once_output_nears_the_grant_and_once_per_grant() {
        use proto::billing::v1::MeterGrant;
        let grant = |granted, report_at| {
            Ok(crate::metering::Answer::Grant(MeterGrant {
                granted_output_tokens: granted,
                held: "0".into(),
                report_at_output_tokens: report_at,
            }))
        };
        let mut hold = Hold {
            granted: 256,
            outstanding: 0,
            last_reported: 0,
            final_grant: false,
            report_at: 128,
        };
        assert!(!hold.report_due(16, 16));
        assert!(!hold.report_due(127, 16));
        assert!(hold.report_due(130, 16));
        (hold.outstanding, hold.last_reported) = (1, 130);
        assert!(!hold.report_due(150, 16), "one report at a time");
        hold.apply(grant(512, 384));
        assert_eq!(
            (hold.granted, hold.report_at, hold.outstanding),
            (512, 384, 0)
        );
        assert!(!hold.report_due(383, 16));
        assert!(hold.report_due(384, 16));
        // A grant that could not grow leaves `report_at`: not asked again until output needs it.
        (hold.outstanding, hold.last_reported) = (1, 400);
        hold.apply(grant(512, 384));
        assert!(!hold.report_due(450, 16));
        // Without `report_at` (an older billing-svc), every interval.
        let mut legacy = Hold {
            report_at: 0,
            last_reported: 0,
            ..hold
        };
        assert!(legacy.report_due(16, 16));
        legacy.last_reported = 16;
        assert!(!legacy.report_due(31, 16));
        legacy.final_grant = true;
        assert!(!legacy.report_due(64, 16));
    }

    fn generation(usage: Option<ProviderUsage>, answered: bool) -> Generation {
        Generation {
            output: " The quick brown".into(),
            output_tokens: 3,
            provider_usage: usage,
            upstream_answered: answered,
            ..Generation::new(false)
        }
    }

    fn tokens(input_tokens: u64, output_tokens: u64) -> ProviderUsage {
        ProviderUsage {
            input_tokens,
            output_tokens,
            ..ProviderUsage::default()
        }
    }

    #[test]
    fn provider_usage_is_charged_whatever_the_end() {
        let usage = ProviderUsage {
            input_tokens: 6548,
            output_tokens: 108,
            classes: TokenClasses {
                cached_input: 6000,
                reasoning: 50,
                ..TokenClasses::default()
            },
        };
        let failed = End::Failed(ExecutorError::UpstreamUnavailable("broken".into()));
        assert_eq!(
            charge(&generation(Some(usage), true), &failed, 9, "mock"),
            (usage, UsageStatus::Failed)
        );
        assert_eq!(
            charge(&generation(Some(usage), true), &End::Completed, 9, "mock"),
            (usage, UsageStatus::Completed)
        );
    }

    #[test]
    fn without_provider_usage_only_what_the_provider_billed_is_charged() {
        let failed = End::Failed(ExecutorError::UpstreamUnavailable("500".into()));
        assert_eq!(
            charge(&generation(None, false), &failed, 9, "mock"),
            (tokens(0, 0), UsageStatus::Failed)
        );
        assert_eq!(
            charge(&generation(None, true), &failed, 9, "mock"),
            (tokens(0, 0), UsageStatus::Failed)
        );
        assert_eq!(
            charge(&generation(None, false), &End::ClientGone, 9, "mock"),
            (tokens(0, 0), UsageStatus::Cancelled)
        );
        assert_eq!(
            charge(&generation(None, true), &End::ClientGone, 9, "mock"),
            (tokens(9, 3), UsageStatus::Cancelled)
        );
        assert_eq!(
            charge(&generation(None, true), &End::StoppedByCredit, 9, "mock"),
            (tokens(9, 3), UsageStatus::StoppedByCredit)
        );
        assert_eq!(
            charge(&generation(None, true), &End::Completed, 9, "mock"),
            (tokens(9, 3), UsageStatus::Completed)
        );
    }
}
