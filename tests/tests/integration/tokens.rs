//! Tokens end to end: ops issue, import, block and assign them over GraphQL (audited); CPOs
//! list them page by page and authorize them in real time over OCPI; changes reach the CPO
//! simulator by push, and a failed push is made good by the next cycle's re-push.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use emsp_cpo_sim::{RunningSim, SimData, SimOptions};
use emsp_domain::{AllowedType, Emaid};
use emsp_store::{Endpoint, Registration};
use emsp_tests::{TestApp, TestBackend};
use serde_json::{Value, json};

const CPO_TOKEN: &str = "token-c-of-the-token-cpo";

async fn gql(app: &TestApp, token: &str, query: &str, variables: Value) -> Value {
    let response = app
        .client
        .post(app.url("/graphql"))
        .header("Authorization", format!("Bearer {token}"))
        .json(&json!({"query": query, "variables": variables}))
        .send()
        .await
        .unwrap();
    response.json().await.unwrap()
}

fn code(body: &Value) -> &str {
    body["errors"][0]["extensions"]["code"].as_str().unwrap_or("none")
}

/// Creates a user of `role` and signs it in; returns (user id, access token).
async fn signed_in(app: &TestApp, email: &str, role: emsp_accounts::Role) -> (String, String) {
    let store = app.db().store().clone();
    let address = email.to_owned();
    let user = tokio::task::spawn_blocking(move || {
        let accounts = emsp_accounts::Accounts::new(store, emsp_accounts::AuthConfig::default()).unwrap();
        accounts.create_user(&address, "a long enough password", None, role).unwrap()
    })
    .await
    .unwrap();
    let login = "mutation($e: String!, $p: String!) { login(email: $e, password: $p) { accessToken } }";
    let response = app
        .client
        .post(app.url("/graphql"))
        .json(&json!({"query": login, "variables": {"e": email, "p": "a long enough password"}}))
        .send()
        .await
        .unwrap();
    let body: Value = response.json().await.unwrap();
    (user.id, body["data"]["login"]["accessToken"].as_str().unwrap().to_owned())
}

/// A CPO registered with us without a tokens endpoint (it only asks and pulls).
fn registered_cpo(app: &TestApp) {
    let store = app.db().store();
    let (partner, _) = emsp_roaming::invite_partner(store, "Token CPO").unwrap();
    let endpoints: Vec<Endpoint> = vec![];
    store
        .register_partner(
            &partner.id,
            &Registration {
                versions_url: "http://127.0.0.1:1/ocpi/versions",
                version: "2.2.1",
                endpoints: &endpoints,
                incoming_token: CPO_TOKEN,
                outgoing_token: "token-b",
            },
        )
        .unwrap();
}

async fn ocpi(
    app: &TestApp,
    token: &str,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
) -> (u16, reqwest::header::HeaderMap, Value) {
    let url = if path.starts_with("http") { path.to_owned() } else { app.url(path) };
    let mut request =
        app.client.request(method, url).header("Authorization", format!("Token {}", STANDARD.encode(token)));
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let text = response.text().await.unwrap();
    (status, headers, serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON: {text}")))
}

async fn authorize(app: &TestApp, uid: &str, query: &str, body: Option<Value>) -> (u16, Value) {
    let path = format!("/ocpi/2.2.1/tokens/{uid}/authorize{query}");
    let (status, _, body) = ocpi(app, CPO_TOKEN, reqwest::Method::POST, &path, body).await;
    (status, body)
}

const IMPORT: &str = "mutation($csv: String!) { importRfidTokens(csv: $csv) { created duplicates invalid rows { line uid status message } } }";
const ISSUE: &str = "mutation($input: IssueTokensInput!) { issueTokens(input: $input) { uid type contractId whitelist userId fleetId } }";
const BLOCK: &str = "mutation($uid: String!, $reason: String!) { blockToken(uid: $uid, reason: $reason) { uid valid status blockedReason } }";
const UNBLOCK: &str = "mutation($uid: String!) { unblockToken(uid: $uid) { uid valid status blockedReason } }";
const ASSIGN: &str = "mutation($uid: String!, $user: String, $fleet: String) { assignToken(uid: $uid, userId: $user, fleetId: $fleet) { uid userId fleetId } }";
const SEARCH: &str = "query($s: TokenSearch, $first: Int) { tokens(search: $s, first: $first) { totalCount items { uid contractId fleetId } } }";
const AUDIT: &str =
    "query($uid: String) { tokenAudit(search: {uid: $uid}) { totalCount items { action actor before after } } }";

async fn ops_and_ocpi(backend: TestBackend) {
    let Some(app) = TestApp::start(backend).await else { return };
    registered_cpo(&app);
    let (ops_id, ops) = signed_in(&app, "ops@example.com", emsp_accounts::Role::Ops).await;
    let (driver_id, driver) = signed_in(&app, "driver@example.com", emsp_accounts::Role::Driver).await;

    // Import: good rows go in; a duplicate, a wrong check character and a bad language are
    // reported per row and block nothing.
    let csv = format!(
        "uid,contract_id,visual_number,user_id,fleet_id,language,expires_at\n\
         CARD-1,NL-EMS-C00000001-M,EMS 1,,fleet-7,nl,\n\
         card-1,,,,,,\n\
         CARD-2,NL-EMS-C00000002-X,,,,,\n\
         CARD-3,,,,,dutch,\n\
         CARD-OLD,,,,,,2020-01-01\n\
         CARD-DRV,,,{driver_id},,,\n\
         \"CARD,4\",,,,fleet-7,,\n"
    );
    let body = gql(&app, &ops, IMPORT, json!({"csv": csv})).await;
    let report = &body["data"]["importRfidTokens"];
    assert_eq!(
        (report["created"].as_i64(), report["duplicates"].as_i64(), report["invalid"].as_i64()),
        (Some(4), Some(1), Some(2)),
        "{body}"
    );
    let statuses: Vec<&str> =
        report["rows"].as_array().unwrap().iter().map(|r| r["status"].as_str().unwrap()).collect();
    assert_eq!(statuses, ["CREATED", "DUPLICATE", "INVALID", "INVALID", "CREATED", "CREATED", "CREATED"], "{body}");
    assert_eq!(report["rows"][2]["line"], 4);
    assert!(report["rows"][2]["message"].as_str().unwrap().contains("check character"), "{body}");

    // Issue app tokens in bulk: fresh uids and valid eMAIDs of our party, NEVER whitelisted.
    let body = gql(&app, &ops, ISSUE, json!({"input": {"count": 3, "fleetId": "fleet-9"}})).await;
    let issued = body["data"]["issueTokens"].as_array().unwrap_or_else(|| panic!("{body}"));
    assert_eq!(issued.len(), 3);
    for token in issued {
        let emaid = Emaid::parse(token["contractId"].as_str().unwrap()).unwrap();
        assert_eq!((emaid.country_code(), emaid.provider_id()), ("NL", "EMS"));
        assert_eq!((token["type"].as_str(), token["whitelist"].as_str()), (Some("APP_USER"), Some("NEVER")));
    }
    let body = gql(&app, &ops, ISSUE, json!({"input": {"type": "AD_HOC_USER", "count": 1}})).await;
    let ad_hoc = body["data"]["issueTokens"][0]["uid"].as_str().unwrap().to_owned();
    let body = gql(&app, &ops, ISSUE, json!({"input": {"type": "RFID", "count": 1}})).await;
    assert_eq!(code(&body), "BAD_USER_INPUT", "RFID cards are imported: {body}");
    let body = gql(&app, &driver, SEARCH, json!({})).await;
    assert_eq!(code(&body), "FORBIDDEN", "{body}");

    // Search by uid prefix, contract id (any spelling), driver, fleet.
    let body = gql(&app, &ops, SEARCH, json!({"s": {"uid": "card*"}})).await;
    assert_eq!(body["data"]["tokens"]["totalCount"], 4, "{body}");
    let body = gql(&app, &ops, SEARCH, json!({"s": {"contractId": "nlemsc00000001m"}})).await;
    assert_eq!(body["data"]["tokens"]["items"][0]["uid"], "CARD-1", "{body}");
    let body = gql(&app, &ops, SEARCH, json!({"s": {"fleetId": "fleet-7"}})).await;
    assert_eq!(body["data"]["tokens"]["totalCount"], 2, "{body}");
    let body = gql(&app, &ops, SEARCH, json!({"s": {"userId": driver_id}})).await;
    assert_eq!(body["data"]["tokens"]["items"][0]["uid"], "CARD-DRV", "{body}");

    // Block, unblock, assign: audited with who and before/after.
    let body = gql(&app, &ops, BLOCK, json!({"uid": "CARD-2X", "reason": "x"})).await;
    assert_eq!(code(&body), "NOT_FOUND", "{body}");
    let body = gql(&app, &ops, BLOCK, json!({"uid": "card-1", "reason": "lost card"})).await;
    assert_eq!(body["data"]["blockToken"]["status"], "BLOCKED", "{body}");
    let body = gql(&app, &ops, ASSIGN, json!({"uid": "CARD,4", "user": "no-such-user"})).await;
    assert_eq!(code(&body), "BAD_USER_INPUT", "{body}");
    let body = gql(&app, &ops, ASSIGN, json!({"uid": "CARD,4", "fleet": "fleet-8"})).await;
    assert_eq!(body["data"]["assignToken"]["fleetId"], "fleet-8", "{body}");
    let body = gql(&app, &ops, AUDIT, json!({"uid": "CARD-1"})).await;
    let entries = body["data"]["tokenAudit"]["items"].as_array().unwrap_or_else(|| panic!("{body}"));
    let actions: Vec<&str> = entries.iter().map(|e| e["action"].as_str().unwrap()).collect();
    assert_eq!(actions, ["BLOCK", "IMPORT"], "newest first: {body}");
    assert_eq!(entries[0]["actor"], format!("ops:{ops_id}"));
    let before: Value = serde_json::from_str(entries[0]["before"].as_str().unwrap()).unwrap();
    let after: Value = serde_json::from_str(entries[0]["after"].as_str().unwrap()).unwrap();
    assert_eq!((before["valid"].as_bool(), after["valid"].as_bool()), (Some(true), Some(false)));
    assert_eq!(after["blocked_reason"], "lost card");

    // Real-time authorization in every outcome.
    let (status, body) =
        authorize(&app, "CARD-DRV", "?type=RFID", Some(json!({"location_id": "LOC1", "evse_uids": ["E1"]}))).await;
    assert_eq!(status, 200, "{body}");
    let info = &body["data"];
    assert_eq!(info["allowed"], "ALLOWED", "{body}");
    assert_eq!(info["token"]["uid"], "CARD-DRV");
    assert_eq!(info["location"]["evse_uids"], json!(["E1"]));
    let reference = info["authorization_reference"].as_str().unwrap().to_owned();
    // Decisions are answered first and stored a few milliseconds later, many at a time.
    let mut found = None;
    for _ in 0..400 {
        found = app.db().store().get_authorization(&reference).unwrap();
        if found.is_some() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    let found = found.expect("the decision is stored within two seconds");
    assert_eq!((found.allowed, found.location_id.as_deref()), (AllowedType::Allowed, Some("LOC1")));
    assert_eq!(found.token_key, "NL*EMS*CARD-DRV");

    let (_, body) = authorize(&app, "card-1", "", None).await;
    assert_eq!(body["data"]["allowed"], "BLOCKED", "{body}");
    assert!(body["data"]["authorization_reference"].is_null() && body["data"]["info"]["text"].is_string(), "{body}");
    let (_, body) = authorize(&app, "CARD-OLD", "", None).await;
    assert_eq!(body["data"]["allowed"], "EXPIRED", "{body}");
    let store = app.db().store().clone();
    let disabled = driver_id.clone();
    tokio::task::spawn_blocking(move || store.set_user_disabled(&disabled, true).unwrap()).await.unwrap();
    let (_, body) = authorize(&app, "CARD-DRV", "", None).await;
    assert_eq!(body["data"]["allowed"], "NO_CREDIT", "{body}");
    let (status, body) = authorize(&app, &ad_hoc, "?type=AD_HOC_USER", None).await;
    assert_eq!((status, body["status_code"].as_i64()), (200, Some(2002)), "location required: {body}");
    let (_, body) = authorize(&app, &ad_hoc, "", Some(json!({"location_id": "LOC1"}))).await;
    assert_eq!(body["data"]["allowed"], "ALLOWED", "{body}");
    let (_, body) = authorize(&app, &ad_hoc, "", Some(json!({"location_id": "LOC2"}))).await;
    assert_eq!(body["data"]["allowed"], "NOT_ALLOWED", "bound to its first location: {body}");
    let (status, body) = authorize(&app, "NO-SUCH-CARD", "", None).await;
    assert_eq!((status, body["status_code"].as_i64()), (404, Some(2004)), "{body}");
    assert!(body.get("data").is_none_or(Value::is_null));
    let (status, _) = authorize(&app, "CARD-OLD", "?type=APP_USER", None).await;
    assert_eq!(status, 404, "another type is another token");
    let (status, body) = authorize(&app, "CARD-OLD", "", Some(json!({"evse_uids": ["E1"]}))).await;
    assert_eq!((status, body["status_code"].as_i64()), (400, Some(2001)), "{body}");
    let (status, _, body) =
        ocpi(&app, CPO_TOKEN, reqwest::Method::POST, "/ocpi/2.1.1/tokens/CARD-OLD/authorize", None).await;
    assert_eq!(status, 200);
    assert_eq!(body["data"]["allowed"], "EXPIRED");
    assert!(body["data"].get("token").is_none(), "2.1.1 has no token in AuthorizationInfo: {body}");

    // GET /tokens: pages of 3 through every token exactly once, even with a change between pages.
    let total = 4 + 3 + 1; // imported (CARD-1 blocked, still listed), app, ad hoc
    let mut seen = Vec::new();
    let mut url = "/ocpi/2.2.1/tokens?limit=3".to_owned();
    let mut pages = 0;
    loop {
        let (status, headers, body) = ocpi(&app, CPO_TOKEN, reqwest::Method::GET, &url, None).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(headers["x-total-count"].to_str().unwrap(), total.to_string());
        assert_eq!(headers["x-limit"].to_str().unwrap(), "1000");
        for token in body["data"].as_array().unwrap() {
            assert_eq!((token["country_code"].as_str(), token["party_id"].as_str()), (Some("NL"), Some("EMS")));
            seen.push(token["uid"].as_str().unwrap().to_owned());
        }
        pages += 1;
        if pages == 1 {
            // The first token listed changes while the CPO pages: it comes again at the end,
            // and nothing is skipped.
            let first = seen[0].clone();
            let body = gql(&app, &ops, ASSIGN, json!({"uid": first, "fleet": "fleet-moved"})).await;
            assert!(body["errors"].is_null(), "{body}");
        }
        let Some(link) = headers.get("link") else { break };
        let link = link.to_str().unwrap();
        assert!(link.ends_with("rel=\"next\""), "{link}");
        url = link[link.find('<').unwrap() + 1..link.find('>').unwrap()].to_owned();
    }
    let unique: HashSet<&String> = seen.iter().collect();
    assert_eq!(unique.len(), total, "every token, no gap: {seen:?}");
    assert_eq!(seen.len(), total + 1, "the changed token came twice: {seen:?}");

    // date_from inclusive, date_to exclusive.
    let (_, _, body) =
        ocpi(&app, CPO_TOKEN, reqwest::Method::GET, "/ocpi/2.2.1/tokens?date_from=2100-01-01T00:00:00Z", None).await;
    assert_eq!(body["data"], json!([]));
    let (_, _, body) =
        ocpi(&app, CPO_TOKEN, reqwest::Method::GET, "/ocpi/2.2.1/tokens?date_to=2000-01-01T00:00:00Z", None).await;
    assert_eq!(body["data"], json!([]));
    let (status, _, body) =
        ocpi(&app, CPO_TOKEN, reqwest::Method::GET, "/ocpi/2.2.1/tokens?date_from=soon", None).await;
    assert_eq!((status, body["status_code"].as_i64()), (400, Some(2001)));
    let (_, _, body) = ocpi(&app, CPO_TOKEN, reqwest::Method::GET, "/ocpi/2.1.1/tokens?limit=1", None).await;
    assert!(body["data"][0]["auth_id"].is_string() && body["data"][0].get("country_code").is_none(), "{body}");

    // Token A (a partner that has not finished registering) opens versions and credentials only.
    let (_, token_a) = emsp_roaming::invite_partner(app.db().store(), "Not yet registered").unwrap();
    let (status, _, _) = ocpi(&app, &token_a, reqwest::Method::GET, "/ocpi/2.2.1/tokens", None).await;
    assert_eq!(status, 401);
    let (status, _) = {
        let (s, _, b) =
            ocpi(&app, &token_a, reqwest::Method::POST, "/ocpi/2.2.1/tokens/CARD-OLD/authorize", None).await;
        (s, b)
    };
    assert_eq!(status, 401);
    let (status, _, body) = ocpi(&app, "made-up", reqwest::Method::GET, "/ocpi/2.2.1/tokens", None).await;
    assert_eq!((status, body["status_code"].as_i64()), (401, Some(2000)));

    // Versions list the tokens module as a Sender interface.
    let (_, _, body) = ocpi(&app, CPO_TOKEN, reqwest::Method::GET, "/ocpi/2.2.1", None).await;
    let endpoints = body["data"]["endpoints"].as_array().unwrap();
    assert!(endpoints.iter().any(|e| e["identifier"] == "tokens" && e["role"] == "SENDER"), "{body}");
    let body = gql(&app, &ops, UNBLOCK, json!({"uid": "CARD-1"})).await;
    assert_eq!(body["data"]["unblockToken"]["status"], "ALLOWED", "{body}");
    app.stop().await;
}

#[tokio::test]
async fn tokens_ops_and_ocpi_on_sqlite() {
    ops_and_ocpi(TestBackend::Sqlite).await;
}

#[tokio::test]
async fn tokens_ops_and_ocpi_on_postgres() {
    ops_and_ocpi(TestBackend::Postgres).await;
}

async fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    let started = Instant::now();
    while !check() {
        assert!(started.elapsed() < Duration::from_secs(20), "timed out waiting for: {what}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

fn sim_token(sim: &RunningSim, uid: &str) -> Option<Value> {
    sim.received().tokens.into_iter().find(|t| t["uid"] == uid)
}

async fn pushes(backend: TestBackend) {
    let Some(app) = TestApp::start(backend).await else { return };
    let (_, ops) = signed_in(&app, "ops@example.com", emsp_accounts::Role::Ops).await;
    let body = gql(&app, &ops, IMPORT, json!({"csv": "uid\nPUSH-1\nPUSH-2\nPUSH-3\n"})).await;
    assert_eq!(body["data"]["importRfidTokens"]["created"], 3, "{body}");

    let sim =
        emsp_cpo_sim::start(SimOptions { data: SimData::Generated { locations: 5 }, seed: 3, ..SimOptions::default() })
            .await
            .unwrap();
    let outcome = emsp_roaming::register_with_partner(&app.roaming(), "simulated CPO", &sim.versions_url, &sim.token_a)
        .await
        .unwrap();
    assert!(outcome.endpoints.iter().any(|e| e.identifier == "tokens"), "{:?}", outcome.endpoints);

    // A partner never pushed to gets every token on its first cycle.
    let reports = emsp_roaming::tokens::repush(&app.roaming()).await;
    assert_eq!(reports.len(), 1);
    assert_eq!((reports[0].pushed, reports[0].failed.as_deref()), (3, None), "{reports:?}");
    assert_eq!(sim.received().tokens.len(), 3);
    assert_eq!(sim_token(&sim, "PUSH-1").unwrap()["valid"], true);

    // A block reaches the simulator at once.
    let body = gql(&app, &ops, BLOCK, json!({"uid": "PUSH-1", "reason": "stolen"})).await;
    assert!(body["errors"].is_null(), "{body}");
    eventually("the block pushed", || sim_token(&sim, "PUSH-1").is_some_and(|t| t["valid"] == false)).await;
    // Issued tokens are pushed whole.
    let body = gql(&app, &ops, ISSUE, json!({"input": {"count": 1}})).await;
    let app_uid = body["data"]["issueTokens"][0]["uid"].as_str().unwrap().to_owned();
    eventually("the new token pushed", || sim_token(&sim, &app_uid).is_some_and(|t| t["type"] == "APP_USER")).await;
    assert!(emsp_roaming::tokens::repush(&app.roaming()).await.is_empty(), "nothing to re-push");

    // The simulator fails: the push is not retried in a loop, the partner is marked, and later
    // changes wait for the next cycle, which delivers them all.
    sim.faults().fail_next(2);
    let body = gql(&app, &ops, BLOCK, json!({"uid": "PUSH-2", "reason": "lost"})).await;
    assert!(body["errors"].is_null(), "{body}");
    let store = app.db().store().clone();
    eventually("the partner marked for a re-push", || {
        store.token_push_states().unwrap().iter().any(|s| s.repush_from.is_some() && s.last_error.is_some())
    })
    .await;
    let body = gql(&app, &ops, BLOCK, json!({"uid": "PUSH-3", "reason": "lost too"})).await;
    assert!(body["errors"].is_null(), "{body}");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(sim_token(&sim, "PUSH-2").unwrap()["valid"], true, "the failed push did not arrive");
    assert_eq!(sim_token(&sim, "PUSH-3").unwrap()["valid"], true, "live pushes wait while marked");

    let reports = emsp_roaming::tokens::repush(&app.roaming()).await;
    assert_eq!(reports.len(), 1);
    assert_eq!((reports[0].pushed, reports[0].failed.as_deref()), (2, None), "only what changed since: {reports:?}");
    assert_eq!(sim_token(&sim, "PUSH-2").unwrap()["valid"], false);
    assert_eq!(sim_token(&sim, "PUSH-3").unwrap()["valid"], false);
    assert!(store.token_push_states().unwrap().iter().all(|s| s.repush_from.is_none()), "mark cleared");
    assert!(emsp_roaming::tokens::repush(&app.roaming()).await.is_empty());

    // Pushing works again live.
    let body = gql(&app, &ops, UNBLOCK, json!({"uid": "PUSH-2"})).await;
    assert!(body["errors"].is_null(), "{body}");
    eventually("the unblock pushed", || sim_token(&sim, "PUSH-2").is_some_and(|t| t["valid"] == true)).await;
    sim.stop().await;
    app.stop().await;
}

#[tokio::test]
async fn token_pushes_on_sqlite() {
    pushes(TestBackend::Sqlite).await;
}

#[tokio::test]
async fn token_pushes_on_postgres() {
    pushes(TestBackend::Postgres).await;
}
