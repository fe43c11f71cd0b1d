//! Prometheus metrics of the HTTP surface: request counts and latency by method, route template and
//! status, served on `/metrics` in the OpenMetrics text format (which Prometheus scrapes natively), with
//! executor-svc's per-provider health copied in at each scrape.

use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use std::sync::atomic::AtomicU64;

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use proto::executor::v1::ProviderStatus;

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

    /// The OpenMetrics text exposition, with executor-svc's `providers` when it answered.
    pub fn render(&self, providers: Option<&[ProviderStatus]>) -> Result<String, std::fmt::Error> {
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &self.registry)?;
        if let Some(providers) = providers {
            // One exposition: the first one's `# EOF` goes, the providers' one ends the text.
            if let Some(body) = text.strip_suffix("# EOF\n") {
                text.truncate(body.len());
            }
            text.push_str(&render_providers(providers)?);
        }
        Ok(text)
    }
}

/// The labels of one provider.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ProviderLabels {
    provider: String,
    kind: String,
}

/// executor-svc's providers as counters and gauges, from its snapshot (a fresh registry per scrape: the
/// counts are the executor's, only copied here).
fn render_providers(providers: &[ProviderStatus]) -> Result<String, std::fmt::Error> {
    let mut registry = Registry::with_prefix("executor_provider");
    let up = Family::<ProviderLabels, Gauge>::default();
    let attempts = Family::<ProviderLabels, Counter>::default();
    let failures = Family::<ProviderLabels, Counter>::default();
    let fallbacks = Family::<ProviderLabels, Counter>::default();
    let first_item = Family::<ProviderLabels, Counter<f64, AtomicU64>>::default();
    for status in providers {
        let labels = ProviderLabels {
            provider: status.name.clone(),
            kind: status.kind.clone(),
        };
        up.get_or_create(&labels).set(i64::from(status.up));
        attempts.get_or_create(&labels).inc_by(status.attempts);
        failures.get_or_create(&labels).inc_by(status.failures);
        fallbacks.get_or_create(&labels).inc_by(status.fallbacks);
        first_item
            .get_or_create(&labels)
            .inc_by(status.first_item_seconds_sum);
    }
    registry.register(
        "up",
        "1 while the provider is up (PROVIDERS.md, Health)",
        up,
    );
    registry.register("attempts", "Calls handed to the provider", attempts);
    registry.register(
        "failures",
        "Calls the provider refused or failed before its first item",
        failures,
    );
    registry.register(
        "fallbacks",
        "Failed calls handed on to the route's next provider",
        fallbacks,
    );
    registry.register(
        "first_item_seconds",
        "Time to the provider's first item, summed over successful calls",
        first_item,
    );
    let mut text = String::new();
    prometheus_client::encoding::text::encode(&mut text, &registry)?;
    Ok(text)
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
        let providers = [ProviderStatus {
            name: "anthropic".into(),
            kind: "anthropic".into(),
            up: true,
            attempts: 5,
            failures: 1,
            fallbacks: 1,
            first_item_seconds_sum: 0.5,
        }];
        let text = metrics.render(Some(&providers)).unwrap();
        assert_eq!(text.matches("# EOF").count(), 1, "{text}");
        assert!(text.ends_with("# EOF\n"), "{text}");
        for line in [
            r#"executor_provider_up{provider="anthropic",kind="anthropic"} 1"#,
            r#"executor_provider_attempts_total{provider="anthropic",kind="anthropic"} 5"#,
            r#"executor_provider_fallbacks_total{provider="anthropic",kind="anthropic"} 1"#,
            r#"executor_provider_first_item_seconds_total{provider="anthropic",kind="anthropic"} 0.5"#,
        ] {
            assert!(text.contains(line), "{line}: {text}");
        }
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
