//! The standard resource classes and traits: synced once, idempotently,
//! even when several processes start together on one empty database.

use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use placement::server;
use placement::storage::Database;

use crate::support::{Count, TestDatabase};

fn count(connection: &mut diesel::PgConnection, table: &str) -> i64 {
    diesel::sql_query(format!("SELECT count(*) AS count FROM {table}"))
        .get_result::<Count>(connection)
        .map(|row| row.count)
        .unwrap_or(-1)
}

#[test]
fn racing_start_ups_on_an_empty_database_sync_exactly_once() {
    let database = TestDatabase::new();
    // Start from an empty database: drop what the template brought.
    {
        let mut connection = database.connection();
        connection
            .batch_execute("DROP SCHEMA public CASCADE; CREATE SCHEMA public;")
            .expect("empty the database");
    }
    let url = database.url();
    let starters: Vec<_> = (0..4)
        .map(|_| {
            let url = url.clone();
            std::thread::spawn(move || {
                let db = Database::connect(&url, 1).map_err(|error| error.to_string())?;
                server::prepare_database(&db, true).map_err(|error| error.to_string())
            })
        })
        .collect();
    for starter in starters {
        let outcome = starter.join().expect("starter thread");
        assert_eq!(outcome, Ok(()));
    }
    let mut connection = database.connection();
    assert_eq!(count(&mut connection, "resource_classes"), 21);
    assert_eq!(count(&mut connection, "traits"), 377);
    let ids: Vec<(i32, String)> =
        diesel::sql_query("SELECT id, name FROM resource_classes ORDER BY id")
            .load::<ClassRow>(&mut connection)
            .expect("classes")
            .into_iter()
            .map(|row| (row.id, row.name))
            .collect();
    assert_eq!(ids[0], (0, "VCPU".to_owned()));
    assert_eq!(
        ids[20],
        (20, "NET_PACKET_RATE_IGR_KILOPACKET_PER_SEC".to_owned())
    );
}

#[derive(QueryableByName)]
struct ClassRow {
    #[diesel(sql_type = diesel::sql_types::Integer)]
    id: i32,
    #[diesel(sql_type = diesel::sql_types::Text)]
    name: String,
}

#[test]
fn two_processes_migrating_one_empty_database_at_once_both_succeed() {
    let database = TestDatabase::new();
    {
        let mut connection = database.connection();
        connection
            .batch_execute("DROP SCHEMA public CASCADE; CREATE SCHEMA public;")
            .expect("empty the database");
    }
    let spawn = || {
        std::process::Command::new(env!("CARGO_BIN_EXE_placement"))
            .arg("migrate")
            .env("DATABASE_URL", database.url())
            .env("PLACEMENT_LOG", "warn")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("start placement migrate")
    };
    let first = spawn();
    let second = spawn();
    for child in [first, second] {
        let output = child
            .wait_with_output()
            .expect("wait for placement migrate");
        assert!(
            output.status.success(),
            "migrate failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let mut connection = database.connection();
    assert_eq!(count(&mut connection, "resource_classes"), 21);
    assert_eq!(count(&mut connection, "traits"), 377);
}
