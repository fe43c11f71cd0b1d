//! Calls to billing's gRPC services as their callers make them: a channel to a URL, and the
//! `authorization: Bearer <secret>` metadata (the admin key, the service token or a customer's key).

use anyhow::Context;
use tonic::metadata::{Ascii, MetadataValue};
use tonic::transport::{Channel, Endpoint};

/// A new HTTP/2 connection to the gRPC server at `url` (`http://<addr>`), with `TCP_NODELAY` as
/// executor-svc connects to billing-svc.
pub async fn connect(url: &str) -> anyhow::Result<Channel> {
    Endpoint::from_shared(url.to_string())
        .with_context(|| format!("a gRPC endpoint URL: {url}"))?
        .tcp_nodelay(true)
        .connect()
        .await
        .with_context(|| format!("connect to {url}"))
}

/// `Bearer <secret>` as gRPC metadata, parsed once so that a load can clone it for every call.
pub fn bearer(secret: &str) -> anyhow::Result<MetadataValue<Ascii>> {
    format!("Bearer {secret}")
        .parse()
        .context("a secret is printable ASCII")
}

/// Wraps `message` in a request carrying `authorization: <bearer>`.
pub fn authed<T>(bearer: &MetadataValue<Ascii>, message: T) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    request
        .metadata_mut()
        .insert("authorization", bearer.clone());
    request
}
