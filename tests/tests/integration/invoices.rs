//! Fleet invoices over HTTP: a fleet manager sees and downloads their own fleet's invoices, and
//! neither sees nor downloads another fleet's, even with its id; operations staff see every fleet.

use chrono::{DateTime, Duration, NaiveDate, Utc};
use emsp_invoicing::{Address, Customer, PaymentTerms, Supplier, UsageRecord};
use emsp_store::{FleetRole, RunMode};
use emsp_tests::{TestApp, TestBackend};
use rust_decimal::Decimal;
use serde_json::{Value, json};

pub(crate) async fn gql(app: &TestApp, token: Option<&str>, query: &str) -> Value {
    let mut request = app.client.post(app.url("/graphql")).json(&json!({"query": query}));
    if let Some(token) = token {
        request = request.header("Authorization", format!("Bearer {token}"));
    }
    request.send().await.unwrap().json().await.unwrap()
}

pub(crate) fn code(body: &Value) -> &str {
    body["errors"][0]["extensions"]["code"].as_str().unwrap_or("none")
}

pub(crate) async fn login(app: &TestApp, email: &str) -> String {
    let query =
        format!("mutation {{ login(email: \"{email}\", password: \"a long enough password\") {{ accessToken }} }}");
    let body = gql(app, None, &query).await;
    body["data"]["login"]["accessToken"].as_str().unwrap_or_else(|| panic!("{body}")).to_owned()
}

async fn download(app: &TestApp, token: Option<&str>, path: &str) -> (u16, String, Vec<u8>) {
    let mut request = app.client.get(app.url(path));
    if let Some(token) = token {
        request = request.header("Authorization", format!("Bearer {token}"));
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let kind = response.headers().get("content-type").map(|v| v.to_str().unwrap().to_owned()).unwrap_or_default();
    (status, kind, response.bytes().await.unwrap().to_vec())
}

pub(crate) fn supplier() -> Supplier {
    Supplier {
        name: "Open EMSP GmbH".into(),
        address: Address {
            street: "Torstraße 1".into(),
            additional: None,
            postal_code: "10119".into(),
            city: "Berlin".into(),
            country: "DE".into(),
        },
        vat_id: "DE123456789".into(),
        registration: None,
        contact_name: "Billing".into(),
        phone: "+49 30 1234567".into(),
        email: "billing@open-emsp.example".into(),
        payment: PaymentTerms {
            days: 14,
            iban: "DE02120300000000202051".into(),
            bic: None,
            bank_name: None,
            note: "Payable within 14 days.".into(),
        },
        vat_rates: vec![Decimal::new(19, 0)],
        default_vat_rate: Decimal::new(19, 0),
        invoice_series: "INV".into(),
        credit_note_series: "CN".into(),
    }
}

pub(crate) fn fleet(id: &str) -> Customer {
    Customer {
        id: id.into(),
        name: format!("Fleet {id}"),
        address: Address {
            street: "Hafenstraße 12".into(),
            additional: None,
            postal_code: "20457".into(),
            city: "Hamburg".into(),
            country: "DE".into(),
        },
        vat_id: None,
        time_zone: "Europe/Berlin".into(),
        currency: emsp_domain::Currency::new("EUR").unwrap(),
        billing_email: format!("ap@{id}.example"),
        buyer_reference: None,
    }
}

fn usage(id: &str, net_cents: i64) -> UsageRecord {
    let end: DateTime<Utc> = DateTime::parse_from_rfc3339("2026-10-10T10:00:00Z").unwrap().with_timezone(&Utc);
    UsageRecord {
        cdr_id: format!("DE*CPO*{id}"),
        start: end - Duration::minutes(45),
        end,
        location: "Parkhaus Mitte, Köln".into(),
        evse: "DE*CPO*E1".into(),
        energy_kwh: Decimal::new(20_000, 3),
        currency: emsp_domain::Currency::new("EUR").unwrap(),
        net: Decimal::new(net_cents, 2),
        gross: None,
        credit: false,
        credits_cdr: None,
        issued_at: None,
    }
}

async fn fleet_manager_sees_only_their_fleet(backend: TestBackend) {
    let Some(app) = TestApp::start(backend).await else { return };
    let store = app.db().store().clone();
    let (mine, theirs) = tokio::task::spawn_blocking(move || {
        let accounts = emsp_accounts::Accounts::new(store.clone(), emsp_accounts::AuthConfig::default()).unwrap();
        let password = "a long enough password";
        let boss = accounts.create_user("boss@a.example", password, None, emsp_accounts::Role::FleetManager).unwrap();
        let other = accounts.create_user("boss@b.example", password, None, emsp_accounts::Role::FleetManager).unwrap();
        let driver = accounts.create_user("ada@a.example", password, Some("Ada"), emsp_accounts::Role::Driver).unwrap();
        accounts.create_user("ops@emsp.example", password, None, emsp_accounts::Role::Ops).unwrap();
        let source: Vec<(String, UsageRecord)> =
            vec![("fleet-a".into(), usage("a1", 1_000)), ("fleet-b".into(), usage("b1", 5_000))];
        let mut issued = Vec::new();
        for (id, manager) in [("fleet-a", &boss), ("fleet-b", &other)] {
            store.create_fleet(&fleet(id)).unwrap();
            store.set_fleet_member(id, &manager.id, FleetRole::FleetManager).unwrap();
            let run = emsp_server::invoicing::run_fleet(
                &store,
                &supplier(),
                &fleet(id),
                "2026-10".parse().unwrap(),
                NaiveDate::from_ymd_opt(2026, 11, 2).unwrap(),
                RunMode::Issue,
                &source,
            )
            .unwrap();
            issued.push(run.documents[0].clone());
        }
        store.set_fleet_member("fleet-a", &driver.id, FleetRole::Driver).unwrap();
        (issued[0].clone(), issued[1].clone())
    })
    .await
    .unwrap();
    assert!(mine.id.len() >= 32, "ids are long random strings: {}", mine.id);

    let boss = login(&app, "boss@a.example").await;
    let query = "{ fleet { id name drivers { email name } invoices(first: 10) { id number period status totals { net vat gross } lines { net vatRate } pdfUrl csvUrl xmlUrl } } }";
    let body = gql(&app, Some(&boss), query).await;
    let fleet = &body["data"]["fleet"];
    assert_eq!(fleet["id"], "fleet-a", "{body}");
    assert_eq!(fleet["drivers"], json!([{"email": "ada@a.example", "name": "Ada"}]));
    let invoices = fleet["invoices"].as_array().unwrap();
    assert_eq!(invoices.len(), 1, "{body}");
    assert_eq!(invoices[0]["number"], "INV-2026-000001");
    assert_eq!(invoices[0]["status"], "ISSUED");
    assert_eq!(invoices[0]["totals"]["gross"], "11.90");
    assert_eq!(invoices[0]["pdfUrl"], format!("/invoices/{}.pdf", mine.id));

    // Own documents download in all three formats.
    let (status, kind, pdf) = download(&app, Some(&boss), invoices[0]["pdfUrl"].as_str().unwrap()).await;
    assert_eq!((status, kind.as_str()), (200, "application/pdf"));
    assert!(pdf.starts_with(b"%PDF-") && pdf.windows(15).any(|w| w == b"INV-2026-000001"));
    let (status, _, csv) = download(&app, Some(&boss), invoices[0]["csvUrl"].as_str().unwrap()).await;
    assert_eq!(status, 200);
    assert!(String::from_utf8(csv).unwrap().contains("INV-2026-000001,1,DE*CPO*a1"));
    let (status, _, xml) = download(&app, Some(&boss), invoices[0]["xmlUrl"].as_str().unwrap()).await;
    assert_eq!(status, 200);
    assert!(emsp_invoicing::en16931::check(&xml).unwrap().is_empty());

    // Another fleet's invoice: not listed, not downloadable by its id, the fleet not found.
    for format in ["pdf", "csv", "xml"] {
        let (status, _, body) = download(&app, Some(&boss), &format!("/invoices/{}.{format}", theirs.id)).await;
        assert_eq!(status, 404, "{}", String::from_utf8_lossy(&body));
    }
    let (status, _, _) = download(&app, Some(&boss), "/invoices/inv_00000000000000000000000000000000.pdf").await;
    assert_eq!(status, 404);
    let (status, _, _) = download(&app, Some(&boss), &format!("/invoices/{}.exe", mine.id)).await;
    assert_eq!(status, 404);
    let body = gql(&app, Some(&boss), "{ fleet(id: \"fleet-b\") { name invoices { number } } }").await;
    assert_eq!(code(&body), "NOT_FOUND", "{body}");

    // Without a token, with a bad token, or as a driver: nothing.
    let (status, _, _) = download(&app, None, &format!("/invoices/{}.pdf", mine.id)).await;
    assert_eq!(status, 401);
    let (status, _, _) = download(&app, Some("not-a-token"), &format!("/invoices/{}.pdf", mine.id)).await;
    assert_eq!(status, 401);
    let driver = login(&app, "ada@a.example").await;
    let (status, _, _) = download(&app, Some(&driver), &format!("/invoices/{}.pdf", mine.id)).await;
    assert_eq!(status, 404);
    assert_eq!(code(&gql(&app, Some(&driver), "{ fleet { name } }").await), "FORBIDDEN");

    // The other manager sees their own; operations staff see any fleet and download any document.
    let other = login(&app, "boss@b.example").await;
    let body = gql(&app, Some(&other), "{ fleet { invoices { number totals { gross } } } }").await;
    assert_eq!(body["data"]["fleet"]["invoices"][0]["totals"]["gross"], "59.50", "{body}");
    let ops = login(&app, "ops@emsp.example").await;
    let body = gql(&app, Some(&ops), "{ fleet(id: \"fleet-b\") { name invoices { number } } }").await;
    assert_eq!(body["data"]["fleet"]["invoices"][0]["number"], "INV-2026-000002", "{body}");
    let (status, _, _) = download(&app, Some(&ops), &format!("/invoices/{}.xml", theirs.id)).await;
    assert_eq!(status, 200);
    app.stop().await;
}

#[tokio::test]
async fn fleet_invoices_on_sqlite() {
    fleet_manager_sees_only_their_fleet(TestBackend::Sqlite).await;
}

#[tokio::test]
async fn fleet_invoices_on_postgres() {
    fleet_manager_sees_only_their_fleet(TestBackend::Postgres).await;
}
