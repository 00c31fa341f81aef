//! The server's counters and their Prometheus text exposition (`GET /metrics`).

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use axum::http::StatusCode;

/// Latency buckets of the histogram, seconds.
const BUCKETS: [f64; 10] = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 1.0];

#[derive(Default)]
pub(super) struct Metrics {
    requests: AtomicU64,
    errors_4xx: AtomicU64,
    errors_5xx: AtomicU64,
    pub(super) rows: AtomicU64,
    pub(super) swaps: AtomicU64,
    pub(super) refused_versions: AtomicU64,
    /// Failed checks of the registry alias (the model in hand kept serving).
    pub(super) registry_errors: AtomicU64,
    pub(super) unauthorized: AtomicU64,
    pub(super) connections_open: AtomicU64,
    pub(super) connections_total: AtomicU64,
    /// Cumulative counts per bucket (+Inf last) and the sum in microseconds.
    latency: [AtomicU64; BUCKETS.len() + 1],
    latency_sum_us: AtomicU64,
}

impl Metrics {
    pub(super) fn observe(&self, started: Instant, status: StatusCode) {
        self.requests.fetch_add(1, Ordering::Relaxed);
        if status.is_client_error() {
            self.errors_4xx.fetch_add(1, Ordering::Relaxed);
        } else if status.is_server_error() {
            self.errors_5xx.fetch_add(1, Ordering::Relaxed);
        }
        let secs = started.elapsed().as_secs_f64();
        let i = BUCKETS.iter().position(|&b| secs <= b).unwrap_or(BUCKETS.len());
        self.latency[i].fetch_add(1, Ordering::Relaxed);
        self.latency_sum_us.fetch_add((secs * 1e6) as u64, Ordering::Relaxed);
    }

    /// Prometheus text exposition; `model` is the name and version served (none while loading).
    pub(super) fn text(&self, model: Option<(&str, u64)>, max_connections: usize) -> String {
        let mut s = String::new();
        let mut counter = |name: &str, help: &str, v: &AtomicU64| {
            s.push_str(&format!("# HELP {name} {help}\n# TYPE {name} counter\n{name} {}\n", v.load(Ordering::Relaxed)));
        };
        counter("leadflow_requests_total", "Scoring requests answered.", &self.requests);
        counter("leadflow_request_errors_4xx_total", "Requests refused as bad (4xx).", &self.errors_4xx);
        counter("leadflow_request_errors_5xx_total", "Requests failed by the server (5xx).", &self.errors_5xx);
        counter("leadflow_requests_unauthorized_total", "Requests without the bearer token (401).", &self.unauthorized);
        counter("leadflow_rows_scored_total", "Rows scored.", &self.rows);
        counter("leadflow_model_swaps_total", "New model versions swapped in.", &self.swaps);
        counter("leadflow_model_versions_refused_total", "New versions that failed to load.", &self.refused_versions);
        counter(
            "leadflow_registry_errors_total",
            "Failed checks of the registry alias (the model in hand kept serving).",
            &self.registry_errors,
        );
        counter("leadflow_connections_total", "Connections accepted.", &self.connections_total);
        let mut gauge = |name: &str, help: &str, labels: &str, v: u64| {
            s.push_str(&format!("# HELP {name} {help}\n# TYPE {name} gauge\n{name}{labels} {v}\n"));
        };
        gauge("leadflow_connections_open", "Connections open now.", "", self.connections_open.load(Ordering::Relaxed));
        gauge("leadflow_connections_max", "Most connections served at once (--max-connections).", "", max_connections as u64);
        gauge("leadflow_ready", "1 when a model is loaded and requests are scored.", "", u64::from(model.is_some()));
        if let Some((name, version)) = model {
            gauge(
                "leadflow_model_version",
                "Registry version being served (0: a model directory).",
                &format!("{{name=\"{name}\"}}"),
                version,
            );
        }
        s.push_str("# HELP leadflow_request_duration_seconds Time to answer a scoring request.\n");
        s.push_str("# TYPE leadflow_request_duration_seconds histogram\n");
        let mut cumulative = 0;
        for (i, b) in BUCKETS.iter().map(|b| b.to_string()).chain(std::iter::once("+Inf".to_string())).enumerate() {
            cumulative += self.latency[i].load(Ordering::Relaxed);
            s.push_str(&format!("leadflow_request_duration_seconds_bucket{{le=\"{b}\"}} {cumulative}\n"));
        }
        s.push_str(&format!("leadflow_request_duration_seconds_sum {}\n", self.latency_sum_us.load(Ordering::Relaxed) as f64 / 1e6));
        s.push_str(&format!("leadflow_request_duration_seconds_count {cumulative}\n"));
        s
    }
}
