//! The command line of `emsp`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};
use emsp_store::TokenCipher;

use crate::app::{self, RunOptions};
use crate::config::Config;
use crate::telemetry;

/// The backend of an e-mobility service provider: charger search, roaming, charging, billing.
#[derive(Debug, Parser)]
#[command(name = "emsp", version, about)]
pub struct Cli {
    /// TOML configuration file (also `EMSP_CONFIG`); environment variables override it.
    #[arg(long, global = true, value_name = "FILE")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the HTTP server (migrates the database first).
    Serve,
    /// Apply pending database migrations and exit.
    Migrate,
    /// Run the whole product locally: SQLite in ./data (or EMSP_DATA_DIR) and demo data.
    Demo,
    /// Print the effective configuration (secrets redacted) and exit.
    Config,
    /// Run a simulated CPO (OCPI 2.2.1, or 2.1.1): locations, tariffs, status pushes, commands,
    /// sessions and CDRs, with faults on demand (`POST /admin/faults`). Stops on Ctrl-C.
    CpoSim(CpoSimArgs),
    /// Accounts of staff and drivers.
    User {
        #[command(subcommand)]
        what: UserCommand,
    },
    /// Roaming partners: invite, register with, list.
    Partner {
        #[command(subcommand)]
        what: PartnerCommand,
    },
    /// Load OCPI location and tariff JSON files (envelope or bare array, with or without BOM), as a
    /// pull would: tolerant of real-world deviations, one bad object skipped with its reason.
    Import {
        /// OCPI JSON files.
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// The CPO of objects that name none (OCPI 2.1.1), as `CC*PID`.
        #[arg(long)]
        party: Option<String>,
    },
    /// Tariff tools for operations.
    Tariff {
        #[command(subcommand)]
        what: TariffCommand,
    },
    /// Fleets: companies whose drivers charge on our contract and get monthly invoices.
    Fleet {
        #[command(subcommand)]
        what: FleetCommand,
    },
    /// Monthly fleet invoices and credit notes: run (or preview) a month, export a document.
    Invoice {
        #[command(subcommand)]
        what: InvoiceCommand,
    },
    /// Measure hot paths and print the figures.
    Bench {
        #[command(subcommand)]
        what: BenchCommand,
    },
}

#[derive(Debug, Subcommand)]
enum UserCommand {
    /// Create an account (staff are bootstrapped this way); the password is read from standard input.
    Create {
        #[arg(long)]
        email: String,
        /// DRIVER, FLEET_MANAGER or OPS.
        #[arg(long, default_value = "driver")]
        role: String,
        #[arg(long)]
        name: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
enum PartnerCommand {
    /// Create token A for a partner that will register with us, and print our versions URL.
    Invite {
        /// A name for operators.
        #[arg(long)]
        name: String,
    },
    /// Register with a partner (the `emsp serve` of this database must be running: the partner
    /// calls our versions endpoint back).
    Register {
        /// The partner's versions URL.
        #[arg(long)]
        versions_url: String,
        /// The token A the partner gave us.
        #[arg(long)]
        token: String,
        /// A name for operators.
        #[arg(long, default_value = "partner")]
        name: String,
    },
    /// Pull locations and tariffs now, with a progress bar.
    Pull {
        /// The partner's id (see `emsp partner list`); every registered partner when absent.
        #[arg(long)]
        partner: Option<String>,
        /// Everything, not only what changed since the last successful pull.
        #[arg(long)]
        full: bool,
    },
    /// How we send our token to a partner: `base64` (OCPI 2.2+), `plain` (2.1.1), or `auto` to
    /// follow the negotiated version. For peers that implement the other form.
    TokenEncoding {
        /// The partner's id (see `emsp partner list`).
        partner: String,
        #[arg(value_parser = ["base64", "plain", "auto"])]
        encoding: String,
    },
    /// Show every partner: status, version, roles, endpoints, last pull, last error.
    List {
        /// One JSON object per partner instead of a table.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, clap::Args)]
struct CpoSimArgs {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:9090")]
    listen: std::net::SocketAddr,
    /// Base URL the EMSP reaches the simulator at (default: http:// + the bound address).
    #[arg(long)]
    public_url: Option<String>,
    /// The CPO's country code and party id.
    #[arg(long, default_value = "NL*SIM")]
    party: String,
    /// Speak OCPI 2.1.1 instead of 2.2.1.
    #[arg(long)]
    ocpi_2_1_1: bool,
    /// The token A to hand to the EMSP (default: a random one, printed).
    #[arg(long)]
    token_a: Option<String>,
    /// Locations to generate (jittered around real charger coordinates), unless --data is given.
    #[arg(long, default_value_t = 500)]
    locations: usize,
    /// OCPI location and tariff JSON files to serve instead of generated data.
    #[arg(long, num_args = 1..)]
    data: Vec<PathBuf>,
    /// EVSE status pushes per second to the registered EMSP (0: none).
    #[arg(long, default_value_t = 1.0)]
    status_rate: f64,
    /// Replay real status changes from this `id;status;parkingsensor_status;timestamp` CSV
    /// (default: the shipped sample of real Cologne status changes).
    #[arg(long)]
    replay: Option<PathBuf>,
    /// Random status changes instead of a replay.
    #[arg(long, conflicts_with = "replay")]
    random_status: bool,
    /// Largest page the simulator serves.
    #[arg(long, default_value_t = 50)]
    page_limit: usize,
    /// Seed of the generator and the random statuses.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Register with this EMSP versions URL (with --token) instead of waiting to be registered.
    #[arg(long, requires = "token")]
    register_with: Option<String>,
    /// The token A the EMSP gave us, for --register-with.
    #[arg(long)]
    token: Option<String>,
}

impl CpoSimArgs {
    fn options(&self) -> anyhow::Result<emsp_cpo_sim::SimOptions> {
        let party = emsp_domain::PartyId::parse(&self.party)?;
        Ok(emsp_cpo_sim::SimOptions {
            listen: self.listen,
            public_url: self.public_url.clone(),
            party: (party.country_code.to_string(), party.party_id.to_string()),
            version: if self.ocpi_2_1_1 { emsp_cpo_sim::SimVersion::V2_1_1 } else { emsp_cpo_sim::SimVersion::V2_2_1 },
            token_a: self.token_a.clone(),
            data: if self.data.is_empty() {
                emsp_cpo_sim::SimData::Generated { locations: self.locations }
            } else {
                emsp_cpo_sim::SimData::Files(self.data.clone())
            },
            status_rate_per_s: self.status_rate,
            status_source: match (&self.replay, self.random_status) {
                (Some(file), _) => emsp_cpo_sim::StatusSource::Replay(file.clone()),
                (None, true) => emsp_cpo_sim::StatusSource::Random,
                (None, false) => emsp_cpo_sim::StatusSource::ReplaySample,
            },
            page_limit: self.page_limit.max(1),
            seed: self.seed,
            ..emsp_cpo_sim::SimOptions::default()
        })
    }
}

#[derive(Debug, Subcommand)]
enum FleetCommand {
    /// Create a fleet with the customer data its invoices need.
    Create(FleetCreateArgs),
    /// List the fleets.
    List,
    /// Add a user (by email) to a fleet as a driver or fleet manager, or change their role.
    AddMember {
        #[arg(long)]
        fleet: String,
        #[arg(long)]
        email: String,
        /// `driver` or `fleet-manager`.
        #[arg(long, default_value = "driver")]
        role: String,
    },
}

#[derive(Debug, clap::Args)]
struct FleetCreateArgs {
    /// The fleet's id; a random one when absent.
    #[arg(long)]
    id: Option<String>,
    /// Legal name, as invoiced.
    #[arg(long)]
    name: String,
    #[arg(long)]
    street: String,
    #[arg(long)]
    postal_code: String,
    #[arg(long)]
    city: String,
    /// ISO 3166-1 alpha-2 (`DE`).
    #[arg(long)]
    country: String,
    #[arg(long)]
    vat_id: Option<String>,
    /// IANA time zone whose calendar months are billed.
    #[arg(long, default_value = "Europe/Berlin")]
    time_zone: String,
    #[arg(long, default_value = "EUR")]
    currency: String,
    #[arg(long)]
    billing_email: String,
    /// Buyer reference (BT-10; the Leitweg-ID of German public buyers).
    #[arg(long)]
    buyer_reference: Option<String>,
}

#[derive(Debug, Subcommand)]
enum InvoiceCommand {
    /// Invoice a month: every stored CDR of each fleet's tokens that ended in it (fleet time zone),
    /// and late ones of up to 12 months before not billed yet. An issued month is closed: rerunning
    /// it bills nothing; `--preview` keeps drafts (replaced by the next run).
    Run {
        /// The month, `YYYY-MM`.
        #[arg(long)]
        period: String,
        /// One fleet; every fleet when absent.
        #[arg(long)]
        fleet: Option<String>,
        /// Save drafts without numbers instead of issuing.
        #[arg(long)]
        preview: bool,
        /// The issue date (default: today, UTC).
        #[arg(long)]
        issue_date: Option<chrono::NaiveDate>,
        /// OCPI CDR JSON files to bill instead of the stored CDRs (all taken as `--fleet`'s).
        #[arg(long, requires = "fleet")]
        cdrs: Vec<PathBuf>,
    },
    /// A fleet's documents, newest first (drafts included).
    List {
        #[arg(long)]
        fleet: String,
        #[arg(long, default_value_t = 50)]
        first: i64,
    },
    /// Mark an issued document paid or void (its contents never change; corrections are credit notes).
    Mark {
        /// The document's id.
        id: String,
        #[arg(value_parser = ["paid", "void"])]
        status: String,
    },
    /// Write a stored document as PDF, CSV or UBL XML.
    Export {
        /// The document's id (as `emsp invoice run` prints it).
        id: String,
        #[arg(long, value_parser = ["pdf", "csv", "xml"])]
        format: String,
        /// Output file.
        #[arg(long)]
        out: PathBuf,
    },
}

#[derive(Debug, Subcommand)]
enum TariffCommand {
    /// Price a CDR's charging periods with our tariff engine and print our totals beside the
    /// CDR's own, as JSON (excl. and incl. VAT, with differences): checks a CPO's bill.
    Price {
        /// OCPI tariff JSON (an object, a list or an envelope; the first tariff is used). Without
        /// it, the tariff the CDR carries is used.
        #[arg(long)]
        tariff: Option<PathBuf>,
        /// OCPI CDR JSON.
        #[arg(long)]
        cdr: PathBuf,
        /// IANA time zone of the location (`Europe/Paris`): tariff hours are local. Default: the
        /// CDR location's time zone when it has one (OCPI 2.1.1), else UTC.
        #[arg(long)]
        time_zone: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
enum BenchCommand {
    /// The search engine on a generated, realistic dataset: bulk load, memory, status updates and
    /// every query kind (p50, p99, throughput); optionally the same queries on PostGIS.
    Search(SearchBenchArgs),
    /// OCPI intake end to end against the CPO simulator: a full pull (locations/s into store and
    /// search) and EVSE status PATCH pushes (throughput, latency, time until visible in search).
    Roaming(RoamingBenchArgs),
    /// The driver API's near-me GraphQL query under load, with the index holding a generated
    /// dataset (default 1,000,000 EVSEs); `--serve` only serves, for wrk or oha.
    Api(ApiBenchArgs),
    /// One large fleet's month: compose, check, issue and render an invoice of N sessions.
    Invoices {
        /// Sessions on the invoice.
        #[arg(long, default_value_t = 10_000)]
        lines: usize,
        /// Run on this PostgreSQL (a schema of its own, dropped afterwards) instead of a temporary SQLite file.
        #[arg(long, value_name = "POSTGRES_URL")]
        database_url: Option<String>,
        /// Print one JSON object instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// OCPI real-time token authorization under load over HTTP (`POST .../tokens/{uid}/authorize`),
    /// on PostgreSQL with `--database-url` (else a temporary SQLite file).
    Authorize(AuthorizeBenchArgs),
}

#[derive(Debug, clap::Args)]
struct AuthorizeBenchArgs {
    /// Tokens in the database (5 % of them blocked).
    #[arg(long, default_value_t = 100_000)]
    tokens: usize,
    /// Run on this PostgreSQL (a schema of its own, dropped afterwards) instead of a temporary SQLite file.
    #[arg(long, value_name = "POSTGRES_URL")]
    database_url: Option<String>,
    /// Seconds of load.
    #[arg(long, default_value_t = 20)]
    duration: u64,
    /// Concurrent clients.
    #[arg(long, default_value_t = 32)]
    concurrency: usize,
    /// Database connections of the server.
    #[arg(long, default_value_t = 16)]
    pool_size: u32,
    /// Print one JSON object instead of a table.
    #[arg(long)]
    json: bool,
    /// Only seed and serve, for an external load generator (`infra/load/authorize.sh`); Ctrl-C stops.
    #[arg(long)]
    serve: bool,
    /// Address to serve on (with `--serve`), e.g. 127.0.0.1:18182.
    #[arg(long, value_name = "ADDR")]
    listen: Option<String>,
}

#[derive(Debug, clap::Args)]
struct ApiBenchArgs {
    #[arg(long, default_value_t = 1_000_000)]
    evses: usize,
    /// Seconds of load.
    #[arg(long, default_value_t = 20)]
    duration: u64,
    /// Concurrent clients.
    #[arg(long, default_value_t = 64)]
    concurrency: usize,
    /// Where to listen (with --serve, an address external tools can reach).
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: String,
    /// Load the index and serve until Ctrl-C, without generating load.
    #[arg(long)]
    serve: bool,
    /// Sort the near-me query by PRICE (20 kWh reference session) instead of distance.
    #[arg(long)]
    price: bool,
    /// HTTP worker threads of the server (default: one per CPU).
    #[arg(long)]
    workers: Option<usize>,
    /// Print one JSON object instead of a table.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, clap::Args)]
struct RoamingBenchArgs {
    /// Locations the simulator generates and we pull.
    #[arg(long, default_value_t = 100_000)]
    locations: usize,
    /// Page size the simulator serves.
    #[arg(long, default_value_t = 500)]
    page_limit: usize,
    /// Run on this PostgreSQL (a schema of its own, dropped afterwards) instead of a temporary SQLite file.
    #[arg(long, value_name = "POSTGRES_URL")]
    database_url: Option<String>,
    /// Status PATCHes to push.
    #[arg(long, default_value_t = 20_000)]
    pushes: usize,
    /// Concurrent pushing clients.
    #[arg(long, default_value_t = 32)]
    concurrency: usize,
    /// Print one JSON object instead of a table.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, clap::Args)]
struct SearchBenchArgs {
    /// EVSEs to generate (jittered around real charger coordinates shipped with the project).
    #[arg(long, default_value_t = 1_000_000)]
    evses: usize,
    /// Seed of the dataset and the queries: the same seed gives the same data.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Queries timed per kind.
    #[arg(long, default_value_t = 2_000)]
    queries: usize,
    /// Also load the data into PostGIS at this `postgres://` URL and run the same queries there.
    #[arg(long, value_name = "POSTGRES_URL")]
    postgis: Option<String>,
    /// Print one JSON object instead of a table.
    #[arg(long)]
    json: bool,
}

/// Parses the command line, runs the command and turns failures into a message and exit code 1.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!(error = %format!("{error:#}"), "exiting");
            say(&format!("emsp: {error:#}"));
            ExitCode::FAILURE
        }
    }
}

/// A line for the operator on stderr. A closed stderr (a supervisor that stopped reading) must not
/// take the server down, so write errors are ignored, unlike `eprintln!`, which panics.
pub(crate) fn say(text: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "{text}");
}

fn run(cli: Cli) -> anyhow::Result<()> {
    let mut config = Config::from_env(cli.config.as_deref())?;
    // A server logs to stdout for its supervisor; one-shot commands keep stdout for their output.
    let logs_to_stdout = matches!(cli.command, Command::Serve | Command::Demo);
    telemetry::init(&config.log, logs_to_stdout)?;
    let runtime =
        tokio::runtime::Builder::new_multi_thread().enable_all().build().context("cannot start the runtime")?;
    match cli.command {
        Command::Serve => runtime.block_on(serve(config)),
        Command::Migrate => runtime.block_on(migrate(config)),
        Command::Demo => {
            prepare_demo(&mut config)?;
            runtime.block_on(crate::demo::run(config))
        }
        Command::CpoSim(args) => runtime.block_on(cpo_sim(&args)),
        Command::Config => {
            print_config(&config)?;
            Ok(())
        }
        Command::Bench { what: BenchCommand::Search(args) } => bench_search(&args),
        Command::Bench { what: BenchCommand::Roaming(args) } => runtime.block_on(bench_roaming(&args)),
        Command::Bench { what: BenchCommand::Api(args) } => runtime.block_on(bench_api(&args)),
        Command::Bench { what: BenchCommand::Invoices { lines, database_url, json } } => {
            let report = crate::bench_invoices::run(lines, database_url.as_deref())?;
            if json {
                println!("{}", serde_json::to_string(&report)?);
            } else {
                println!("{}", report.to_table());
            }
            Ok(())
        }
        Command::Bench { what: BenchCommand::Authorize(args) } => runtime.block_on(bench_authorize(&args)),
        Command::Partner { what } => runtime.block_on(partner(config, what)),
        Command::User { what: UserCommand::Create { email, role, name } } => {
            runtime.block_on(create_user(config, &email, &role, name.as_deref()))
        }
        Command::Import { files, party } => runtime.block_on(import(config, files, party)),
        Command::Fleet { what } => runtime.block_on(fleet(config, what)),
        Command::Invoice { what } => runtime.block_on(invoice(config, what)),
        Command::Tariff { what: TariffCommand::Price { tariff, cdr, time_zone } } => {
            price_cdr(tariff.as_deref(), &cdr, time_zone.as_deref())
        }
    }
}

async fn create_user(config: Config, email: &str, role: &str, name: Option<&str>) -> anyhow::Result<()> {
    let role = emsp_accounts::Role::parse(role)
        .with_context(|| format!("{role:?} is not a role: DRIVER, FLEET_MANAGER or OPS"))?;
    let mut password = String::new();
    std::io::stdin().read_line(&mut password).context("cannot read the password from standard input")?;
    let password = password.trim_end_matches(['\n', '\r']).to_owned();
    let store = app::open_store(&config.database)?;
    app::wait_for_database(&store, &config.database).await?;
    let (email, name) = (email.to_owned(), name.map(str::to_owned));
    let user = tokio::task::spawn_blocking(move || -> anyhow::Result<emsp_accounts::User> {
        store.migrate()?;
        let accounts = app::accounts(&config, &store)?;
        Ok(accounts.create_user(&email, &password, name.as_deref(), role)?)
    })
    .await??;
    println!("created {} {} ({})", user.role.as_str(), user.email, user.id);
    Ok(())
}

/// Opens and migrates the store for a one-shot command.
async fn migrated_store(config: &Config) -> anyhow::Result<emsp_store::Store> {
    let store = app::open_store(&config.database)?;
    app::wait_for_database(&store, &config.database).await?;
    let migrating = store.clone();
    tokio::task::spawn_blocking(move || migrating.migrate()).await.context("migration panicked")??;
    Ok(store)
}

async fn fleet(config: Config, command: FleetCommand) -> anyhow::Result<()> {
    let store = migrated_store(&config).await?;
    match command {
        FleetCommand::Create(args) => {
            let currency = emsp_domain::Currency::new(&args.currency)?;
            let customer = emsp_invoicing::Customer {
                id: args.id.unwrap_or_else(|| format!("fleet_{}", uuid::Uuid::new_v4().simple())),
                name: args.name,
                address: emsp_invoicing::Address {
                    street: args.street,
                    additional: None,
                    postal_code: args.postal_code,
                    city: args.city,
                    country: args.country.to_ascii_uppercase(),
                },
                vat_id: args.vat_id,
                time_zone: args.time_zone,
                currency,
                billing_email: args.billing_email,
                buyer_reference: args.buyer_reference,
            };
            let created = tokio::task::spawn_blocking(move || store.create_fleet(&customer)).await??;
            println!("created fleet {} ({})", created.customer.id, created.customer.name);
        }
        FleetCommand::List => {
            let fleets = tokio::task::spawn_blocking(move || store.list_fleets()).await??;
            for fleet in fleets {
                let c = fleet.customer;
                println!("{}\t{}\t{}\t{}\t{}", c.id, c.name, c.time_zone, c.currency, c.billing_email);
            }
        }
        FleetCommand::AddMember { fleet, email, role } => {
            let role = match role.to_ascii_lowercase().replace('_', "-").as_str() {
                "driver" => emsp_store::FleetRole::Driver,
                "fleet-manager" => emsp_store::FleetRole::FleetManager,
                other => anyhow::bail!("{other:?} is not a fleet role: driver or fleet-manager"),
            };
            let (fleet_id, user_email) = (fleet.clone(), email.clone());
            tokio::task::spawn_blocking(move || -> anyhow::Result<()> {
                let user = store.find_user_by_email(&email)?.with_context(|| format!("no user with email {email}"))?;
                store.get_fleet(&fleet)?.with_context(|| format!("no fleet {fleet}"))?;
                store.set_fleet_member(&fleet, &user.id, role)?;
                Ok(())
            })
            .await??;
            println!("{user_email} is a {} of fleet {fleet_id}", role.as_str());
        }
    }
    Ok(())
}

async fn invoice(config: Config, command: InvoiceCommand) -> anyhow::Result<()> {
    let store = migrated_store(&config).await?;
    match command {
        InvoiceCommand::Run { period, fleet, preview, issue_date, cdrs } => {
            let supplier = config
                .invoicing
                .supplier
                .clone()
                .context("no supplier configured: set [invoicing.supplier] in the configuration file")?;
            let period: emsp_invoicing::BillingPeriod = period.parse()?;
            let issue_date = issue_date.unwrap_or_else(|| chrono::Utc::now().date_naive());
            let mode = if preview { emsp_store::RunMode::Preview } else { emsp_store::RunMode::Issue };
            let runs = tokio::task::spawn_blocking(move || -> anyhow::Result<Vec<crate::invoicing::FleetRun>> {
                let fleets = match &fleet {
                    Some(id) => vec![store.get_fleet(id)?.with_context(|| format!("no fleet {id}"))?],
                    None => store.list_fleets()?,
                };
                // The stored CDRs, or an OCPI CDR export taken as `--fleet`'s.
                let source: Box<dyn emsp_invoicing::CdrSource> = match fleet.filter(|_| !cdrs.is_empty()) {
                    Some(fleet_id) => Box::new(crate::invoicing::OcpiFileCdrs::read(&fleet_id, &cdrs)?),
                    None => Box::new(crate::invoicing::StoredCdrs::new(store.clone())),
                };
                let mut runs = Vec::new();
                for fleet in fleets {
                    let run = crate::invoicing::run_fleet(
                        &store,
                        &supplier,
                        &fleet.customer,
                        period,
                        issue_date,
                        mode,
                        source.as_ref(),
                    )?;
                    runs.push(run);
                }
                Ok(runs)
            })
            .await??;
            for run in runs {
                if run.closed {
                    println!(
                        "{}: {period} is already invoiced; later CDRs go on the next month's invoice",
                        run.fleet_id
                    );
                } else if run.documents.is_empty() {
                    println!("{}: nothing to invoice", run.fleet_id);
                }
                for record in &run.documents {
                    let d = &record.document;
                    println!(
                        "{}\t{}\t{}\t{}\t{} lines\tnet {}\tVAT {}\ttotal {} {}\tid {}",
                        run.fleet_id,
                        d.kind.as_str(),
                        d.display_number(),
                        record.status.as_str(),
                        d.lines.len(),
                        d.totals.net,
                        d.totals.vat,
                        d.totals.gross,
                        d.currency,
                        record.id
                    );
                }
                for skipped in &run.skipped {
                    println!("{}: skipped {}: {}", run.fleet_id, skipped.cdr_id, skipped.reason);
                }
            }
        }
        InvoiceCommand::List { fleet, first } => {
            let records = tokio::task::spawn_blocking(move || store.list_invoices(&fleet, first, None, true)).await??;
            for record in records {
                let d = &record.document;
                println!(
                    "{}\t{}\t{}\t{}\t{}\t{} {}",
                    record.id,
                    d.kind.as_str(),
                    d.display_number(),
                    d.period,
                    record.status.as_str(),
                    d.totals.gross,
                    d.currency
                );
            }
        }
        InvoiceCommand::Mark { id, status } => {
            let status = if status == "paid" {
                emsp_invoicing::DocumentStatus::Paid
            } else {
                emsp_invoicing::DocumentStatus::Void
            };
            let marking = id.clone();
            let changed = tokio::task::spawn_blocking(move || store.set_invoice_status(&marking, status)).await??;
            if !changed {
                anyhow::bail!("{id} is not an issued document");
            }
            println!("{id} is {}", status.as_str());
        }
        InvoiceCommand::Export { id, format, out } => {
            let record =
                tokio::task::spawn_blocking(move || store.get_invoice(&id)).await??.context("no such document")?;
            let bytes = match format.as_str() {
                "pdf" => emsp_invoicing::render_pdf(&record.document)?,
                "csv" => emsp_invoicing::render_csv(&record.document)?,
                _ => emsp_invoicing::render_ubl(&record.document)?,
            };
            std::fs::write(&out, bytes).with_context(|| format!("cannot write {}", out.display()))?;
            println!("wrote {} {} to {}", record.document.display_number(), format, out.display());
        }
    }
    Ok(())
}

async fn partner(config: Config, command: PartnerCommand) -> anyhow::Result<()> {
    let store = app::open_store(&config.database)?;
    app::wait_for_database(&store, &config.database).await?;
    let migrating = store.clone();
    tokio::task::spawn_blocking(move || migrating.migrate()).await.context("migration panicked")??;
    match command {
        PartnerCommand::Invite { name } => {
            let inviting = store.clone();
            let (partner, token_a) =
                tokio::task::spawn_blocking(move || emsp_roaming::invite_partner(&inviting, &name)).await??;
            println!("partner {} ({}) invited", partner.id, partner.name);
            println!("give the partner:");
            println!("  versions URL: {}/ocpi/versions", config.server.public_url());
            println!("  token A:      {token_a}");
        }
        PartnerCommand::Register { versions_url, token, name } => {
            let roaming = app::roaming(&config, &store)?;
            let outcome = emsp_roaming::register_with_partner(&roaming, &name, &versions_url, &token).await?;
            println!("registered with partner {} using OCPI {}", outcome.partner_id, outcome.version);
            for party in &outcome.parties {
                println!("  party {}*{} ({})", party.country_code, party.party_id, party.role);
            }
            for endpoint in &outcome.endpoints {
                println!("  {} {} {}", endpoint.identifier, endpoint.role.as_deref().unwrap_or("-"), endpoint.url);
            }
        }
        PartnerCommand::Pull { partner, full } => {
            let roaming = app::roaming(&config, &store)?;
            let ids = match partner {
                Some(id) => vec![id],
                None => {
                    let listing = store.clone();
                    tokio::task::spawn_blocking(move || listing.list_partners())
                        .await??
                        .into_iter()
                        .filter(|p| p.status == emsp_store::PartnerStatus::Registered)
                        .map(|p| p.id)
                        .collect()
                }
            };
            let options = emsp_roaming::pull::PullOptions { full, ..Default::default() };
            for id in ids {
                let bar = indicatif::ProgressBar::new_spinner();
                bar.set_style(
                    indicatif::ProgressStyle::with_template("{spinner} {prefix} {msg} [{elapsed_precise}]")
                        .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner()),
                );
                bar.set_prefix(id.clone());
                let shown = bar.clone();
                let progress = move |p: emsp_roaming::pull::Progress| {
                    let total = p.total_count.map(|t| format!(" of {t}")).unwrap_or_default();
                    shown.set_message(format!(
                        "{}: page {}, {} objects{total}",
                        p.module.identifier(),
                        p.pages,
                        p.received
                    ));
                    shown.tick();
                };
                let result = emsp_roaming::pull::pull_partner(&roaming, &id, &options, &progress).await;
                bar.finish_and_clear();
                let report = result?;
                for (module, figures) in [("locations", &report.locations), ("tariffs", &report.tariffs)] {
                    if let Some(f) = figures {
                        println!(
                            "{id} {module}: {} pages, {} received, {} new, {} updated, {} unchanged, {} skipped, {} rejected{}",
                            f.pages,
                            f.received,
                            f.created,
                            f.updated,
                            f.unchanged,
                            f.skipped,
                            f.rejected,
                            f.cut_short.as_ref().map(|why| format!(" (cut short: {why})")).unwrap_or_default()
                        );
                    }
                }
                println!("{id}: pulled in {:.1} s", report.elapsed.as_secs_f64());
            }
        }
        PartnerCommand::TokenEncoding { partner, encoding } => {
            let setting = if encoding == "auto" { None } else { Some(encoding.clone()) };
            let updating = store.clone();
            let id = partner.clone();
            let found =
                tokio::task::spawn_blocking(move || updating.set_token_encoding(&id, setting.as_deref())).await??;
            anyhow::ensure!(found, "no partner {partner}");
            println!("partner {partner}: token encoding {encoding}");
        }
        PartnerCommand::List { json } => {
            let listing = store.clone();
            let partners = tokio::task::spawn_blocking(move || -> anyhow::Result<Vec<serde_json::Value>> {
                let mut rows = Vec::new();
                for partner in listing.list_partners()? {
                    let parties = listing.partner_parties(&partner.id)?;
                    rows.push(serde_json::json!({
                        "id": partner.id,
                        "name": partner.name,
                        "status": partner.status.as_str(),
                        "version": partner.version,
                        "versions_url": partner.versions_url,
                        "parties": parties.iter().map(|p| serde_json::json!({
                            "party": format!("{}*{}", p.country_code, p.party_id),
                            "role": p.role,
                            "status": p.status,
                        })).collect::<Vec<_>>(),
                        "endpoints": partner.endpoints.iter().map(|e| serde_json::json!({
                            "identifier": e.identifier, "role": e.role, "url": e.url,
                        })).collect::<Vec<_>>(),
                        "last_pull_at": partner.last_pull_at.map(|t| t.and_utc().to_rfc3339()),
                        "last_error": partner.last_error,
                        "last_error_at": partner.last_error_at.map(|t| t.and_utc().to_rfc3339()),
                        "token_encoding": partner.token_encoding.as_deref().unwrap_or("auto"),
                    }));
                }
                Ok(rows)
            })
            .await??;
            print_partners(&partners, json);
        }
    }
    Ok(())
}

async fn import(config: Config, files: Vec<PathBuf>, party: Option<String>) -> anyhow::Result<()> {
    let store = app::open_store(&config.database)?;
    app::wait_for_database(&store, &config.database).await?;
    let default_party = party.as_deref().map(emsp_domain::PartyId::parse).transpose()?;
    tokio::task::spawn_blocking(move || -> anyhow::Result<()> {
        store.migrate()?;
        let options = emsp_ocpi::ImportOptions { default_party, version: None };
        for file in files {
            let bytes = std::fs::read(&file).with_context(|| format!("cannot read {}", file.display()))?;
            let name = file.display();
            let (mut stored, mut unchanged, mut rejected) = (0usize, 0usize, 0usize);
            let (skipped, warnings, kind) = match emsp_ocpi::detect_kind(&bytes) {
                emsp_ocpi::FeedKind::Tariffs => {
                    let feed = emsp_ocpi::parse_tariffs(&bytes, &options).with_context(|| format!("{name}"))?;
                    for tariff in &feed.items {
                        match store.upsert_tariff(tariff, None) {
                            Ok(emsp_store::WriteOutcome::Unchanged) => unchanged += 1,
                            Ok(_) => stored += 1,
                            Err(error) => {
                                rejected += 1;
                                tracing::warn!(file = %name, tariff = %tariff.key(), %error, "tariff rejected");
                            }
                        }
                    }
                    (feed.skipped, feed.warnings, "tariffs")
                }
                emsp_ocpi::FeedKind::Locations => {
                    let feed = emsp_ocpi::parse_locations(&bytes, &options).with_context(|| format!("{name}"))?;
                    for location in &feed.items {
                        match store.upsert_location(location, None) {
                            Ok(emsp_store::WriteOutcome::Unchanged) => unchanged += 1,
                            Ok(_) => stored += 1,
                            Err(error) => {
                                rejected += 1;
                                tracing::warn!(file = %name, location = %location.key(), %error, "location rejected");
                            }
                        }
                    }
                    (feed.skipped, feed.warnings, "locations")
                }
                emsp_ocpi::FeedKind::Cdrs | emsp_ocpi::FeedKind::Unknown => {
                    anyhow::bail!("{name}: not an OCPI location or tariff file");
                }
            };
            println!(
                "{name}: {kind}: {stored} stored, {unchanged} unchanged, {} skipped, {rejected} rejected, {} warnings",
                skipped.len(),
                warnings.len()
            );
            for skip in skipped.iter().take(10) {
                println!(
                    "  skipped [{}] {}: {} ({})",
                    skip.index,
                    skip.id.as_deref().unwrap_or("?"),
                    skip.reason,
                    skip.path
                );
            }
        }
        Ok(())
    })
    .await??;
    Ok(())
}

fn price_cdr(tariff_file: Option<&Path>, cdr_file: &Path, time_zone: Option<&str>) -> anyhow::Result<()> {
    let options = emsp_ocpi::ImportOptions::default();
    let cdr_bytes = std::fs::read(cdr_file).with_context(|| format!("cannot read {}", cdr_file.display()))?;
    let mut cdrs = emsp_ocpi::parse_cdrs(&cdr_bytes, &options).with_context(|| format!("{}", cdr_file.display()))?;
    if let Some(skipped) = cdrs.skipped.first() {
        anyhow::bail!("{}: the CDR cannot be read: {skipped}", cdr_file.display());
    }
    let cdr = cdrs.items.pop().with_context(|| format!("{}: no CDR in the file", cdr_file.display()))?;
    let tariff = match tariff_file {
        Some(file) => {
            let bytes = std::fs::read(file).with_context(|| format!("cannot read {}", file.display()))?;
            let mut tariffs =
                emsp_ocpi::parse_tariffs(&bytes, &options).with_context(|| format!("{}", file.display()))?;
            if let Some(skipped) = tariffs.skipped.first() {
                anyhow::bail!("{}: the tariff cannot be read: {skipped}", file.display());
            }
            if tariffs.items.is_empty() {
                anyhow::bail!("{}: no tariff in the file", file.display());
            }
            tariffs.items.swap_remove(0)
        }
        None => cdr.tariffs.first().cloned().context("the CDR carries no tariff: pass --tariff")?,
    };
    let (zone_name, assumed) = match time_zone {
        Some(zone) => (zone.to_owned(), false),
        None => match cdr.cdr_location.get("time_zone").and_then(serde_json::Value::as_str) {
            Some(zone) => (zone.to_owned(), false),
            None => ("UTC".to_owned(), true),
        },
    };
    let zone: chrono_tz::Tz =
        zone_name.parse().map_err(|_| anyhow::anyhow!("{zone_name:?} is not an IANA time zone"))?;
    if assumed {
        say("emsp: the CDR names no time zone; pricing in UTC (pass --time-zone)");
    }
    let check = emsp_domain::pricing::check_cdr(&tariff, &cdr, zone)?;
    let mut output = serde_json::to_value(&check)?;
    if let Some(object) = output.as_object_mut() {
        object.insert("time_zone".into(), serde_json::Value::String(zone_name));
    }
    println!("{}", serde_json::to_string_pretty(&output)?);
    Ok(())
}

fn print_partners(partners: &[serde_json::Value], json: bool) {
    if json {
        for partner in partners {
            println!("{partner}");
        }
        return;
    }
    if partners.is_empty() {
        println!("no partners; invite one with `emsp partner invite --name NAME`");
        return;
    }
    println!(
        "{:<36}  {:<20}  {:<12}  {:<7}  {:<24}  {:>9}  {:<25}  last error",
        "id", "name", "status", "version", "parties", "endpoints", "last pull"
    );
    for partner in partners {
        let text = |key: &str| partner[key].as_str().unwrap_or("-").to_owned();
        let parties: Vec<String> = partner["parties"]
            .as_array()
            .map(|list| {
                list.iter()
                    .map(|p| format!("{} {}", p["party"].as_str().unwrap_or("?"), p["role"].as_str().unwrap_or("?")))
                    .collect()
            })
            .unwrap_or_default();
        let endpoints = partner["endpoints"].as_array().map_or(0, Vec::len);
        println!(
            "{:<36}  {:<20}  {:<12}  {:<7}  {:<24}  {:>9}  {:<25}  {}",
            text("id"),
            text("name"),
            text("status"),
            text("version"),
            if parties.is_empty() { "-".to_owned() } else { parties.join(", ") },
            endpoints,
            text("last_pull_at"),
            text("last_error")
        );
    }
}

async fn bench_api(args: &ApiBenchArgs) -> anyhow::Result<()> {
    let options = crate::bench_api::ApiBenchOptions {
        evses: args.evses,
        duration: std::time::Duration::from_secs(args.duration.max(1)),
        concurrency: args.concurrency.max(1),
        listen: args.listen.clone(),
        serve_only: args.serve,
        price_sort: args.price,
        workers: args.workers,
    };
    if let Some(report) = crate::bench_api::run(&options).await? {
        if args.json {
            println!("{}", serde_json::to_string(&report)?);
        } else {
            println!("{}", report.to_table());
        }
    }
    Ok(())
}

async fn bench_authorize(args: &AuthorizeBenchArgs) -> anyhow::Result<()> {
    let options = crate::bench_authorize::AuthorizeBenchOptions {
        tokens: args.tokens,
        database_url: args.database_url.clone(),
        duration: std::time::Duration::from_secs(args.duration.max(1)),
        concurrency: args.concurrency.max(1),
        pool_size: args.pool_size.max(1),
        serve_only: args.serve,
        listen: args.listen.clone(),
    };
    let Some(report) = crate::bench_authorize::run(&options).await? else { return Ok(()) };
    if args.json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        println!("{}", report.to_table());
    }
    Ok(())
}

async fn bench_roaming(args: &RoamingBenchArgs) -> anyhow::Result<()> {
    let options = crate::bench_roaming::RoamingBenchOptions {
        locations: args.locations,
        database_url: args.database_url.clone(),
        pushes: args.pushes,
        concurrency: args.concurrency,
        page_limit: args.page_limit,
    };
    let report = crate::bench_roaming::run(&options).await?;
    if args.json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        println!("{}", report.to_table());
    }
    Ok(())
}

fn bench_search(args: &SearchBenchArgs) -> anyhow::Result<()> {
    let options = emsp_bench::SearchBenchOptions {
        evses: args.evses,
        seed: args.seed,
        postgis_url: args.postgis.clone(),
        queries_per_kind: args.queries,
    };
    let report = emsp_bench::run_search_bench(&options)?;
    if args.json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        println!("{}", report.to_table());
    }
    Ok(())
}

pub(crate) async fn serve(config: Config) -> anyhow::Result<()> {
    let server = app::start(config, RunOptions::default()).await?;
    let banner = format!(
        "emsp is listening on http://{addr} (public URL {url})\n  health:  {url}/health\n  ready:   {url}/ready\n  metrics: {url}/metrics",
        addr = server.addr,
        url = server.public_url
    );
    say(&banner);
    server.wait().await
}

async fn migrate(config: Config) -> anyhow::Result<()> {
    let store = app::open_store(&config.database)?;
    app::wait_for_database(&store, &config.database).await?;
    let applied = tokio::task::spawn_blocking(move || store.migrate()).await.context("migration panicked")??;
    if applied.is_empty() {
        println!("database is up to date");
    }
    for name in applied {
        println!("applied {name}");
    }
    Ok(())
}

async fn cpo_sim(args: &CpoSimArgs) -> anyhow::Result<()> {
    let sim = emsp_cpo_sim::start(args.options()?).await?;
    say(&format!("simulated CPO {} listening on http://{}", args.party, sim.addr));
    say(&format!("  versions URL: {}", sim.versions_url));
    say(&format!("  token A:      {}", sim.token_a));
    say("register an EMSP with: emsp partner register --versions-url URL --token TOKEN_A");
    if let (Some(url), Some(token)) = (&args.register_with, &args.token) {
        sim.register_with(url, token).await?;
        say(&format!("registered with {url}"));
    }
    wait_for_stop_signal().await;
    sim.stop().await;
    Ok(())
}

/// Ctrl-C or SIGTERM.
pub(crate) async fn wait_for_stop_signal() {
    let mut terminate = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(signal) => signal,
        Err(error) => {
            tracing::warn!(%error, "cannot listen for SIGTERM; Ctrl-C still stops");
            let _ = tokio::signal::ctrl_c().await;
            return;
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = terminate.recv() => {}
    }
}

/// The demo runs on its own SQLite file in the data folder, made anew at every start so that it
/// always shows the same thing, whatever `DATABASE_URL` says; it keeps its own secret key there
/// when `EMSP_SECRET_KEY` is not set (a demo has no secrets worth protecting).
fn prepare_demo(config: &mut Config) -> anyhow::Result<()> {
    std::fs::create_dir_all(&config.database.data_dir)
        .with_context(|| format!("cannot create data folder {}", config.database.data_dir.display()))?;
    let file = config.database.data_dir.join("demo.sqlite");
    for suffix in ["", "-wal", "-shm"] {
        let path = PathBuf::from(format!("{}{suffix}", file.display()));
        if path.exists() {
            std::fs::remove_file(&path).with_context(|| format!("cannot reset {}", path.display()))?;
        }
    }
    config.database.url = Some(format!("sqlite://{}", file.display()));
    if config.database.secret_key.is_none() {
        config.database.secret_key = Some(demo_secret_key(&config.database.data_dir)?);
    }
    Ok(())
}

fn demo_secret_key(data_dir: &Path) -> anyhow::Result<String> {
    let path = data_dir.join("demo-secret.key");
    if let Ok(key) = std::fs::read_to_string(&path) {
        return Ok(key.trim().to_owned());
    }
    let key = TokenCipher::generate_key();
    std::fs::write(&path, &key).with_context(|| format!("cannot write {}", path.display()))?;
    Ok(key)
}

fn print_config(config: &Config) -> anyhow::Result<()> {
    let mut shown = config.clone();
    let database_url = shown.database.url.take().map_or_else(
        || format!("sqlite://{} (default)", config.database.default_sqlite_path().display()),
        |url| emsp_store::DatabaseUrl::parse(&url).map_or_else(|e| format!("invalid: {e}"), |url| url.redacted()),
    );
    let secret = if shown.database.secret_key.take().is_some() { "set" } else { "not set" };
    println!("{}", toml::to_string_pretty(&shown).context("cannot render the configuration")?);
    println!("# DATABASE_URL = {database_url}");
    println!("# EMSP_SECRET_KEY is {secret}");
    Ok(())
}
