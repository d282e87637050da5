//! Logs: `tracing` events as JSON lines (or text for a terminal), filtered like `RUST_LOG`.
//! Every event inside a request carries the request's span, and so its `request_id`.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

use crate::config::{LogConfig, LogFormat};

/// Installs the global subscriber, writing to stdout or stderr. A bad filter is an error, not a
/// silent fallback.
pub fn init(config: &LogConfig, to_stdout: bool) -> anyhow::Result<()> {
    let writer = move || -> Box<dyn std::io::Write> {
        if to_stdout { Box::new(std::io::stdout()) } else { Box::new(std::io::stderr()) }
    };
    let is_terminal = if to_stdout { std::io::stdout().is_terminal() } else { std::io::stderr().is_terminal() };
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
                    .with_writer(writer),
            )
            .try_init(),
        LogFormat::Text => {
            registry.with(tracing_subscriber::fmt::layer().with_ansi(is_terminal).with_writer(writer)).try_init()
        }
    };
    // A second init (tests start several servers in one process) keeps the first subscriber.
    if let Err(error) = result {
        tracing::debug!(%error, "log subscriber already installed");
    }
    Ok(())
}
