#![allow(clippy::unwrap_used, clippy::expect_used)]

//! The accounts service on a real store, on every backend: each case is a function of a `&Store`,
//! instantiated for SQLite and PostgreSQL (each PostgreSQL test in a schema of its own; skipped
//! without a `postgres://` `DATABASE_URL`).

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use emsp_accounts::{Accounts, AuthConfig, AuthError, Role};
use emsp_store::Store;
use serde_json::json;

macro_rules! on_every_backend {
    ($($case:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[test]
                fn $case() {
                    let db = emsp_store::testing::TestDb::sqlite();
                    super::$case(db.store());
                }
            )*
        }

        mod postgres {
            $(
                #[test]
                fn $case() {
                    let Some(db) = emsp_store::testing::TestDb::postgres() else { return };
                    super::$case(db.store());
                }
            )*
        }
    };
}

on_every_backend!(
    register_login_refresh_and_logout,
    a_wrong_password_and_an_unknown_email_fail_alike,
    an_email_is_taken_in_any_case,
    concurrent_sign_ups_with_one_email_create_one_account,
    weak_passwords_and_bad_emails_are_refused,
    a_token_signed_by_another_key_is_refused,
    an_alg_none_token_is_refused,
    another_audience_or_issuer_is_refused,
    refresh_reuse_revokes_the_whole_family,
    a_refresh_token_is_spent_once_under_concurrent_use,
    key_rotation_keeps_old_access_tokens_valid,
    a_disabled_user_cannot_log_in_or_refresh,
    staff_accounts_carry_their_role,
);

const PASSWORD: &str = "correct horse battery";

fn accounts(store: &Store) -> Accounts {
    Accounts::new(store.clone(), AuthConfig::default()).unwrap()
}

fn register_login_refresh_and_logout(store: &Store) {
    let accounts = accounts(store);
    let registered = accounts.register("Ada@Example.com", PASSWORD, Some(" Ada ")).unwrap();
    assert_eq!(registered.user.email, "ada@example.com");
    assert_eq!(registered.user.name.as_deref(), Some("Ada"));
    assert_eq!(registered.user.role, Role::Driver);
    assert_eq!(registered.expires_in, 900);
    let claims = accounts.verify(&registered.access_token).unwrap();
    assert_eq!(claims.sub, registered.user.id);
    assert_eq!(claims.role, Role::Driver);
    assert_eq!(claims.email, "ada@example.com");
    assert_eq!((claims.iss.as_str(), claims.aud.as_str()), ("emsp", "emsp-api"));
    assert_eq!(claims.exp - claims.iat, 900);
    assert_eq!(claims.nbf, claims.iat);
    assert_eq!(accounts.user(&claims.sub).unwrap(), Some(registered.user.clone()));
    assert_eq!(accounts.user("nobody").unwrap(), None);

    let login = accounts.login("  ADA@example.COM", PASSWORD).unwrap();
    assert_eq!(login.user, registered.user);
    assert_ne!(login.refresh_token, registered.refresh_token, "every login is a session of its own");

    let refreshed = accounts.refresh(&login.refresh_token).unwrap();
    assert_ne!(refreshed.refresh_token, login.refresh_token, "rotated on every use");
    assert_eq!(accounts.verify(&refreshed.access_token).unwrap().sub, registered.user.id);
    let again = accounts.refresh(&refreshed.refresh_token).unwrap();

    accounts.logout(&again.refresh_token).unwrap();
    assert!(matches!(accounts.refresh(&again.refresh_token), Err(AuthError::InvalidToken(_))));
    accounts.logout(&again.refresh_token).unwrap();
    accounts.logout("never-issued").unwrap();
    // Logout ends one session; the registration's session lives on.
    accounts.refresh(&registered.refresh_token).unwrap();
    assert!(matches!(accounts.refresh("never-issued"), Err(AuthError::InvalidToken(_))));
    assert_eq!(accounts.prune_expired_refresh_tokens().unwrap(), 0, "nothing has expired yet");
    let shown = format!("{again:?}");
    assert!(!shown.contains(&again.refresh_token) && !shown.contains(&again.access_token), "{shown}");
}

fn a_wrong_password_and_an_unknown_email_fail_alike(store: &Store) {
    let accounts = accounts(store);
    accounts.register("ada@example.com", PASSWORD, None).unwrap();
    let wrong = accounts.login("ada@example.com", "incorrect horse battery").unwrap_err();
    let unknown = accounts.login("bob@example.com", PASSWORD).unwrap_err();
    let malformed = accounts.login("not an email", PASSWORD).unwrap_err();
    let overlong = accounts.login("ada@example.com", &"x".repeat(10_000)).unwrap_err();
    for err in [&wrong, &unknown, &malformed, &overlong] {
        assert!(matches!(err, AuthError::InvalidCredentials), "{err:?}");
        assert_eq!(err.to_string(), "invalid email or password");
    }
}

fn an_email_is_taken_in_any_case(store: &Store) {
    let accounts = accounts(store);
    accounts.register("ada@example.com", PASSWORD, None).unwrap();
    assert!(matches!(accounts.register("ADA@example.com", PASSWORD, None), Err(AuthError::EmailTaken)));
    assert!(matches!(accounts.create_user("ada@EXAMPLE.com", PASSWORD, None, Role::Ops), Err(AuthError::EmailTaken)));
}

fn concurrent_sign_ups_with_one_email_create_one_account(store: &Store) {
    let accounts = accounts(store);
    let barrier = std::sync::Arc::new(std::sync::Barrier::new(4));
    let handles: Vec<_> = (0..4)
        .map(|i| {
            let accounts = accounts.clone();
            let barrier = barrier.clone();
            std::thread::spawn(move || {
                barrier.wait();
                accounts.register(if i % 2 == 0 { "ada@example.com" } else { "ADA@example.com" }, PASSWORD, None)
            })
        })
        .collect();
    let outcomes: Vec<_> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    assert_eq!(outcomes.iter().filter(|o| o.is_ok()).count(), 1, "{outcomes:?}");
    assert!(
        outcomes.iter().filter_map(|o| o.as_ref().err()).all(|e| matches!(e, AuthError::EmailTaken)),
        "{outcomes:?}"
    );
}

fn weak_passwords_and_bad_emails_are_refused(store: &Store) {
    let accounts = accounts(store);
    assert!(matches!(accounts.register("ada@example.com", "123456789", None), Err(AuthError::WeakPassword(_))));
    assert!(matches!(accounts.register("ada@example.com", &"p".repeat(129), None), Err(AuthError::WeakPassword(_))));
    assert!(matches!(accounts.register("ada-at-example.com", PASSWORD, None), Err(AuthError::InvalidEmail)));
    assert!(accounts.login("ada@example.com", PASSWORD).is_err(), "nothing was created");
}

fn a_token_signed_by_another_key_is_refused(store: &Store) {
    let accounts = accounts(store);
    let payload = accounts.register("ada@example.com", PASSWORD, None).unwrap();
    let claims = accounts.verify(&payload.access_token).unwrap();
    // An attacker's own Ed25519 key, presented under our key id.
    let attacker = ed25519_dalek::SigningKey::from_bytes(&[42u8; 32]);
    let der = ed25519_dalek::pkcs8::EncodePrivateKey::to_pkcs8_der(&attacker).unwrap();
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::EdDSA);
    header.kid = Some(accounts.signing_kid());
    let forged =
        jsonwebtoken::encode(&header, &claims, &jsonwebtoken::EncodingKey::from_ed_der(der.as_bytes())).unwrap();
    assert!(matches!(accounts.verify(&forged), Err(AuthError::InvalidToken(ref r)) if r == "bad signature"));
    // A whole other deployment (another store, so other keys) cannot mint tokens for this one.
    let other_db = emsp_store::testing::TestDb::sqlite();
    let other = Accounts::new(other_db.store().clone(), AuthConfig::default()).unwrap();
    let foreign = other.register("ada@example.com", PASSWORD, None).unwrap();
    assert!(matches!(accounts.verify(&foreign.access_token), Err(AuthError::InvalidToken(_))));
}

fn an_alg_none_token_is_refused(store: &Store) {
    let accounts = accounts(store);
    let payload = accounts.register("ada@example.com", PASSWORD, None).unwrap();
    let (_, rest) = payload.access_token.split_once('.').unwrap();
    let (claims, _signature) = rest.split_once('.').unwrap();
    for alg in ["none", "None", "NONE"] {
        let header =
            URL_SAFE_NO_PAD.encode(json!({"alg": alg, "typ": "JWT", "kid": accounts.signing_kid()}).to_string());
        for token in [format!("{header}.{claims}."), format!("{header}.{claims}")] {
            assert!(matches!(accounts.verify(&token), Err(AuthError::InvalidToken(_))), "{alg}: {token}");
        }
    }
}

fn another_audience_or_issuer_is_refused(store: &Store) {
    let accounts = accounts(store);
    // Same store, so the same signing key: only the claims differ.
    let other_audience =
        Accounts::new(store.clone(), AuthConfig { audience: "billing-api".into(), ..AuthConfig::default() }).unwrap();
    let other_issuer =
        Accounts::new(store.clone(), AuthConfig { issuer: "https://evil.example".into(), ..AuthConfig::default() })
            .unwrap();
    other_audience.register("ada@example.com", PASSWORD, None).unwrap();
    let for_billing = other_audience.login("ada@example.com", PASSWORD).unwrap();
    let from_evil = other_issuer.login("ada@example.com", PASSWORD).unwrap();
    assert!(
        matches!(accounts.verify(&for_billing.access_token), Err(AuthError::InvalidToken(ref r)) if r == "wrong audience")
    );
    assert!(
        matches!(accounts.verify(&from_evil.access_token), Err(AuthError::InvalidToken(ref r)) if r == "wrong issuer")
    );
    assert!(other_audience.verify(&for_billing.access_token).is_ok());
}

fn refresh_reuse_revokes_the_whole_family(store: &Store) {
    let accounts = accounts(store);
    let login = accounts.register("ada@example.com", PASSWORD, None).unwrap();
    let other_session = accounts.login("ada@example.com", PASSWORD).unwrap();
    let first = accounts.refresh(&login.refresh_token).unwrap();
    let second = accounts.refresh(&first.refresh_token).unwrap();
    // The stolen first token comes back: the family is revoked, the newest token too.
    assert!(matches!(accounts.refresh(&login.refresh_token), Err(AuthError::RefreshReused)));
    assert!(matches!(accounts.refresh(&second.refresh_token), Err(AuthError::InvalidToken(_))));
    assert!(matches!(accounts.refresh(&first.refresh_token), Err(AuthError::InvalidToken(_))));
    // Another login of the same user is another family and survives.
    accounts.refresh(&other_session.refresh_token).unwrap();
}

fn a_refresh_token_is_spent_once_under_concurrent_use(store: &Store) {
    let accounts = accounts(store);
    let login = accounts.register("ada@example.com", PASSWORD, None).unwrap();
    let barrier = std::sync::Arc::new(std::sync::Barrier::new(4));
    let handles: Vec<_> = (0..4)
        .map(|_| {
            let accounts = accounts.clone();
            let token = login.refresh_token.clone();
            let barrier = barrier.clone();
            std::thread::spawn(move || {
                barrier.wait();
                accounts.refresh(&token)
            })
        })
        .collect();
    let outcomes: Vec<_> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    assert_eq!(outcomes.iter().filter(|o| o.is_ok()).count(), 1, "{outcomes:?}");
    for outcome in &outcomes {
        if let Err(err) = outcome {
            assert!(matches!(err, AuthError::RefreshReused | AuthError::InvalidToken(_)), "{err:?}");
        }
    }
}

fn key_rotation_keeps_old_access_tokens_valid(store: &Store) {
    let accounts = accounts(store);
    let replica = Accounts::new(store.clone(), AuthConfig::default()).unwrap();
    let before = accounts.register("ada@example.com", PASSWORD, None).unwrap();
    let old_kid = accounts.signing_kid();
    assert_eq!(replica.signing_kid(), old_kid, "replicas share the stored key");

    accounts.rotate_keys().unwrap();
    let new_kid = accounts.signing_kid();
    assert_ne!(new_kid, old_kid);
    assert!(accounts.verify(&before.access_token).is_ok(), "tokens of the old key stay valid");
    let after = accounts.login("ada@example.com", PASSWORD).unwrap();
    let header = jsonwebtoken::decode_header(&after.access_token).unwrap();
    assert_eq!(header.kid.as_deref(), Some(new_kid.as_str()));
    assert_eq!(header.alg, jsonwebtoken::Algorithm::EdDSA);

    let jwks = accounts.jwks();
    let kids: Vec<&str> = jwks["keys"].as_array().unwrap().iter().map(|k| k["kid"].as_str().unwrap()).collect();
    assert_eq!(kids, vec![new_kid.as_str(), old_kid.as_str()], "current first, previous still published");
    for key in jwks["keys"].as_array().unwrap() {
        assert_eq!(key["kty"], "OKP");
        assert_eq!(key["crv"], "Ed25519");
        assert!(key.get("d").is_none(), "no private part");
    }

    // A replica that has not reloaded does not know the new key yet; after a reload it does,
    // and still accepts the old key's tokens.
    assert!(replica.verify(&after.access_token).is_err());
    replica.reload_keys().unwrap();
    assert!(replica.verify(&after.access_token).is_ok());
    assert!(replica.verify(&before.access_token).is_ok());
    assert_eq!(replica.signing_kid(), new_kid);

    // The JWKS is enough for a third party to check our tokens.
    let x = jwks["keys"][0]["x"].as_str().unwrap();
    let key = jsonwebtoken::DecodingKey::from_ed_components(x).unwrap();
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::EdDSA);
    validation.set_audience(&["emsp-api"]);
    jsonwebtoken::decode::<serde_json::Value>(&after.access_token, &key, &validation).unwrap();
}

fn a_disabled_user_cannot_log_in_or_refresh(store: &Store) {
    let accounts = accounts(store);
    let login = accounts.register("ada@example.com", PASSWORD, None).unwrap();
    assert!(accounts.set_disabled(&login.user.id, true).unwrap());
    assert!(matches!(accounts.login("ada@example.com", PASSWORD), Err(AuthError::Disabled)));
    assert!(
        matches!(accounts.login("ada@example.com", "incorrect horse battery"), Err(AuthError::InvalidCredentials)),
        "a wrong password does not learn that the account is disabled"
    );
    assert!(matches!(accounts.refresh(&login.refresh_token), Err(AuthError::InvalidToken(_))));
    assert!(accounts.set_disabled(&login.user.id, false).unwrap());
    accounts.login("ada@example.com", PASSWORD).unwrap();
    assert!(!accounts.set_disabled("nobody", true).unwrap());
}

fn staff_accounts_carry_their_role(store: &Store) {
    let accounts = accounts(store);
    let ops = accounts.create_user("ops@emsp.example", PASSWORD, Some("Night shift"), Role::Ops).unwrap();
    assert_eq!(ops.role, Role::Ops);
    let fleet = accounts.create_user("fleet@corp.example", PASSWORD, None, Role::FleetManager).unwrap();
    let login = accounts.login("ops@emsp.example", PASSWORD).unwrap();
    assert_eq!(accounts.verify(&login.access_token).unwrap().role, Role::Ops);
    let login = accounts.login("fleet@corp.example", PASSWORD).unwrap();
    let claims = accounts.verify(&login.access_token).unwrap();
    assert_eq!((claims.sub.as_str(), claims.role), (fleet.id.as_str(), Role::FleetManager));
    assert_eq!(Role::parse("fleet-manager"), Some(Role::FleetManager));
    assert_eq!(Role::FleetManager.as_str(), "FLEET_MANAGER");
}
