//! What an operator watches: the Prometheus registry with every metric this
//! server exports (names under `placement_`, clear of openstack-exporter's
//! `openstack_placement_*`), the request log line as upstream's
//! `placement/requestlog.py` writes it, and logging set-up.

use std::sync::atomic::{AtomicI64, Ordering};

use prometheus::{
    Encoder, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge,
    IntGaugeVec, Opts, Registry, TextEncoder,
};

use crate::config::LogFormat;
use crate::http::microversion;
use crate::storage::PoolStatus;

/// OpenTelemetry's advised HTTP duration buckets, in seconds.
const LATENCY_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0,
    7.5, 10.0,
];

/// How a claim (an allocation write) ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClaimOutcome {
    Accepted,
    /// Refused: some provider lacks the capacity.
    Capacity,
    /// Gave up on provider generation conflicts after its retries.
    GenerationConflict,
    /// The consumer's generation (or existence) did not match.
    ConsumerConflict,
}

impl ClaimOutcome {
    fn label(self) -> &'static str {
        match self {
            ClaimOutcome::Accepted => "accepted",
            ClaimOutcome::Capacity => "capacity",
            ClaimOutcome::GenerationConflict => "generation_conflict",
            ClaimOutcome::ConsumerConflict => "consumer_conflict",
        }
    }
}

/// How one Keystone token validation ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ValidationResult {
    Valid,
    Invalid,
    /// Keystone unreachable or failing.
    Error,
}

pub struct Metrics {
    registry: Registry,
    http_requests: IntCounterVec,
    http_duration: HistogramVec,
    http_in_flight: IntGauge,
    pool_connections: IntGaugeVec,
    pool_max: IntGauge,
    pool_waits: IntGauge,
    pool_wait_seconds: prometheus::Gauge,
    pool_timeouts: IntGauge,
    view_refresh: Histogram,
    view_last_refresh: AtomicI64,
    view_age: prometheus::Gauge,
    claims: IntCounterVec,
    conflict_retries: IntCounter,
    keystone_validations: IntCounterVec,
    keystone_duration: Histogram,
    token_cache: IntCounterVec,
}

fn must<T>(result: prometheus::Result<T>) -> T {
    match result {
        Ok(value) => value,
        // Only a malformed name or a duplicate registration fails, both
        // fixed in this file and covered by its tests.
        Err(error) => unreachable!("metric definition: {error}"),
    }
}

/// `collector`, registered in `registry` (which keeps a clone).
fn registered<C>(registry: &Registry, collector: prometheus::Result<C>) -> C
where
    C: prometheus::core::Collector + Clone + 'static,
{
    let collector = must(collector);
    must(registry.register(Box::new(collector.clone())));
    collector
}

impl Metrics {
    pub fn new() -> Metrics {
        let registry = Registry::new();
        let http_requests = registered(
            &registry,
            IntCounterVec::new(
                Opts::new("placement_http_requests_total", "HTTP requests answered."),
                &["method", "route", "status"],
            ),
        );
        let http_duration = registered(
            &registry,
            HistogramVec::new(
                HistogramOpts::new(
                    "placement_http_request_duration_seconds",
                    "Time from a request's arrival to its answer.",
                )
                .buckets(LATENCY_BUCKETS.to_vec()),
                &["method", "route"],
            ),
        );
        let http_in_flight = registered(
            &registry,
            IntGauge::new(
                "placement_http_requests_in_flight",
                "Requests being handled now.",
            ),
        );
        let pool_connections = registered(
            &registry,
            IntGaugeVec::new(
                Opts::new(
                    "placement_db_pool_connections",
                    "Database connections of this process's pool, by state.",
                ),
                &["state"],
            ),
        );
        let pool_max = registered(
            &registry,
            IntGauge::new(
                "placement_db_pool_max_connections",
                "The pool's size ([placement_database] max_pool_size).",
            ),
        );
        let pool_waits = registered(
            &registry,
            IntGauge::new(
                "placement_db_pool_waits_total",
                "Times a request waited for a pooled connection.",
            ),
        );
        let pool_wait_seconds = registered(
            &registry,
            prometheus::Gauge::new(
                "placement_db_pool_wait_seconds_total",
                "Time requests spent waiting for a pooled connection.",
            ),
        );
        let pool_timeouts = registered(
            &registry,
            IntGauge::new(
                "placement_db_pool_timeouts_total",
                "Requests answered 503 because no connection came within pool_timeout.",
            ),
        );
        let view_refresh = registered(
            &registry,
            Histogram::with_opts(
                HistogramOpts::new(
                    "placement_view_refresh_duration_seconds",
                    "Time to bring the in-memory candidates view up to date with the change log.",
                )
                .buckets(LATENCY_BUCKETS.to_vec()),
            ),
        );
        let view_age = registered(
            &registry,
            prometheus::Gauge::new(
                "placement_view_age_seconds",
                "Seconds since the in-memory view was last brought up to date (its lag at most).",
            ),
        );
        let claims = registered(
            &registry,
            IntCounterVec::new(
                Opts::new(
                    "placement_claims_total",
                    "Allocation writes (PUT /allocations/{consumer}, POST /allocations) by outcome.",
                ),
                &["outcome"],
            ),
        );
        let conflict_retries = registered(
            &registry,
            IntCounter::new(
                "placement_allocation_conflict_retries_total",
                "Allocation write attempts repeated after losing a provider generation race.",
            ),
        );
        let keystone_validations = registered(
            &registry,
            IntCounterVec::new(
                Opts::new(
                    "placement_keystone_token_validations_total",
                    "Token validations asked of Keystone, by result.",
                ),
                &["result"],
            ),
        );
        let keystone_duration = registered(
            &registry,
            Histogram::with_opts(
                HistogramOpts::new(
                    "placement_keystone_token_validation_duration_seconds",
                    "Time Keystone took to validate a token.",
                )
                .buckets(LATENCY_BUCKETS.to_vec()),
            ),
        );
        let token_cache = registered(
            &registry,
            IntCounterVec::new(
                Opts::new(
                    "placement_keystone_token_cache_total",
                    "Token look-ups in the validated-token cache, by result (hit, miss).",
                ),
                &["result"],
            ),
        );
        let build_info = registered(
            &registry,
            IntGaugeVec::new(
                Opts::new("placement_build_info", "This server's version."),
                &["version", "max_microversion"],
            ),
        );
        build_info
            .with_label_values(&[env!("CARGO_PKG_VERSION"), &microversion::MAX.to_string()])
            .set(1);
        // Every outcome shows from the start, at zero.
        for outcome in [
            ClaimOutcome::Accepted,
            ClaimOutcome::Capacity,
            ClaimOutcome::GenerationConflict,
            ClaimOutcome::ConsumerConflict,
        ] {
            claims.with_label_values(&[outcome.label()]);
        }
        Metrics {
            registry,
            http_requests,
            http_duration,
            http_in_flight,
            pool_connections,
            pool_max,
            pool_waits,
            pool_wait_seconds,
            pool_timeouts,
            view_refresh,
            view_last_refresh: AtomicI64::new(0),
            view_age,
            claims,
            conflict_retries,
            keystone_validations,
            keystone_duration,
            token_cache,
        }
    }

    /// A request began; the guard counts it out when dropped.
    pub fn request_started(&self) -> InFlight<'_> {
        self.http_in_flight.inc();
        InFlight(&self.http_in_flight)
    }

    pub fn request_finished(&self, method: &str, route: &str, status: u16, seconds: f64) {
        let method = match method {
            "GET" | "HEAD" | "POST" | "PUT" | "DELETE" | "PATCH" | "OPTIONS" => method,
            _ => "_OTHER",
        };
        self.http_requests
            .with_label_values(&[method, route, &status.to_string()])
            .inc();
        self.http_duration
            .with_label_values(&[method, route])
            .observe(seconds);
    }

    pub fn view_refreshed(&self, seconds: f64) {
        self.view_refresh.observe(seconds);
        self.view_last_refresh
            .store(chrono::Utc::now().timestamp_millis(), Ordering::Relaxed);
    }

    pub fn claim(&self, outcome: ClaimOutcome) {
        self.claims.with_label_values(&[outcome.label()]).inc();
    }

    pub fn conflict_retries(&self, retries: u64) {
        self.conflict_retries.inc_by(retries);
    }

    pub fn keystone_validation(&self, result: ValidationResult, seconds: f64) {
        let label = match result {
            ValidationResult::Valid => "valid",
            ValidationResult::Invalid => "invalid",
            ValidationResult::Error => "error",
        };
        self.keystone_validations.with_label_values(&[label]).inc();
        self.keystone_duration.observe(seconds);
    }

    pub fn token_cache(&self, hit: bool) {
        self.token_cache
            .with_label_values(&[if hit { "hit" } else { "miss" }])
            .inc();
    }

    /// The text exposition, with the pool's state read now.
    pub fn render(&self, pool: &PoolStatus) -> String {
        self.pool_connections
            .with_label_values(&["in_use"])
            .set(i64::from(pool.connections.saturating_sub(pool.idle)));
        self.pool_connections
            .with_label_values(&["idle"])
            .set(i64::from(pool.idle));
        self.pool_max.set(i64::from(pool.max_size));
        self.pool_waits
            .set(i64::try_from(pool.waits).unwrap_or(i64::MAX));
        self.pool_wait_seconds.set(pool.wait_seconds);
        self.pool_timeouts
            .set(i64::try_from(pool.timeouts).unwrap_or(i64::MAX));
        let last = self.view_last_refresh.load(Ordering::Relaxed);
        if last > 0 {
            let now = chrono::Utc::now().timestamp_millis();
            self.view_age.set((now - last).max(0) as f64 / 1000.0);
        }
        let mut buffer = Vec::new();
        if let Err(error) = TextEncoder::new().encode(&self.registry.gather(), &mut buffer) {
            tracing::error!(%error, "metrics encoding failed");
        }
        String::from_utf8(buffer).unwrap_or_default()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

/// Counts one request in flight while it lives.
pub struct InFlight<'a>(&'a IntGauge);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.dec();
    }
}

/// Sets up the log: text lines (upstream's request log layout inside the
/// message) or one JSON object per line; `filter` in env-filter syntax.
pub fn init_logging(filter: &str, format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_new(filter)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let result = match format {
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .try_init(),
        LogFormat::Text => builder
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .try_init(),
    };
    // A second initialisation (tests) keeps the first.
    drop(result);
}

/// One finished request, as upstream's request log reports it.
pub struct RequestLogLine<'a> {
    pub remote_addr: &'a str,
    pub method: &'a str,
    /// Path and query, as the client sent them.
    pub uri: &'a str,
    pub route: &'static str,
    pub status: u16,
    /// The body's length, `None` when not known (`-`).
    pub length: Option<u64>,
    /// The negotiated microversion, `None` before negotiation (`-`).
    pub microversion: Option<String>,
    pub request_id: &'a str,
    pub global_request_id: Option<&'a str>,
    pub user_id: Option<&'a str>,
    pub project_id: Option<&'a str>,
    pub seconds: f64,
}

impl RequestLogLine<'_> {
    /// `[global local user project] addr "GET /path" status: 200 len: 512
    /// microversion: 1.39`, oslo.log's context prefix and upstream's line.
    pub fn message(&self) -> String {
        format!(
            "[{} {} {} {}] {} \"{} {}\" status: {} len: {} microversion: {}",
            self.global_request_id.unwrap_or("-"),
            self.request_id,
            self.user_id.unwrap_or("-"),
            self.project_id.unwrap_or("-"),
            self.remote_addr,
            self.method,
            self.uri,
            self.status,
            self.length
                .map_or_else(|| "-".to_owned(), |length| length.to_string()),
            self.microversion.as_deref().unwrap_or("-"),
        )
    }

    /// Logs the line: the message alone as text, with every field as JSON.
    pub fn emit(&self, format: LogFormat) {
        if format == LogFormat::Text {
            tracing::info!(target: "placement.requestlog", "{}", self.message());
            return;
        }
        tracing::info!(
            target: "placement.requestlog",
            request_id = self.request_id,
            global_request_id = self.global_request_id,
            user_id = self.user_id,
            project_id = self.project_id,
            method = self.method,
            route = self.route,
            status = self.status,
            len = self.length,
            microversion = self.microversion.as_deref(),
            duration_ms = self.seconds * 1000.0,
            "{}",
            self.message()
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_request_line_reads_as_upstreams() {
        let line = RequestLogLine {
            remote_addr: "10.0.0.5",
            method: "GET",
            uri: "/resource_providers?in_tree=x",
            route: "/resource_providers",
            status: 200,
            length: Some(512),
            microversion: Some("1.39".to_owned()),
            request_id: "req-l",
            global_request_id: None,
            user_id: Some("u"),
            project_id: Some("p"),
            seconds: 0.001,
        };
        assert_eq!(
            line.message(),
            "[- req-l u p] 10.0.0.5 \"GET /resource_providers?in_tree=x\" status: 200 len: 512 microversion: 1.39"
        );
    }

    #[test]
    fn metrics_render_with_labels_and_counts() {
        let metrics = Metrics::new();
        metrics.request_finished("GET", "/resource_providers", 200, 0.002);
        metrics.request_finished("GET", "/resource_providers", 200, 0.002);
        metrics.request_finished("BREW", "unmatched", 405, 0.001);
        metrics.claim(ClaimOutcome::Capacity);
        let text = metrics.render(&PoolStatus::default());
        assert!(text.contains(
            "placement_http_requests_total{method=\"GET\",route=\"/resource_providers\",status=\"200\"} 2"
        ));
        assert!(text.contains("method=\"_OTHER\""));
        assert!(text.contains("placement_claims_total{outcome=\"capacity\"} 1"));
        assert!(text.contains("placement_claims_total{outcome=\"accepted\"} 0"));
        assert!(text.contains("placement_build_info{max_microversion=\"1.39\""));
    }
}
