//! Calls to executor-svc shared by `/execute` and `/v1/chat/completions`: the unary call, and the stream
//! whose first message is awaited before the HTTP answer starts, so that a refusal (402, 401, ...) is a
//! plain HTTP error rather than an event inside a 200 stream.

use futures::Stream;
use proto::executor::v1::execute_stream_response::Message;
use proto::executor::v1::{ExecuteRequest, ExecuteResponse, ExecuteStreamResponse, RateLimits};
use tonic::Streaming;

use crate::error::{ApiError, Service};
use crate::extract::CallContext;
use crate::state::AppState;

/// One step of a streamed execution.
#[derive(Debug)]
pub enum ExecutionEvent {
    /// A piece of the first choice's text, in order (`/execute`'s shape).
    Delta(String),
    /// A provider chunk as it sent it (chat requests given as JSON).
    Chunk(String),
    /// An Anthropic provider's event as it sent it (`/v1/messages` served natively).
    Event(String),
    /// The end: usage, billing and finish reason (its `output` is empty).
    Done(Box<ExecuteResponse>),
    /// The stream broke after it started; nothing follows.
    Failed(ApiError),
}

/// Runs an execution to its end.
pub async fn run(
    state: &AppState,
    context: &CallContext,
    request: ExecuteRequest,
) -> Result<ExecuteResponse, ApiError> {
    let mut call = context.request(request);
    call.set_timeout(state.executor_timeout);
    let response = state
        .executor()
        .execute(call)
        .await
        .map_err(ApiError::executor)?;
    Ok(response.into_inner())
}

/// Starts a streamed execution: the key's per-minute limits (when it has any, they come first) and the
/// events. Dropping the returned stream (the HTTP client went away) drops the gRPC stream, which cancels
/// the execution upstream.
pub async fn start_stream(
    state: &AppState,
    context: &CallContext,
    request: ExecuteRequest,
) -> Result<
    (
        Option<RateLimits>,
        impl Stream<Item = ExecutionEvent> + Send + 'static,
    ),
    ApiError,
> {
    let mut call = context.request(request);
    call.set_timeout(state.executor_timeout);
    let mut stream = state
        .executor()
        .execute_stream(call)
        .await
        .map_err(ApiError::executor)?
        .into_inner();
    let mut first = stream.message().await.map_err(ApiError::executor)?;
    let mut limits = None;
    if let Some(ExecuteStreamResponse {
        message: Some(Message::RateLimits(rate_limits)),
    }) = first
    {
        limits = Some(rate_limits);
        first = stream.message().await.map_err(ApiError::executor)?;
    }
    let first =
        first.ok_or_else(|| ApiError::contract(Service::Executor, "the stream ended empty"))?;
    Ok((
        limits,
        futures::stream::unfold(Some((Some(first), stream)), next_event),
    ))
}

type StreamState = Option<(
    Option<ExecuteStreamResponse>,
    Streaming<ExecuteStreamResponse>,
)>;

async fn next_event(state: StreamState) -> Option<(ExecutionEvent, StreamState)> {
    let (pending, mut stream) = state?;
    let received = match pending {
        Some(message) => Ok(Some(message)),
        None => stream.message().await,
    };
    match received {
        Ok(Some(ExecuteStreamResponse {
            message: Some(Message::Delta(text)),
        })) => Some((ExecutionEvent::Delta(text), Some((None, stream)))),
        Ok(Some(ExecuteStreamResponse {
            message: Some(Message::ChunkJson(json)),
        })) => Some((ExecutionEvent::Chunk(json), Some((None, stream)))),
        Ok(Some(ExecuteStreamResponse {
            message: Some(Message::MessageEventJson(json)),
        })) => Some((ExecutionEvent::Event(json), Some((None, stream)))),
        Ok(Some(ExecuteStreamResponse {
            message: Some(Message::Done(done)),
        })) => Some((ExecutionEvent::Done(Box::new(done)), None)),
        Ok(Some(ExecuteStreamResponse { message: None })) => {
            let error = ApiError::contract(Service::Executor, "a stream message without content");
            Some((ExecutionEvent::Failed(error), None))
        }
        Ok(Some(ExecuteStreamResponse {
            message: Some(Message::RateLimits(_)),
        })) => {
            let error =
                ApiError::contract(Service::Executor, "rate limits after the first message");
            Some((ExecutionEvent::Failed(error), None))
        }
        Ok(None) => {
            let error = ApiError::contract(
                Service::Executor,
                "the stream ended without its final message",
            );
            Some((ExecutionEvent::Failed(error), None))
        }
        Err(status) => Some((ExecutionEvent::Failed(ApiError::executor(status)), None)),
    }
}
