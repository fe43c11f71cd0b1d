//! A call to billing-svc as the billing routes make it: the gRPC method's answer, or its status as an
//! [`ApiError`] (ARCHITECTURE.md, "gateway": gRPC code → HTTP status in `error/mod.rs`).

use std::future::Future;

use crate::error::ApiError;

/// Awaits a billing-svc call (`state.account().get_account(request)`, …) and hands back its message; a
/// failed call is [`ApiError::billing`] of its status.
pub async fn billing<T>(
    call: impl Future<Output = Result<tonic::Response<T>, tonic::Status>>,
) -> Result<T, ApiError> {
    call.await
        .map(tonic::Response::into_inner)
        .map_err(ApiError::billing)
}
