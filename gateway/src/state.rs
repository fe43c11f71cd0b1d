//! What every handler shares: the gRPC channels to both services, the metrics and the rendered OpenAPI
//! document.

use std::sync::Arc;
use std::time::Duration;

use proto::billing::v1::account_service_client::AccountServiceClient;
use proto::billing::v1::admin_service_client::AdminServiceClient;
use proto::billing::v1::payments_service_client::PaymentsServiceClient;
use proto::executor::v1::executor_service_client::ExecutorServiceClient;
use tonic::transport::Channel;

use crate::metrics::Metrics;

#[derive(Clone)]
pub struct AppState {
    /// Lazily connected: the gateway starts (and `/readyz` says why it is not ready) while a downstream
    /// is still down, and reconnects by itself.
    pub billing: Channel,
    pub executor: Channel,
    /// Deadline of a whole execution (set per call: the executor channel carries long streams).
    pub executor_timeout: Duration,
    pub readiness_timeout: Duration,
    pub metrics: Arc<Metrics>,
    /// `/openapi.json`, rendered once at start.
    pub openapi_json: Arc<String>,
    /// Shown at the top of statements (`OPERATOR_NAME`).
    pub operator_name: Arc<str>,
}

impl AppState {
    pub fn admin(&self) -> AdminServiceClient<Channel> {
        AdminServiceClient::new(self.billing.clone())
    }

    pub fn account(&self) -> AccountServiceClient<Channel> {
        AccountServiceClient::new(self.billing.clone())
    }

    pub fn payments(&self) -> PaymentsServiceClient<Channel> {
        PaymentsServiceClient::new(self.billing.clone())
    }

    pub fn executor(&self) -> ExecutorServiceClient<Channel> {
        ExecutorServiceClient::new(self.executor.clone())
    }
}
