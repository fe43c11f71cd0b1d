//! Prometheus metrics of the HTTP surface: request counts and latency by method, route template and
//! status, served on `/metrics` in the OpenMetrics text format (which Prometheus scrapes natively).

use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

/// The content type of [`Metrics::render`].
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// The labels of one request. `route` is the route template (`/admin/keys/{id}`), never the raw path, so
/// ids cannot blow up the series count; requests matching no route share `route="unmatched"`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    method: String,
    route: String,
    status: String,
}

type HistogramConstructor = fn() -> Histogram;

/// The registry and its metric families.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    latency: Family<RequestLabels, Histogram, HistogramConstructor>,
}

fn latency_histogram() -> Histogram {
    // 5 ms to ~41 s: covers billing reads and long model runs alike.
    Histogram::new(exponential_buckets(0.005, 2.0, 14))
}

impl Default for Metrics {
    fn default() -> Metrics {
        let mut registry = Registry::default();
        let requests = Family::<RequestLabels, Counter>::default();
        let latency =
            Family::<RequestLabels, Histogram, HistogramConstructor>::new_with_constructor(
                latency_histogram as HistogramConstructor,
            );
        registry.register(
            "gateway_http_requests",
            "HTTP requests answered",
            requests.clone(),
        );
        registry.register(
            "gateway_http_request_duration_seconds",
            "Time to the response head (for SSE, to the first event)",
            latency.clone(),
        );
        Metrics {
            registry,
            requests,
            latency,
        }
    }
}

impl Metrics {
    pub fn observe(&self, method: &str, route: &str, status: u16, elapsed: Duration) {
        let labels = RequestLabels {
            method: method.to_string(),
            route: route.to_string(),
            status: status.to_string(),
        };
        self.requests.get_or_create(&labels).inc();
        self.latency
            .get_or_create(&labels)
            .observe(elapsed.as_secs_f64());
    }

    /// The OpenMetrics text exposition.
    pub fn render(&self) -> Result<String, std::fmt::Error> {
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &self.registry)?;
        Ok(text)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;

    #[test]
    fn requests_are_counted_by_route_and_status() {
        let metrics = Metrics::default();
        metrics.observe("GET", "/billing/account", 200, Duration::from_millis(3));
        metrics.observe("GET", "/billing/account", 200, Duration::from_millis(4));
        let text = metrics.render().unwrap();
        assert!(
            text.contains(r#"gateway_http_requests_total{method="GET",route="/billing/account",status="200"} 2"#),
            "{text}"
        );
        assert!(
            text.contains("gateway_http_request_duration_seconds_bucket"),
            "{text}"
        );
    }
}
