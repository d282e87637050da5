//! `cargo run --release -p emsp-bench --example search_bench -- [--evses N] [--json] [--postgis URL]`:
//! the figures of `emsp bench search` before the server CLI exists.

use emsp_bench::{SearchBenchOptions, run_search_bench};

fn main() -> anyhow::Result<()> {
    let mut opts = SearchBenchOptions::default();
    let mut json = false;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--evses" => opts.evses = args.next().unwrap_or_default().parse()?,
            "--queries" => opts.queries_per_kind = args.next().unwrap_or_default().parse()?,
            "--seed" => opts.seed = args.next().unwrap_or_default().parse()?,
            "--postgis" => opts.postgis_url = args.next(),
            "--json" => json = true,
            other => anyhow::bail!("unknown argument {other}"),
        }
    }
    let report = run_search_bench(&opts)?;
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", report.to_table());
    }
    Ok(())
}
