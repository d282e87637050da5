//! Logs: `tracing` events as JSON lines (or text for a terminal), filtered like `RUST_LOG`.
//! Every event inside a request carries the request's span, and so its `request_id`.

use tracing_subscriber::EnvFilter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

use crate::config::{LogConfig, LogFormat};

/// Installs the global subscriber. A bad filter is an error, not a silent fallback.
pub fn init(config: &LogConfig) -> anyhow::Result<()> {
    let filter = EnvFilter::builder()
        .parse(&config.filter)
        .map_err(|e| anyhow::anyhow!("log filter {:?} is invalid: {e}", config.filter))?;
    let registry = tracing_subscriber::registry().with(filter);
    let result = match config.format {
        LogFormat::Json => registry
            .with(
                tracing_subscriber::fmt::layer()
                    .json()
                    .with_current_span(true)
                    .with_span_list(false)
                    .flatten_event(true)
                    .with_target(true)
                    .with_writer(std::io::stdout),
            )
            .try_init(),
        LogFormat::Text => registry.with(tracing_subscriber::fmt::layer().with_writer(std::io::stdout)).try_init(),
    };
    // A second init (tests start several servers in one process) keeps the first subscriber.
    if let Err(error) = result {
        tracing::debug!(%error, "log subscriber already installed");
    }
    Ok(())
}
