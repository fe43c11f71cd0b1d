//! Harness pieces for the reliability and security suites: the CI / long mode switch, executions driven
//! straight at executor-svc (streamed or unary) reduced to their outcome, and ledger figures read in SQL.

use proto::executor::v1 as ex;
use proto::executor::v1::execute_stream_response::Message as Event;
use proto::executor::v1::executor_service_client::ExecutorServiceClient;
use rust_decimal::Decimal;
use sqlx::Row;
use tonic::transport::Channel;

use crate::{TestDatabase, authed};

/// `RELIABILITY_LONG=1` runs the fault and load loops at full size; the default is the short CI mode.
pub fn long_mode() -> bool {
    std::env::var("RELIABILITY_LONG").is_ok_and(|value| !value.is_empty() && value != "0")
}

/// `ci` in the default mode, `long` with `RELIABILITY_LONG=1`.
pub fn scaled(ci: usize, long: usize) -> usize {
    if long_mode() { long } else { ci }
}

/// How an execution is asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    Unary,
    Streamed,
}

/// `/execute` as the gateway sends it to executor-svc (gateway `routes/execute.rs`): the prompt as one user
/// message, the model, the output limit when one is given, answered as text.
pub fn text_request(prompt: &str, model: &str, max_tokens: Option<u32>) -> ex::ExecuteRequest {
    let mut chat =
        serde_json::json!({"model": model, "messages": [{"role": "user", "content": prompt}]});
    if let Some(limit) = max_tokens {
        chat["max_completion_tokens"] = limit.into();
    }
    ex::ExecuteRequest {
        chat_request_json: Some(chat.to_string()),
        response_shape: ex::ResponseShape::Text.into(),
        ..Default::default()
    }
}

/// One execution request as the suites send it.
pub fn execute_request(
    key: &str,
    model: &str,
    max_tokens: u32,
) -> tonic::Request<ex::ExecuteRequest> {
    authed(
        key,
        ex::ExecuteRequest {
            workspace_id: "ws-reliability".into(),
            session_id: "session-reliability".into(),
            endpoint: "/execute".into(),
            ..text_request("Hello", model, Some(max_tokens))
        },
    )
}

/// Runs one execution to its end: the final message, or the status it failed with (a streamed execution
/// that breaks after some deltas counts as failed).
pub async fn run_execution(
    mut client: ExecutorServiceClient<Channel>,
    request: tonic::Request<ex::ExecuteRequest>,
    delivery: Delivery,
) -> Result<ex::ExecuteResponse, tonic::Status> {
    match delivery {
        Delivery::Unary => client
            .execute(request)
            .await
            .map(tonic::Response::into_inner),
        Delivery::Streamed => {
            let mut events = client.execute_stream(request).await?.into_inner();
            loop {
                match events.message().await? {
                    Some(ex::ExecuteStreamResponse {
                        message: Some(Event::Done(done)),
                    }) => return Ok(done),
                    Some(_) => {}
                    None => {
                        return Err(tonic::Status::internal(
                            "the stream ended without a final message",
                        ));
                    }
                }
            }
        }
    }
}

/// A channel to a gRPC server, shared by many concurrent calls (HTTP/2 multiplexes them).
pub async fn grpc_channel(url: &str) -> Channel {
    tonic::transport::Endpoint::from_shared(url.to_string())
        .expect("valid url")
        .connect()
        .await
        .expect("connect")
}

/// The execution ids of every usage record, with how many records each has.
pub async fn settled_executions(database: &TestDatabase) -> Vec<(String, i64)> {
    per_execution(
        database,
        "SELECT execution_id, CAST(COUNT(*) AS BIGINT) FROM usage_records GROUP BY execution_id",
    )
    .await
}

/// The execution id of every usage record, with the total tokens it charged for.
pub async fn settled_tokens(database: &TestDatabase) -> Vec<(String, i64)> {
    per_execution(
        database,
        "SELECT execution_id, total_tokens FROM usage_records",
    )
    .await
}

/// The rows of `sql`, a query of usage records giving an execution id and a number.
async fn per_execution(database: &TestDatabase, sql: &str) -> Vec<(String, i64)> {
    let mut connection = database
        .connect()
        .await
        .expect("connect to the test database");
    sqlx::query(sql)
        .fetch_all(&mut connection)
        .await
        .expect("read usage records")
        .into_iter()
        .map(|row| (row.get::<String, _>(0), row.get::<i64, _>(1)))
        .collect()
}

/// What the ledger charged `api_key_id` and the overage it recorded, in USD.
pub async fn charged_and_overage(database: &TestDatabase, api_key_id: &str) -> (Decimal, Decimal) {
    let mut connection = database
        .connect()
        .await
        .expect("connect to the test database");
    let row = sqlx::query(
        "SELECT CAST(COALESCE(SUM(charged), 0) AS BIGINT), CAST(COALESCE(SUM(overage), 0) AS BIGINT) \
         FROM usage_records WHERE api_key_id = $1",
    )
    .bind(api_key_id)
    .fetch_one(&mut connection)
    .await
    .expect("sum charges");
    let nanos = |value: i64| Decimal::new(value, 9);
    (nanos(row.get(0)), nanos(row.get(1)))
}

/// Rows in a table (a fixed name from the suites, never user input).
pub async fn row_count(database: &TestDatabase, table: &str) -> i64 {
    let mut connection = database
        .connect()
        .await
        .expect("connect to the test database");
    sqlx::query_scalar(&format!("SELECT CAST(COUNT(*) AS BIGINT) FROM {table}"))
        .fetch_one(&mut connection)
        .await
        .expect("count rows")
}
