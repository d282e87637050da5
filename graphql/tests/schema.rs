//! The contract with the apps: the checked-in SDL must match the server's schema. After a
//! deliberate change, regenerate it with `UPDATE_SCHEMA=1 cargo test -p emsp-graphql --test schema`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[test]
fn schema_graphql_matches_the_server() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/schema.graphql");
    let current = emsp_graphql::sdl();
    if std::env::var("UPDATE_SCHEMA").is_ok_and(|v| v == "1") {
        std::fs::write(path, &current).unwrap();
    }
    let checked_in = std::fs::read_to_string(path).unwrap_or_default();
    assert!(
        checked_in == current,
        "graphql/schema.graphql differs from the server's schema; if the change is meant, run UPDATE_SCHEMA=1 cargo test -p emsp-graphql --test schema and commit the file"
    );
}
