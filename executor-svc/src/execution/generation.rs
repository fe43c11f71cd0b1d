//! Generation: the provider's answer streamed to the sink, never past what the hold covers, and what it
//! produced ([`Generation`]); how it ended ([`End`]); and what to charge for it ([`charge`]).

use proto::billing::v1::UsageStatus;
use serde_json::Value;

use super::hold::{Cover, Hold};
use super::request::ExecutionRequest;
use super::sink::Sink;
use crate::answer::{self, Answer, ProviderUsage};
use crate::anthropic::events::{self, Message as MessageAnswer};
use crate::anthropic::translate::finish_reason;
use crate::error::ExecutorError;
use crate::metering::MeterSession;
use crate::providers::{Providers, Served};
use crate::tokens;
use crate::upstream::{Upstream, Wire};

/// How generation ended.
#[derive(Debug)]
pub(super) enum End {
    Completed,
    StoppedByCredit,
    ClientGone,
    Failed(ExecutorError),
}

/// What generation produced.
pub(super) struct Generation {
    /// What the provider's items are, once one answered.
    pub(super) wire: Option<Wire>,
    pub(super) answer: Answer,
    /// The answer as Anthropic events tell it (native calls).
    pub(super) message: MessageAnswer,
    /// Native calls: the provider's `message_delta`, held back.
    pub(super) usage_event: Option<String>,
    /// Native calls: the prompt tokens `message_start` reported (cache reads and writes included), charged
    /// rather than the local estimate when the answer ends before its final usage.
    reported_input_tokens: Option<u64>,
    /// The first choice's text.
    pub(super) output: String,
    /// Output tokens counted locally over every choice, as delivered.
    output_tokens: u64,
    provider_usage: Option<ProviderUsage>,
    pub(super) usage_chunk: Option<String>,
    pub(super) first_choice_finish: Option<String>,
    /// The provider started answering (so it may bill the call even if it is cut short).
    upstream_answered: bool,
    /// The provider that served the call (empty when none did).
    pub(super) provider: String,
    /// Providers asked.
    pub(super) attempts: u32,
}

/// Streams the model's answer to the sink, never past what the hold covers.
pub(super) async fn generate(
    providers: &Providers,
    progress_interval_tokens: u64,
    request: &ExecutionRequest,
    session: &mut MeterSession,
    sink: &mut Sink,
    assemble: bool,
) -> (Generation, End) {
    let model = &request.call.labels.model;
    let mut generation = Generation::new(assemble);
    let mut hold = Hold {
        covered: session.opened.covered_output_tokens,
        outstanding: 0,
        last_reported: 0,
        cover_is_final: false,
        report_at: session.opened.report_at_output_tokens,
    };
    let mut stream: Upstream = tokio::select! {
        started = providers.stream(model, &request.chat) => match started {
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
            reply = session.next_reply(), if hold.outstanding > 0 => hold.apply(reply),
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
                match hold.cover(session, sink, needed).await {
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
                if hold.report_due(needed, progress_interval_tokens) && session.report_progress(needed) {
                    hold.outstanding += 1;
                    hold.last_reported = needed;
                }
            }
        }
    }
}

impl Generation {
    /// `assemble`: keep the whole answer (unary calls).
    pub(super) fn new(assemble: bool) -> Generation {
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
pub(super) fn charge(
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
    use crate::answer::TokenClasses;

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
