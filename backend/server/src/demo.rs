//! `emsp demo`: the whole product on one machine. The server on SQLite, two simulated CPOs on
//! loopback (one OCPI 2.2.1 replaying real status changes, one OCPI 2.1.1 with random ones), the
//! credentials handshake with each, a full pull of their locations and tariffs, and status pushes
//! streaming into search until Ctrl-C.

use std::time::Duration;

use emsp_cpo_sim::{SimData, SimOptions, SimVersion, StatusSource};
use emsp_roaming::pull::{PullOptions, pull_partner};

use crate::app::{self, RunOptions};
use crate::cli::say;
use crate::config::Config;

struct DemoCpo {
    name: &'static str,
    party: (&'static str, &'static str),
    version: SimVersion,
    locations: usize,
    status_rate_per_s: f64,
    status_source: StatusSource,
}

const CPOS: [DemoCpo; 2] = [
    DemoCpo {
        name: "Simulated CPO NL*SIM (OCPI 2.2.1)",
        party: ("NL", "SIM"),
        version: SimVersion::V2_2_1,
        locations: 2_000,
        status_rate_per_s: 5.0,
        status_source: StatusSource::ReplaySample,
    },
    DemoCpo {
        name: "Simulated CPO DE*OLD (OCPI 2.1.1)",
        party: ("DE", "OLD"),
        version: SimVersion::V2_1_1,
        locations: 500,
        status_rate_per_s: 1.0,
        status_source: StatusSource::Random,
    },
];

pub async fn run(mut config: Config) -> anyhow::Result<()> {
    let data_dir = config.database.data_dir.clone();
    // The demo pulls on its own at start; a scheduled pull every minute shows incremental pulls.
    config.ocpi.pull_interval_s = 60;
    config.api.graphiql = true;
    config.api.introspection = true;
    let server = app::start(config, RunOptions::default()).await?;
    say(&format!("emsp is listening on http://{} (public URL {})", server.addr, server.public_url));

    let mut sims = Vec::new();
    for (seed, cpo) in (1u64..).zip(CPOS.iter()) {
        let sim = emsp_cpo_sim::start(SimOptions {
            party: (cpo.party.0.to_owned(), cpo.party.1.to_owned()),
            version: cpo.version,
            data: SimData::Generated { locations: cpo.locations },
            status_rate_per_s: cpo.status_rate_per_s,
            status_source: cpo.status_source.clone(),
            seed,
            ..SimOptions::default()
        })
        .await?;
        say(&format!("{} at {}", cpo.name, sim.versions_url));
        let outcome =
            emsp_roaming::register_with_partner(&server.roaming, cpo.name, &sim.versions_url, &sim.token_a).await?;
        say(&format!("  registered: OCPI {}, {} endpoints", outcome.version, outcome.endpoints.len()));
        let report = pull_partner(
            &server.roaming,
            &outcome.partner_id,
            &PullOptions { full: true, ..Default::default() },
            &|_| {},
        )
        .await?;
        if let Some(locations) = &report.locations {
            say(&format!(
                "  pulled {} locations in {} pages ({:.1} s)",
                locations.created,
                locations.pages,
                report.elapsed.as_secs_f64()
            ));
        }
        if let Some(tariffs) = &report.tariffs {
            say(&format!("  pulled {} tariffs", tariffs.created));
        }
        sims.push(sim);
    }

    // Wait for the index to take in what was pulled before telling the user it is there.
    for _ in 0..100 {
        if server.index.is_ready() && server.index.stats().locations >= CPOS.iter().map(|c| c.locations).sum::<usize>()
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let stats = server.index.stats();
    let url = &server.public_url;
    let examples = [
        "{ chargers(near: {latitude: 52.37, longitude: 4.90}, radiusMeters: 20000, filter: {powerType: DC, minAvailable: 1}, first: 5) { totalCount edges { node { id name city distanceMeters maxPowerKw availability { available total } } } } }",
        "{ chargerClusters(bbox: {south: 35, west: -10, north: 60, east: 30}, zoom: 5) { count centroid { latitude longitude } availability { available total } } }",
        "{ chargers(text: \"market\", sort: POWER, first: 3) { edges { node { name evses { evseId status connectors { standard maxPowerKw } } tariffs { summary } } } } }",
    ];
    let mut text = format!(
        "\nthe demo is up: {} locations with {} EVSEs in search; EVSE statuses stream in from the simulators\n\n\
         \x20 GraphQL:       {url}/graphql   (open it in a browser for GraphiQL)\n\
         \x20 health:        {url}/health\n\
         \x20 ready:         {url}/ready\n\
         \x20 metrics:       {url}/metrics\n\
         \x20 OCPI versions: {url}/ocpi/versions   (partners only: needs a partner token)\n\
         \x20 partners:      DATABASE_URL=sqlite://{}/demo.sqlite emsp partner list\n\nexample queries:\n",
        stats.locations,
        stats.evses,
        data_dir.display()
    );
    for example in examples {
        text.push_str(&format!("  {example}\n"));
    }
    let body = serde_json::json!({ "query": examples[0] }).to_string();
    text.push_str(&format!("\nfrom a shell:\n  curl -s {url}/graphql -H 'Content-Type: application/json' -d '{body}'\n\nCtrl-C stops the demo"));
    say(&text);
    let result = server.wait().await;
    for sim in sims {
        sim.stop().await;
    }
    result
}
