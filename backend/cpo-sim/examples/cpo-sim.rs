//! Runs the CPO simulator on its own until Ctrl-C, for trying an EMSP against it by hand.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::{Context, bail};
use emsp_cpo_sim::{SimData, SimOptions, SimVersion, StatusSource, start};

const HELP: &str = "cpo-sim [--listen ADDR] [--public-url URL] [--party CC,PID] [--version 2.2.1|2.1.1]
        [--token-a TOKEN] [--locations N | --files A.json,B.json] [--seed N] [--page-limit N]
        [--status-rate PER_S] [--replay FILE.csv | --replay-sample] [--register VERSIONS_URL TOKEN_A]";

fn parse() -> anyhow::Result<(SimOptions, Option<(String, String)>)> {
    let mut options = SimOptions { listen: SocketAddr::from(([127, 0, 0, 1], 9090)), ..SimOptions::default() };
    let mut register = None;
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let mut value = || args.next().with_context(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--listen" => options.listen = value()?.parse()?,
            "--public-url" => options.public_url = Some(value()?),
            "--party" => {
                let party = value()?;
                let (cc, pid) = party.split_once(',').context("--party CC,PID")?;
                options.party = (cc.to_owned(), pid.to_owned());
            }
            "--version" => {
                options.version = match value()?.as_str() {
                    "2.2.1" => SimVersion::V2_2_1,
                    "2.1.1" => SimVersion::V2_1_1,
                    other => bail!("unsupported version {other}"),
                }
            }
            "--token-a" => options.token_a = Some(value()?),
            "--locations" => options.data = SimData::Generated { locations: value()?.parse()? },
            "--files" => options.data = SimData::Files(value()?.split(',').map(PathBuf::from).collect()),
            "--seed" => options.seed = value()?.parse()?,
            "--page-limit" => options.page_limit = value()?.parse()?,
            "--status-rate" => options.status_rate_per_s = value()?.parse()?,
            "--replay" => options.status_source = StatusSource::Replay(value()?.into()),
            "--replay-sample" => options.status_source = StatusSource::ReplaySample,
            "--register" => {
                let url = value()?;
                register = Some((url, args.next().context("--register VERSIONS_URL TOKEN_A")?));
            }
            "--help" | "-h" => {
                eprintln!("{HELP}");
                std::process::exit(0);
            }
            other => bail!("unknown argument {other}\n{HELP}"),
        }
    }
    Ok((options, register))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt().with_env_filter(std::env::var("RUST_LOG").unwrap_or_else(|_| "info".to_owned())).init();
    let (options, register) = parse()?;
    let sim = start(options).await?;
    tracing::info!(versions_url = %sim.versions_url, token_a = %sim.token_a, "give these to the emsp");
    if let Some((url, token)) = register {
        sim.register_with(&url, &token).await?;
    }
    tokio::signal::ctrl_c().await?;
    sim.stop().await;
    Ok(())
}
