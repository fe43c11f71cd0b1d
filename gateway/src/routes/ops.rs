//! Operations routes, no authentication: liveness, readiness (both downstreams answer grpc.health.v1, and
//! every route has a provider up), Prometheus metrics and the OpenAPI document.

use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::header::CONTENT_TYPE;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use tonic::transport::Channel;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use utoipa::ToSchema;

use proto::executor::v1::{ListProvidersRequest, ListProvidersResponse};

use crate::error::{ApiError, ErrorBody};
use crate::state::AppState;

#[derive(Debug, Serialize, ToSchema)]
pub struct Health {
    /// Always `ok`.
    pub status: String,
}

/// Liveness: the process answers.
#[utoipa::path(get, path = "/healthz", tag = "operations", responses((status = 200, body = Health)))]
pub async fn healthz() -> Json<Health> {
    Json(Health {
        status: "ok".into(),
    })
}

/// The result of one readiness probe.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Probe {
    Serving,
    NotServing,
    Unreachable,
}

impl Probe {
    fn name(self) -> &'static str {
        match self {
            Probe::Serving => "serving",
            Probe::NotServing => "not_serving",
            Probe::Unreachable => "unreachable",
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Readiness {
    /// Always `ready` (otherwise the answer is a 503).
    pub status: String,
    pub billing: Probe,
    pub executor: Probe,
}

/// Readiness: billing-svc and executor-svc both answer SERVING to grpc.health.v1 Check, and every route of
/// executor-svc's providers has a provider that is up (PROVIDERS.md, "Health").
#[utoipa::path(
    get,
    path = "/readyz",
    tag = "operations",
    responses(
        (status = 200, body = Readiness),
        (status = 503, body = ErrorBody, description = "`not_ready`; `details.billing` and `details.executor` are `serving`, `not_serving` or `unreachable`; `details.unservedRoutes` lists the routes none of whose providers is up"),
    )
)]
pub async fn readyz(State(state): State<AppState>) -> Result<Json<Readiness>, ApiError> {
    let (billing, executor, providers) = tokio::join!(
        probe(state.billing.clone(), state.readiness_timeout),
        probe(state.executor.clone(), state.readiness_timeout),
        providers(&state),
    );
    let unserved_routes = providers
        .map(|listed| listed.unserved_routes)
        .unwrap_or_default();
    if billing == Probe::Serving && executor == Probe::Serving && unserved_routes.is_empty() {
        Ok(Json(Readiness {
            status: "ready".into(),
            billing,
            executor,
        }))
    } else {
        Err(ApiError::NotReady {
            billing: billing.name(),
            executor: executor.name(),
            unserved_routes,
        })
    }
}

/// executor-svc's providers and routes as it sees them; `None` when it does not answer in time.
async fn providers(state: &AppState) -> Option<ListProvidersResponse> {
    let mut request = tonic::Request::new(ListProvidersRequest {});
    request.set_timeout(state.readiness_timeout);
    let mut executor = state.executor();
    let listed = tokio::time::timeout(state.readiness_timeout, executor.list_providers(request));
    match listed.await {
        Ok(Ok(response)) => Some(response.into_inner()),
        Ok(Err(_)) | Err(_) => None,
    }
}

async fn probe(channel: Channel, timeout: Duration) -> Probe {
    let mut request = tonic::Request::new(HealthCheckRequest {
        service: String::new(),
    });
    request.set_timeout(timeout);
    let mut client = HealthClient::new(channel);
    match tokio::time::timeout(timeout, client.check(request)).await {
        Ok(Ok(response)) if response.get_ref().status() == ServingStatus::Serving => Probe::Serving,
        Ok(Ok(_)) => Probe::NotServing,
        Ok(Err(_)) | Err(_) => Probe::Unreachable,
    }
}

/// Prometheus metrics: `gateway_http_requests_total` and `gateway_http_request_duration_seconds`, by
/// `method`, `route` (the template) and `status`; and executor-svc's providers, by `provider` and `kind`
/// (`executor_provider_up`, `_attempts_total`, `_failures_total`, `_fallbacks_total`,
/// `_first_item_seconds_total`), left out while executor-svc does not answer.
#[utoipa::path(
    get,
    path = "/metrics",
    tag = "operations",
    responses((status = 200, description = "OpenMetrics text exposition", content_type = "application/openmetrics-text", body = String))
)]
pub async fn metrics(State(state): State<AppState>) -> Result<Response, ApiError> {
    let listed = providers(&state).await;
    let text = state
        .metrics
        .render(listed.as_ref().map(|listed| listed.providers.as_slice()))
        .map_err(|error| ApiError::Internal(format!("metrics: {error}")))?;
    Ok(([(CONTENT_TYPE, crate::metrics::CONTENT_TYPE)], text).into_response())
}

/// This document (OpenAPI 3).
#[utoipa::path(
    get,
    path = "/openapi.json",
    tag = "operations",
    responses((status = 200, description = "The OpenAPI 3 document of every route", content_type = "application/json"))
)]
pub async fn openapi_json(State(state): State<AppState>) -> Response {
    (
        [(CONTENT_TYPE, "application/json")],
        state.openapi_json.as_str().to_owned(),
    )
        .into_response()
}
