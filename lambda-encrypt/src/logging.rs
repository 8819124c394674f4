//! JSON-lines logging for the Lambda.
//!
//! Only this crate logs at the configured level. Every other crate is held at
//! WARN: the Lambda runtime logs whole event payloads at TRACE, and an HTTP
//! client at TRACE could log KMS responses, which hold data keys.

use tracing::level_filters::LevelFilter;
use tracing_subscriber::filter::Targets;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::prelude::*;

/// `CALLVAULT_LOG_LEVEL` (error, warn, info, debug; default info). TRACE is
/// not offered.
pub fn level_from_env() -> LevelFilter {
    match std::env::var("CALLVAULT_LOG_LEVEL")
        .unwrap_or_default()
        .to_ascii_lowercase()
        .as_str()
    {
        "error" => LevelFilter::ERROR,
        "warn" => LevelFilter::WARN,
        "debug" | "trace" => LevelFilter::DEBUG,
        _ => LevelFilter::INFO,
    }
}

pub fn filter(level: LevelFilter) -> Targets {
    Targets::new()
        .with_default(LevelFilter::WARN)
        .with_target("lambda_encrypt", level)
}

/// A JSON subscriber writing to `writer`, with the filter above.
pub fn subscriber<W>(writer: W, level: LevelFilter) -> impl tracing::Subscriber + Send + Sync
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    tracing_subscriber::registry().with(
        tracing_subscriber::fmt::layer()
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .with_span_list(false)
            .with_writer(writer)
            .with_filter(filter(level)),
    )
}

/// Installs the JSON subscriber on stdout for the whole process.
pub fn init() {
    // A second call (tests) keeps the first subscriber.
    let _ = tracing::subscriber::set_global_default(subscriber(std::io::stdout, level_from_env()));
}
