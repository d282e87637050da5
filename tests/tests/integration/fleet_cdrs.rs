//! Fleet invoices from the CDRs CPOs send: CDRs arrive over OCPI from a registered CPO, the
//! monthly run (what `emsp invoice run` does) bills them from the store with the right totals, a
//! CDR that arrives after its month was issued goes on the next month's invoice once and leaves the
//! issued one unchanged, and fleet managers see their own fleet's tokens, sessions and invoices
//! and nothing of another fleet's.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use chrono::{DateTime, NaiveDate, Utc};
use emsp_cpo_sim::{RunningSim, SimData, SimOptions};
use emsp_domain::{PartyId, Token, TokenType, TokenUid, WhitelistType};
use emsp_invoicing::{BillingPeriod, DocumentKind};
use emsp_roaming::register_with_partner;
use emsp_server::invoicing::{FleetRun, StoredCdrs, run_fleet};
use emsp_store::{FleetRole, RunMode, Store, TokenRecord};
use emsp_tests::{TestApp, TestBackend};
use serde_json::{Value, json};

use super::invoices::{code, fleet, gql, login, supplier};

const PASSWORD: &str = "a long enough password";

fn card(uid: &str, contract_id: &str, fleet_id: &str, user_id: &str) -> TokenRecord {
    let at = Utc::now();
    TokenRecord {
        token: Token {
            party: PartyId::parse("NL*EMS").unwrap(),
            uid: TokenUid::new(uid).unwrap(),
            token_type: TokenType::Rfid,
            contract_id: contract_id.into(),
            visual_number: Some(format!("EMS {uid}")),
            issuer: "Open EMSP".into(),
            group_id: None,
            valid: true,
            whitelist: WhitelistType::Allowed,
            language: None,
            default_profile_type: None,
            energy_contract: None,
            expires_at: None,
            blocked_reason: None,
            last_updated: at,
        },
        user_id: Some(user_id.into()),
        fleet_id: Some(fleet_id.into()),
        created_at: at,
    }
}

/// Fleets A (drivers Ada and Bob, cards A1 and A2) and B (card B1), a manager each, and ops.
fn people_and_cards(store: &Store) {
    let accounts = emsp_accounts::Accounts::new(store.clone(), emsp_accounts::AuthConfig::default()).unwrap();
    let boss_a = accounts.create_user("boss@a.example", PASSWORD, None, emsp_accounts::Role::FleetManager).unwrap();
    let boss_b = accounts.create_user("boss@b.example", PASSWORD, None, emsp_accounts::Role::FleetManager).unwrap();
    let ada = accounts.create_user("ada@a.example", PASSWORD, Some("Ada"), emsp_accounts::Role::Driver).unwrap();
    let bob = accounts.create_user("bob@a.example", PASSWORD, Some("Bob"), emsp_accounts::Role::Driver).unwrap();
    let bea = accounts.create_user("bea@b.example", PASSWORD, Some("Bea"), emsp_accounts::Role::Driver).unwrap();
    accounts.create_user("ops@emsp.example", PASSWORD, None, emsp_accounts::Role::Ops).unwrap();
    for (id, boss, drivers) in [("fleet-a", &boss_a, vec![&ada, &bob]), ("fleet-b", &boss_b, vec![&bea])] {
        store.create_fleet(&fleet(id)).unwrap();
        store.set_fleet_member(id, &boss.id, FleetRole::FleetManager).unwrap();
        for driver in drivers {
            store.set_fleet_member(id, &driver.id, FleetRole::Driver).unwrap();
        }
    }
    store.insert_token(&card("CARD-A1", "NL-EMS-C00000001-X", "fleet-a", &ada.id), "ISSUE", "ops:t").unwrap();
    store.insert_token(&card("CARD-A2", "NL-EMS-C00000002-Y", "fleet-a", &bob.id), "ISSUE", "ops:t").unwrap();
    store.insert_token(&card("CARD-B1", "NL-EMS-C00000003-Z", "fleet-b", &bea.id), "ISSUE", "ops:t").unwrap();
}

/// Posts an OCPI 2.2.1 CDR of a 45-minute session as the CPO would.
async fn post_cdr(app: &TestApp, cpo: &RunningSim, id: &str, uid: &str, end: &str, excl: &str, incl: &str) {
    let end_at: DateTime<Utc> = end.parse().unwrap();
    let start = (end_at - chrono::Duration::minutes(45)).to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let cdr = json!({
        "country_code": "NL", "party_id": "SIM", "id": id, "start_date_time": start, "end_date_time": end,
        "cdr_token": {"country_code": "NL", "party_id": "EMS", "uid": uid, "type": "RFID", "contract_id": "NL-EMS-C00000009-A"},
        "auth_method": "WHITELIST",
        "cdr_location": {"id": "LOC-1", "name": "Parkhaus Mitte", "address": "Hauptstraße 5", "city": "Köln", "postal_code": "50667", "country": "DEU",
            "coordinates": {"latitude": "50.93", "longitude": "6.95"}, "evse_uid": "E1", "evse_id": "DE*SIM*E1", "connector_id": "1",
            "connector_standard": "IEC_62196_T2", "connector_format": "SOCKET", "connector_power_type": "AC_3_PHASE"},
        "currency": "EUR", "charging_periods": [{"start_date_time": start, "dimensions": [{"type": "ENERGY", "volume": 20}]}],
        "total_cost": {"excl_vat": excl.parse::<f64>().unwrap(), "incl_vat": incl.parse::<f64>().unwrap()},
        "total_energy": 20, "total_time": 0.75, "last_updated": end,
    });
    let token = cpo.received().peer.unwrap().token_theirs;
    let response = app
        .client
        .post(app.url("/ocpi/2.2.1/cdrs"))
        .header("Authorization", format!("Token {}", STANDARD.encode(token)))
        .json(&cdr)
        .send()
        .await
        .unwrap();
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["status_code"], 1000, "{body}");
}

/// What `emsp invoice run --period P --fleet F --issue-date D` does, from the stored CDRs.
async fn run(app: &TestApp, fleet_id: &str, period: &str, issue_date: (i32, u32, u32)) -> FleetRun {
    let store = app.db().store().clone();
    let (fleet_id, period): (String, BillingPeriod) = (fleet_id.to_owned(), period.parse().unwrap());
    tokio::task::spawn_blocking(move || {
        let customer = store.get_fleet(&fleet_id).unwrap().unwrap().customer;
        let issue_date = NaiveDate::from_ymd_opt(issue_date.0, issue_date.1, issue_date.2).unwrap();
        let source = StoredCdrs::new(store.clone());
        run_fleet(&store, &supplier(), &customer, period, issue_date, RunMode::Issue, &source).unwrap()
    })
    .await
    .unwrap()
}

fn lines_of(run: &FleetRun) -> Vec<(String, bool)> {
    run.documents.iter().flat_map(|d| d.document.lines.iter().map(|l| (l.cdr_id.clone(), l.late))).collect()
}

async fn fleet_invoices_from_stored_cdrs(backend: TestBackend) {
    let Some(app) = TestApp::start(backend).await else { return };
    let cpo = emsp_cpo_sim::start(SimOptions { data: SimData::Generated { locations: 2 }, ..SimOptions::default() })
        .await
        .unwrap();
    register_with_partner(&app.roaming(), "simulated CPO", &cpo.versions_url, &cpo.token_a).await.unwrap();
    let store = app.db().store().clone();
    tokio::task::spawn_blocking(move || people_and_cards(&store)).await.unwrap();

    // CDRs arrive over OCPI: Ada's and Bob's in October, Ada's in September, fleet B's in October,
    // and one of a card that is none of ours.
    post_cdr(&app, &cpo, "A1-SEP", "CARD-A1", "2026-09-28T16:00:00Z", "5.00", "5.95").await;
    post_cdr(&app, &cpo, "A1-OCT", "CARD-A1", "2026-10-05T10:00:00Z", "10.00", "11.90").await;
    post_cdr(&app, &cpo, "A2-OCT", "card-a2", "2026-10-20T10:00:00Z", "20.00", "23.80").await;
    post_cdr(&app, &cpo, "B1-OCT", "CARD-B1", "2026-10-07T10:00:00Z", "50.00", "59.50").await;
    post_cdr(&app, &cpo, "X-OCT", "SOMEONE-ELSE", "2026-10-08T10:00:00Z", "7.00", "8.33").await;

    // September, then October: each month's CDRs, with the right totals.
    let september = run(&app, "fleet-a", "2026-09", (2026, 10, 1)).await;
    assert_eq!(lines_of(&september), vec![("NL*SIM*A1-SEP".to_owned(), false)]);
    let october = run(&app, "fleet-a", "2026-10", (2026, 11, 2)).await;
    assert_eq!(october.documents.len(), 1, "{october:?}");
    let invoice = october.documents[0].clone();
    assert_eq!(lines_of(&october), vec![("NL*SIM*A1-OCT".to_owned(), false), ("NL*SIM*A2-OCT".to_owned(), false)]);
    assert_eq!(invoice.document.display_number(), "INV-2026-000002");
    let totals = &invoice.document.totals;
    assert_eq!(
        (totals.net.to_string(), totals.vat.to_string(), totals.gross.to_string()),
        ("30.00".into(), "5.70".into(), "35.70".into())
    );
    assert_eq!(invoice.document.lines[0].location, "Parkhaus Mitte, Hauptstraße 5, Köln");
    assert_eq!(invoice.document.lines[0].evse, "DE*SIM*E1");
    let theirs = run(&app, "fleet-b", "2026-10", (2026, 11, 2)).await;
    assert_eq!(lines_of(&theirs), vec![("NL*SIM*B1-OCT".to_owned(), false)]);
    assert_eq!(theirs.documents[0].document.totals.gross.to_string(), "59.50");

    // A CDR of October arrives after October was issued: rerunning October changes nothing; it
    // goes on November's invoice once, marked late, with its real date; later runs leave it there.
    post_cdr(&app, &cpo, "A1-LATE", "CARD-A1", "2026-10-30T18:00:00Z", "3.00", "3.57").await;
    let rerun = run(&app, "fleet-a", "2026-10", (2026, 11, 3)).await;
    assert!(rerun.closed && rerun.documents.is_empty(), "{rerun:?}");
    let november = run(&app, "fleet-a", "2026-11", (2026, 12, 1)).await;
    assert_eq!(lines_of(&november), vec![("NL*SIM*A1-LATE".to_owned(), true)]);
    let late = &november.documents[0].document;
    assert_eq!(late.period.to_string(), "2026-11");
    assert_eq!(late.lines[0].date, NaiveDate::from_ymd_opt(2026, 10, 30).unwrap());
    assert_eq!(late.totals.gross.to_string(), "3.57");
    let again = run(&app, "fleet-a", "2026-11", (2026, 12, 2)).await;
    assert!(again.documents.is_empty());
    assert!(run(&app, "fleet-a", "2026-10", (2026, 12, 2)).await.documents.is_empty());
    let store = app.db().store().clone();
    let (stored_october, billed) = tokio::task::spawn_blocking(move || {
        let october = store.invoices_of_period("fleet-a", "2026-10".parse().unwrap()).unwrap();
        let billed = store.billed_cdrs(&["NL*SIM*A1-LATE".to_owned()]).unwrap();
        (october, billed)
    })
    .await
    .unwrap();
    assert_eq!(stored_october.len(), 1);
    assert_eq!(stored_october[0].document, invoice.document, "the issued invoice never changes");
    assert_eq!(billed["NL*SIM*A1-LATE"].number, late.display_number(), "billed once, in November");
    assert!(november.documents.iter().all(|d| d.document.kind == DocumentKind::Invoice));

    // Fleet A's manager: its tokens, its sessions (by driver, by days, paged) and invoices.
    let boss = login(&app, "boss@a.example").await;
    let body =
        gql(&app, Some(&boss), "{ fleet { tokens { uid contractId type status valid driver { email name } } } }").await;
    let tokens = body["data"]["fleet"]["tokens"].as_array().unwrap_or_else(|| panic!("{body}")).clone();
    let mut uids: Vec<&str> = tokens.iter().map(|t| t["uid"].as_str().unwrap()).collect();
    uids.sort_unstable();
    assert_eq!(uids, vec!["CARD-A1", "CARD-A2"]);
    let a1 = tokens.iter().find(|t| t["uid"] == "CARD-A1").unwrap();
    assert_eq!(a1["driver"], json!({"email": "ada@a.example", "name": "Ada"}));
    assert_eq!(
        (a1["contractId"].as_str(), a1["type"].as_str(), a1["status"].as_str()),
        (Some("NL-EMS-C00000001-X"), Some("RFID"), Some("ALLOWED"))
    );

    const SESSIONS: &str = "query($d: ID, $from: NaiveDate, $to: NaiveDate, $after: String) { fleet { sessions(driverId: $d, from: $from, to: $to, first: 2, after: $after) { nodes { id date driver { email } tokenUid location evse energyKwh durationMinutes costExclVat costInclVat currency invoiceNumber } hasNextPage endCursor } } }";
    let page = |body: &Value| body["data"]["fleet"]["sessions"].clone();
    let ids = |page: &Value| -> Vec<String> {
        page["nodes"]
            .as_array()
            .unwrap_or_else(|| panic!("{page}"))
            .iter()
            .map(|n| n["id"].as_str().unwrap().to_owned())
            .collect()
    };
    let first = page(&gql_vars(&app, &boss, SESSIONS, json!({})).await);
    assert_eq!(ids(&first), vec!["NL*SIM*A1-LATE", "NL*SIM*A2-OCT"]);
    assert_eq!(first["hasNextPage"], true);
    let late_node = &first["nodes"][0];
    assert_eq!(late_node["date"], "2026-10-30");
    assert_eq!(late_node["driver"]["email"], "ada@a.example");
    let amount =
        |field: &str| late_node[field].as_str().unwrap_or_else(|| panic!("{late_node}")).parse::<f64>().unwrap();
    assert_eq!((amount("costExclVat"), amount("costInclVat"), amount("energyKwh")), (3.0, 3.57, 20.0));
    assert_eq!(late_node["durationMinutes"], 45);
    assert_eq!(late_node["invoiceNumber"], late.display_number());
    assert_eq!(late_node["location"], "Parkhaus Mitte, Hauptstraße 5, Köln");
    let second = page(&gql_vars(&app, &boss, SESSIONS, json!({"after": first["endCursor"]})).await);
    assert_eq!(ids(&second), vec!["NL*SIM*A1-OCT", "NL*SIM*A1-SEP"]);
    assert_eq!(second["hasNextPage"], false);
    let ada_id = user_id(&app, "ada@a.example").await;
    let ada_october =
        page(&gql_vars(&app, &boss, SESSIONS, json!({"d": ada_id, "from": "2026-10-01", "to": "2026-10-31"})).await);
    assert_eq!(ids(&ada_october), vec!["NL*SIM*A1-LATE", "NL*SIM*A1-OCT"]);
    let one_day = page(&gql_vars(&app, &boss, SESSIONS, json!({"from": "2026-10-20", "to": "2026-10-20"})).await);
    assert_eq!(ids(&one_day), vec!["NL*SIM*A2-OCT"]);
    let body = gql_vars(&app, &boss, SESSIONS, json!({"from": "2026-10-31", "to": "2026-10-01"})).await;
    assert_eq!(code(&body), "BAD_USER_INPUT", "{body}");
    for cursor in ["NL*SIM*NOPE", "NL*SIM*B1-OCT"] {
        let body = gql_vars(&app, &boss, SESSIONS, json!({"after": cursor})).await;
        assert_eq!(code(&body), "BAD_USER_INPUT", "another fleet's session is no cursor: {body}");
    }
    let body = gql(&app, Some(&boss), "{ fleet { invoices { number period totals { gross } } } }").await;
    let numbers: Vec<&str> =
        body["data"]["fleet"]["invoices"].as_array().unwrap().iter().map(|i| i["number"].as_str().unwrap()).collect();
    assert_eq!(numbers.len(), 3, "{body}");
    assert!(numbers.contains(&"INV-2026-000002") && !numbers.contains(&theirs.documents[0].document.display_number()));

    // Fleet B's manager sees B's card, session and invoice only; fleet A is not found; drivers are refused.
    let other = login(&app, "boss@b.example").await;
    let body =
        gql(&app, Some(&other), "{ fleet { tokens { uid } sessions { nodes { id } } invoices { number } } }").await;
    assert_eq!(body["data"]["fleet"]["tokens"], json!([{"uid": "CARD-B1"}]), "{body}");
    assert_eq!(body["data"]["fleet"]["sessions"]["nodes"], json!([{"id": "NL*SIM*B1-OCT"}]));
    assert_eq!(body["data"]["fleet"]["invoices"].as_array().unwrap().len(), 1);
    let body = gql(&app, Some(&other), "{ fleet(id: \"fleet-a\") { tokens { uid } sessions { nodes { id } } } }").await;
    assert_eq!(code(&body), "NOT_FOUND", "{body}");
    let driver = login(&app, "ada@a.example").await;
    let body = gql(&app, Some(&driver), "{ fleet { tokens { uid } sessions { nodes { id } } } }").await;
    assert_eq!(code(&body), "FORBIDDEN", "{body}");
    let ops = login(&app, "ops@emsp.example").await;
    let body = gql(&app, Some(&ops), "{ fleet(id: \"fleet-b\") { sessions { nodes { id } } } }").await;
    assert_eq!(body["data"]["fleet"]["sessions"]["nodes"], json!([{"id": "NL*SIM*B1-OCT"}]), "{body}");

    cpo.stop().await;
    app.stop().await;
}

async fn gql_vars(app: &TestApp, token: &str, query: &str, variables: Value) -> Value {
    let request = app
        .client
        .post(app.url("/graphql"))
        .header("Authorization", format!("Bearer {token}"))
        .json(&json!({"query": query, "variables": variables}));
    request.send().await.unwrap().json().await.unwrap()
}

async fn user_id(app: &TestApp, email: &str) -> String {
    let store = app.db().store().clone();
    let email = email.to_owned();
    tokio::task::spawn_blocking(move || store.find_user_by_email(&email).unwrap().unwrap().id).await.unwrap()
}

#[tokio::test]
async fn fleet_invoices_from_stored_cdrs_on_sqlite() {
    fleet_invoices_from_stored_cdrs(TestBackend::Sqlite).await;
}

#[tokio::test]
async fn fleet_invoices_from_stored_cdrs_on_postgres() {
    fleet_invoices_from_stored_cdrs(TestBackend::Postgres).await;
}
