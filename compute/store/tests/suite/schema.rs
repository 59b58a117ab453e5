//! Schema versions: recorded, newer refused with both versions, a failed migration
//! leaves the database as it was.

use crate::Fixture;
use compute_store::{open_store, StoreError, SCHEMA_VERSION};

fn the_version_is_recorded_and_a_newer_one_refused(f: Fixture) {
    drop(f.store());
    assert_eq!(
        f.sql("SELECT version FROM schema_version"),
        SCHEMA_VERSION.to_string()
    );
    f.exec("UPDATE schema_version SET version = 7");
    let err = open_store(&f.location, crate::CIDR.parse().expect("cidr"))
        .err()
        .expect("refused");
    assert!(matches!(
        err,
        StoreError::SchemaTooNew {
            found: 7,
            known: SCHEMA_VERSION,
            ..
        }
    ));
    assert!(
        err.to_string()
            .contains("has schema version 7, newer than this binary knows (5): upgrade"),
        "{err}"
    );
    assert_eq!(
        f.sql("SELECT version FROM schema_version"),
        "7",
        "left alone"
    );
}

fn a_failed_migration_leaves_the_database_as_it_was(f: Fixture) {
    // Something in the way of version 2's tables makes the migration fail halfway.
    if f.db.is_none() {
        std::fs::create_dir_all(f.dir.path()).expect("dir");
    }
    f.exec("CREATE TABLE tombstones (x INTEGER)");
    let err = open_store(&f.location, crate::CIDR.parse().expect("cidr"))
        .err()
        .expect("fails");
    assert!(
        matches!(
            err,
            StoreError::Migration {
                from: 0,
                to: SCHEMA_VERSION,
                ..
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("it is left at version 0"), "{err}");
    let tables = match f.db {
        Some(_) => f.sql("SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY 1"),
        None => f.sql("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY 1"),
    };
    assert_eq!(tables, "tombstones", "nothing of versions 1 and 2 stayed");
    f.exec("DROP TABLE tombstones");
    let s = f.store();
    assert_eq!(
        s.flavors().expect("flavors").len(),
        5,
        "migrates once the way is clear"
    );
}

crate::both!(
    the_version_is_recorded_and_a_newer_one_refused,
    a_failed_migration_leaves_the_database_as_it_was,
);

fn processes_starting_at_once_migrate_once(f: Fixture) {
    let barrier = std::sync::Arc::new(std::sync::Barrier::new(4));
    let handles: Vec<_> = (0..4)
        .map(|_| {
            let location = f.location.clone();
            let barrier = barrier.clone();
            std::thread::spawn(move || {
                barrier.wait();
                open_store(&location, crate::CIDR.parse().expect("cidr"))
                    .map(drop)
                    .map_err(|e| {
                        let mut text = e.to_string();
                        let mut cause = std::error::Error::source(&e);
                        while let Some(c) = cause {
                            text.push_str(": ");
                            text.push_str(&c.to_string());
                            cause = c.source();
                        }
                        text
                    })
            })
        })
        .collect();
    for h in handles {
        h.join().expect("thread").expect("every opener succeeds");
    }
    assert_eq!(
        f.sql("SELECT version FROM schema_version"),
        SCHEMA_VERSION.to_string()
    );
    assert_eq!(f.sql("SELECT COUNT(*) FROM flavors"), "5");
}

crate::postgres_only!(processes_starting_at_once_migrate_once);
