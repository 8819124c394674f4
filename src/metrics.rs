//! Prometheus metrics (`/metrics`, text format), process-wide.
//!
//! Labels are closed sets chosen by the code: route *patterns* (never a
//! path), methods, status codes, audit actions, refusal kinds, AWS service
//! and operation names. No contact id, reason, value or user name ever
//! becomes a label.

use std::sync::LazyLock;
use std::time::Duration;

use prometheus::{
    Encoder as _, Gauge, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, Opts,
    Registry, TextEncoder,
};

pub struct Metrics {
    registry: Registry,
    http_requests: IntCounterVec,
    http_seconds: HistogramVec,
    reveals: IntCounter,
    refusals: IntCounterVec,
    audit_appends: IntCounterVec,
    audit_append_errors: IntCounter,
    audit_append_seconds: HistogramVec,
    aws_calls: IntCounterVec,
    aws_errors: IntCounterVec,
    aws_seconds: HistogramVec,
    outbox_backlog: IntGauge,
    outbox_oldest_age: Gauge,
    checkpoint_age: Gauge,
}

const LATENCY_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

impl Metrics {
    fn new() -> Result<Self, prometheus::Error> {
        let registry = Registry::new_custom(Some("callvault".into()), None)?;
        let counter = |name: &str, help: &str, labels: &[&str]| {
            let c = IntCounterVec::new(Opts::new(name, help), labels)?;
            registry.register(Box::new(c.clone()))?;
            Ok::<_, prometheus::Error>(c)
        };
        let histogram = |name: &str, help: &str, labels: &[&str]| {
            let h = HistogramVec::new(
                HistogramOpts::new(name, help).buckets(LATENCY_BUCKETS.to_vec()),
                labels,
            )?;
            registry.register(Box::new(h.clone()))?;
            Ok::<_, prometheus::Error>(h)
        };
        let http_requests = counter(
            "http_requests_total",
            "HTTP requests by route pattern, method and status.",
            &["route", "method", "status"],
        )?;
        let http_seconds = histogram(
            "http_request_duration_seconds",
            "HTTP request latency by route pattern and method.",
            &["route", "method"],
        )?;
        let reveals = IntCounter::new("reveals_total", "Values revealed (decrypted and audited).")?;
        registry.register(Box::new(reveals.clone()))?;
        let refusals = counter(
            "reveal_refusals_total",
            "Reveals refused (decrypt_denied) or failed (decrypt_failed), by kind.",
            &["action", "kind"],
        )?;
        let audit_appends = counter(
            "audit_appends_total",
            "Audit rows committed, by action.",
            &["action"],
        )?;
        let audit_append_errors = IntCounter::new(
            "audit_append_errors_total",
            "Audit batches that failed to commit.",
        )?;
        registry.register(Box::new(audit_append_errors.clone()))?;
        let audit_append_seconds = histogram(
            "audit_append_duration_seconds",
            "Time to commit one audit batch (one durable commit).",
            &[],
        )?;
        let aws_calls = counter(
            "aws_calls_total",
            "Calls to AWS services, by service and operation.",
            &["service", "operation"],
        )?;
        let aws_errors = counter(
            "aws_errors_total",
            "Failed calls to AWS services, by service, operation and error kind.",
            &["service", "operation", "kind"],
        )?;
        let aws_seconds = histogram(
            "aws_call_duration_seconds",
            "AWS call latency by service and operation.",
            &["service", "operation"],
        )?;
        let outbox_backlog = IntGauge::new(
            "audit_outbox_backlog",
            "Audit rows committed but not yet shipped to CloudWatch Logs.",
        )?;
        registry.register(Box::new(outbox_backlog.clone()))?;
        let outbox_oldest_age = Gauge::new(
            "audit_outbox_oldest_age_seconds",
            "Age of the oldest audit row waiting to be shipped (0 when none waits).",
        )?;
        registry.register(Box::new(outbox_oldest_age.clone()))?;
        let checkpoint_age = Gauge::new(
            "audit_checkpoint_age_seconds",
            "Age of the newest signed checkpoint (-1 when there is none).",
        )?;
        registry.register(Box::new(checkpoint_age.clone()))?;
        Ok(Self {
            registry,
            http_requests,
            http_seconds,
            reveals,
            refusals,
            audit_appends,
            audit_append_errors,
            audit_append_seconds,
            aws_calls,
            aws_errors,
            aws_seconds,
            outbox_backlog,
            outbox_oldest_age,
            checkpoint_age,
        })
    }
}

static METRICS: LazyLock<Option<Metrics>> = LazyLock::new(|| match Metrics::new() {
    Ok(m) => Some(m),
    Err(e) => {
        tracing::error!(error = %e, "metrics are disabled");
        None
    }
});

fn metrics() -> Option<&'static Metrics> {
    METRICS.as_ref()
}

/// A label value from code-chosen text: lower-case words only (no digits,
/// so never a number), else "other".
fn closed(s: &str) -> &str {
    if !s.is_empty() && s.len() <= 40 && s.bytes().all(|b| b.is_ascii_lowercase() || b == b'_') {
        s
    } else {
        "other"
    }
}

fn method_label(m: &str) -> &'static str {
    match m {
        "GET" => "GET",
        "POST" => "POST",
        "HEAD" => "HEAD",
        "PUT" => "PUT",
        "DELETE" => "DELETE",
        "OPTIONS" => "OPTIONS",
        "PATCH" => "PATCH",
        _ => "other",
    }
}

/// One HTTP request. `route` is the matched pattern (`/contacts/{id}`), or
/// None when no route matched.
pub fn http_request(route: Option<&str>, method: &str, status: u16, elapsed: Duration) {
    let Some(m) = metrics() else { return };
    // Patterns come from `web::routes`; bound them anyway. `{id}` is written
    // `:id`: braces inside label values trip simple exposition parsers.
    let route = route.filter(|r| r.len() <= 64).map_or_else(
        || "unmatched".to_owned(),
        |r| r.replace('{', ":").replace('}', ""),
    );
    let route = route.as_str();
    let method = method_label(method);
    let status = status.to_string();
    m.http_requests
        .with_label_values(&[route, method, status.as_str()])
        .inc();
    m.http_seconds
        .with_label_values(&[route, method])
        .observe(elapsed.as_secs_f64());
}

/// One committed audit row.
pub fn audit_row(action: &str, outcome: &str) {
    let Some(m) = metrics() else { return };
    let action = closed(action);
    m.audit_appends.with_label_values(&[action]).inc();
    match action {
        "decrypt" => m.reveals.inc(),
        "decrypt_denied" | "decrypt_failed" => m
            .refusals
            .with_label_values(&[action, closed(outcome)])
            .inc(),
        _ => {}
    }
}

/// One audit batch commit, whatever its outcome.
pub fn audit_batch(ok: bool, elapsed: Duration) {
    let Some(m) = metrics() else { return };
    m.audit_append_seconds
        .with_label_values::<&str>(&[])
        .observe(elapsed.as_secs_f64());
    if !ok {
        m.audit_append_errors.inc();
    }
}

/// One AWS call; `error` is the error kind when it failed.
pub fn aws_call(
    service: &'static str,
    operation: &'static str,
    error: Option<&str>,
    elapsed: Duration,
) {
    let Some(m) = metrics() else { return };
    m.aws_calls.with_label_values(&[service, operation]).inc();
    m.aws_seconds
        .with_label_values(&[service, operation])
        .observe(elapsed.as_secs_f64());
    if let Some(kind) = error {
        m.aws_errors
            .with_label_values(&[service, operation, closed(kind)])
            .inc();
    }
}

/// Audit shipping state, read when metrics are scraped.
pub fn set_shipping(backlog: i64, oldest_age: Option<Duration>, checkpoint_age: Option<Duration>) {
    let Some(m) = metrics() else { return };
    m.outbox_backlog.set(backlog);
    m.outbox_oldest_age
        .set(oldest_age.map_or(0.0, |d| d.as_secs_f64()));
    m.checkpoint_age
        .set(checkpoint_age.map_or(-1.0, |d| d.as_secs_f64()));
}

/// Everything, in the Prometheus text exposition format.
pub fn render() -> Result<String, prometheus::Error> {
    let Some(m) = metrics() else {
        return Ok(String::new());
    };
    let mut out = Vec::new();
    TextEncoder::new().encode(&m.registry.gather(), &mut out)?;
    String::from_utf8(out).map_err(|e| prometheus::Error::Msg(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_values_outside_the_closed_set_become_other() {
        assert_eq!(closed("context_mismatch"), "context_mismatch");
        for open in ["", "4929871234567893", "Has Spaces", "a-b", &"x".repeat(41)] {
            assert_eq!(closed(open), "other", "{open}");
        }
        assert_eq!(method_label("BREW"), "other");
    }
}
