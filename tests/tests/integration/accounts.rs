//! Accounts through the driver API: sign-up, login, refresh rotation and reuse, logout, forged
//! and tampered tokens, roles, JWKS, anonymous search switched off.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use emsp_tests::{TestApp, TestBackend};
use serde_json::{Value, json};

async fn gql(app: &TestApp, token: Option<&str>, query: &str, variables: Value) -> (u16, Value) {
    let mut request = app.client.post(app.url("/graphql")).json(&json!({"query": query, "variables": variables}));
    if let Some(token) = token {
        request = request.header("Authorization", format!("Bearer {token}"));
    }
    let response = request.send().await.unwrap();
    (response.status().as_u16(), response.json().await.unwrap())
}

fn code(body: &Value) -> &str {
    body["errors"][0]["extensions"]["code"].as_str().unwrap_or("none")
}

const REGISTER: &str = "mutation($email: String!, $password: String!) { register(email: $email, password: $password, name: \"Ada\") { accessToken refreshToken expiresIn user { id email role } } }";
const LOGIN: &str = "mutation($email: String!, $password: String!) { login(email: $email, password: $password) { accessToken refreshToken } }";
const REFRESH: &str = "mutation($token: String!) { refreshToken(refreshToken: $token) { accessToken refreshToken } }";
const ME: &str = "{ me { email name role } }";

async fn accounts_flow(backend: TestBackend) {
    let Some(app) = TestApp::start(backend).await else { return };
    let credentials = json!({"email": "Ada@Example.com", "password": "correct horse battery"});
    let (_, body) = gql(&app, None, REGISTER, credentials.clone()).await;
    let payload = &body["data"]["register"];
    assert_eq!(payload["user"]["email"], "ada@example.com", "{body}");
    assert_eq!(payload["user"]["role"], "DRIVER");
    assert!(payload["expiresIn"].as_u64().unwrap() <= 900, "access tokens live at most 15 minutes");
    let access = payload["accessToken"].as_str().unwrap().to_owned();

    let (_, body) = gql(&app, None, REGISTER, credentials.clone()).await;
    assert_eq!(code(&body), "BAD_USER_INPUT", "a taken email: {body}");
    let (_, body) = gql(&app, None, REGISTER, json!({"email": "x@example.com", "password": "short"})).await;
    assert_eq!(code(&body), "BAD_USER_INPUT", "a weak password: {body}");

    let (_, body) = gql(&app, Some(&access), ME, json!({})).await;
    assert_eq!(body["data"]["me"]["name"], "Ada", "{body}");
    let (_, body) = gql(&app, None, ME, json!({})).await;
    assert_eq!(code(&body), "UNAUTHENTICATED");

    let (_, body) = gql(&app, None, LOGIN, json!({"email": "ada@example.com", "password": "wrong password!"})).await;
    assert_eq!(code(&body), "UNAUTHENTICATED");
    assert_eq!(body["errors"][0]["message"], "invalid email or password");
    let (_, body) = gql(&app, None, LOGIN, credentials.clone()).await;
    let first_refresh = body["data"]["login"]["refreshToken"].as_str().unwrap().to_owned();

    // Refresh rotates; a spent refresh token coming back revokes the whole login.
    let (_, body) = gql(&app, None, REFRESH, json!({"token": first_refresh})).await;
    let second_refresh = body["data"]["refreshToken"]["refreshToken"].as_str().unwrap().to_owned();
    assert_ne!(second_refresh, first_refresh);
    let (_, body) = gql(&app, None, REFRESH, json!({"token": first_refresh})).await;
    assert_eq!(code(&body), "UNAUTHENTICATED", "reuse is refused: {body}");
    let (_, body) = gql(&app, None, REFRESH, json!({"token": second_refresh})).await;
    assert_eq!(code(&body), "UNAUTHENTICATED", "and the family is revoked: {body}");

    // Logout ends a login.
    let (_, body) = gql(&app, None, LOGIN, credentials).await;
    let refresh = body["data"]["login"]["refreshToken"].as_str().unwrap().to_owned();
    let (_, body) = gql(&app, None, "mutation($t: String!) { logout(refreshToken: $t) }", json!({"t": refresh})).await;
    assert_eq!(body["data"]["logout"], true);
    let (_, body) = gql(&app, None, REFRESH, json!({"token": refresh})).await;
    assert_eq!(code(&body), "UNAUTHENTICATED");

    // Tokens that do not verify are refused with 401, never taken as anonymous.
    let (header, rest) = access.split_once('.').unwrap();
    let (claims, _signature) = rest.split_once('.').unwrap();
    let mut forged_claims: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(claims).unwrap()).unwrap();
    forged_claims["role"] = json!("OPS");
    let forged = format!("{header}.{}.{_signature}", URL_SAFE_NO_PAD.encode(forged_claims.to_string()));
    let unsigned = format!("{}.{claims}.", URL_SAFE_NO_PAD.encode(r#"{"alg":"none","typ":"JWT"}"#));
    for bad in [forged.as_str(), unsigned.as_str(), "not-a-jwt"] {
        let (status, body) = gql(&app, Some(bad), ME, json!({})).await;
        assert_eq!((status, code(&body)), (401, "UNAUTHENTICATED"), "{bad}: {body}");
    }

    // JWKS lists the key the access token names.
    let kid = serde_json::from_slice::<Value>(&URL_SAFE_NO_PAD.decode(header).unwrap()).unwrap()["kid"].clone();
    let jwks: Value = app.get("/.well-known/jwks.json").await.json().await.unwrap();
    assert!(jwks["keys"].as_array().unwrap().iter().any(|k| k["kid"] == kid), "{jwks}");

    // Roles: a driver may not list roaming partners; operations staff may.
    let (_, body) = gql(&app, Some(&access), "{ partners { id } }", json!({})).await;
    assert_eq!(code(&body), "FORBIDDEN", "{body}");
    let store = app.db().store().clone();
    tokio::task::spawn_blocking(move || {
        let accounts = emsp_accounts::Accounts::new(store, emsp_accounts::AuthConfig::default()).unwrap();
        accounts.create_user("ops@example.com", "operations password", None, emsp_accounts::Role::Ops).unwrap();
    })
    .await
    .unwrap();
    let (_, body) =
        gql(&app, None, LOGIN, json!({"email": "ops@example.com", "password": "operations password"})).await;
    let ops = body["data"]["login"]["accessToken"].as_str().unwrap().to_owned();
    let (_, body) = gql(&app, Some(&ops), "{ partners { id } }", json!({})).await;
    assert!(body["data"]["partners"].is_array(), "{body}");
    app.stop().await;
}

#[tokio::test]
async fn accounts_on_sqlite() {
    accounts_flow(TestBackend::Sqlite).await;
}

#[tokio::test]
async fn accounts_on_postgres() {
    accounts_flow(TestBackend::Postgres).await;
}

#[tokio::test]
async fn search_can_require_a_signed_in_user() {
    let db = TestApp::database(TestBackend::Sqlite).unwrap();
    let app = TestApp::start_configured(db, &[("EMSP_ANONYMOUS_SEARCH", "false")]).await;
    let query = "{ chargers(text: \"x\") { totalCount } }";
    let (_, body) = gql(&app, None, query, json!({})).await;
    assert_eq!(code(&body), "UNAUTHENTICATED");
    let (_, body) =
        gql(&app, None, REGISTER, json!({"email": "b@example.com", "password": "long enough password"})).await;
    let access = body["data"]["register"]["accessToken"].as_str().unwrap().to_owned();
    let (_, body) = gql(&app, Some(&access), query, json!({})).await;
    assert_eq!(body["data"]["chargers"]["totalCount"], 0, "{body}");
    app.stop().await;
}
