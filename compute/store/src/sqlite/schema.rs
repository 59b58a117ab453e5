//! The SQLite schema and its migrations, one per version, applied in one
//! `BEGIN IMMEDIATE` transaction (SQLite serializes writers, so two processes opening
//! a fresh folder at once migrate it once).
//!
//! The version is the one row of `schema_version` (a database from before that table
//! kept it in `PRAGMA user_version`, which is still written for SQLite's tools).
//! Version 2 replaced the generation counter with the revision counter (`revision`,
//! starting where the generation was): the triggers here give every instance insert
//! and update the next revision and turn every deletion into a tombstone, all in the
//! writing transaction.

use crate::StoreError;
use rusqlite::{Connection, OptionalExtension, TransactionBehavior};

/// Version 1: flavors, images, keypairs, instances, and the generation counter.
pub(super) const V1: &str = r#"
CREATE TABLE IF NOT EXISTS meta (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
INSERT OR IGNORE INTO meta (key, value) VALUES ('generation', '0');
CREATE TABLE IF NOT EXISTS flavors (
    name TEXT PRIMARY KEY,
    vcpus INTEGER NOT NULL,
    ram_mb INTEGER NOT NULL,
    disk_gb INTEGER NOT NULL,
    ephemeral_gb INTEGER NOT NULL DEFAULT 0,
    swap_mb INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS images (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    format TEXT NOT NULL,
    size INTEGER NOT NULL,
    virtual_size INTEGER NOT NULL,
    checksum TEXT NOT NULL,
    has_kernel INTEGER NOT NULL,
    has_ramdisk INTEGER NOT NULL,
    cmdline TEXT,
    created_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS images_name ON images (name);
CREATE TABLE IF NOT EXISTS keypairs (
    name TEXT PRIMARY KEY,
    public_key TEXT NOT NULL,
    fingerprint TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS instances (
    uuid TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    flavor TEXT NOT NULL,
    image_id TEXT NOT NULL,
    key_name TEXT,
    vm_state TEXT NOT NULL,
    task_state TEXT,
    power_state TEXT NOT NULL,
    fixed_ip TEXT NOT NULL UNIQUE,
    mac TEXT NOT NULL UNIQUE,
    ssh_port INTEGER,
    pid INTEGER,
    fault TEXT,
    document TEXT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS instances_name ON instances (name);
CREATE INDEX IF NOT EXISTS instances_image ON instances (image_id);
CREATE TRIGGER IF NOT EXISTS instances_gen_ins AFTER INSERT ON instances BEGIN
    UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key = 'generation';
END;
CREATE TRIGGER IF NOT EXISTS instances_gen_upd AFTER UPDATE ON instances BEGIN
    UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key = 'generation';
END;
CREATE TRIGGER IF NOT EXISTS instances_gen_del AFTER DELETE ON instances BEGIN
    UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key = 'generation';
END;
"#;

/// Version 2: revisions and tombstones, hosts and placement, passwords, work.
/// Instances from before hosts existed get host '' until the folder's one host is
/// registered (it adopts them).
const V2: &str = r#"
CREATE TABLE revision (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    rev INTEGER NOT NULL,
    purged_rev INTEGER NOT NULL DEFAULT 0
);
INSERT INTO revision (id, rev)
    SELECT 1, COALESCE((SELECT CAST(value AS INTEGER) FROM meta WHERE key = 'generation'), 0);
DELETE FROM meta WHERE key = 'generation';
DROP TRIGGER instances_gen_ins;
DROP TRIGGER instances_gen_upd;
DROP TRIGGER instances_gen_del;

CREATE TABLE hosts (
    name TEXT PRIMARY KEY,
    vcpus INTEGER NOT NULL,
    ram_mb INTEGER NOT NULL,
    disk_gb INTEGER NOT NULL,
    cpu_ratio REAL NOT NULL DEFAULT 16.0,
    ram_ratio REAL NOT NULL DEFAULT 1.5,
    disk_ratio REAL NOT NULL DEFAULT 1.0,
    enabled INTEGER NOT NULL DEFAULT 1,
    disabled_reason TEXT,
    heartbeat_at TEXT,
    created_at TEXT NOT NULL
);

ALTER TABLE instances ADD COLUMN host TEXT NOT NULL DEFAULT '';
ALTER TABLE instances ADD COLUMN vcpus INTEGER NOT NULL DEFAULT 0;
ALTER TABLE instances ADD COLUMN ram_mb INTEGER NOT NULL DEFAULT 0;
ALTER TABLE instances ADD COLUMN disk_gb INTEGER NOT NULL DEFAULT 0;
ALTER TABLE instances ADD COLUMN password TEXT;
ALTER TABLE instances ADD COLUMN rev INTEGER NOT NULL DEFAULT 0;
UPDATE instances SET
    vcpus = json_extract(flavor, '$.vcpus'),
    ram_mb = json_extract(flavor, '$.ram_mb'),
    disk_gb = json_extract(flavor, '$.disk_gb')
        + COALESCE(json_extract(flavor, '$.ephemeral_gb'), 0)
        + (COALESCE(json_extract(flavor, '$.swap_mb'), 0) + 1023) / 1024,
    rev = (SELECT rev FROM revision);
CREATE INDEX instances_rev ON instances (rev);
CREATE INDEX instances_host ON instances (host);

CREATE TABLE tombstones (
    uuid TEXT PRIMARY KEY,
    host TEXT NOT NULL,
    rev INTEGER NOT NULL,
    deleted_at TEXT NOT NULL
);
CREATE INDEX tombstones_rev ON tombstones (rev);

CREATE TRIGGER instances_rev_ins AFTER INSERT ON instances BEGIN
    UPDATE revision SET rev = rev + 1;
    UPDATE instances SET rev = (SELECT rev FROM revision) WHERE uuid = NEW.uuid;
    DELETE FROM tombstones WHERE uuid = NEW.uuid;
END;
CREATE TRIGGER instances_rev_upd AFTER UPDATE ON instances WHEN NEW.rev = OLD.rev BEGIN
    UPDATE revision SET rev = rev + 1;
    UPDATE instances SET rev = (SELECT rev FROM revision) WHERE uuid = NEW.uuid;
END;
CREATE TRIGGER instances_rev_del AFTER DELETE ON instances BEGIN
    UPDATE revision SET rev = rev + 1;
    INSERT OR REPLACE INTO tombstones (uuid, host, rev, deleted_at)
        VALUES (OLD.uuid, OLD.host, (SELECT rev FROM revision), strftime('%Y-%m-%dT%H:%M:%fZ', 'now'));
END;

CREATE TABLE work (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    host TEXT NOT NULL,
    uuid TEXT NOT NULL,
    action TEXT NOT NULL,
    args TEXT NOT NULL,
    state TEXT NOT NULL DEFAULT 'queued',
    outcome TEXT,
    created_at TEXT NOT NULL,
    started_at TEXT,
    finished_at TEXT
);
CREATE INDEX work_queue ON work (host, state, id);
"#;

/// Version 3: PostgreSQL's keeps image files in the database for every host; a state
/// folder keeps them beside its database (`images/<id>/`), so nothing changes here.
const V3: &str = "-- image files stay in the state folder";

/// Version 4: ownership and identity. Projects, users (argon2 password hashes) and
/// their role assignments, with the default project and the operator (its admin,
/// who the command line acts as); instances get their project and user (existing
/// ones: the default project's operator), images an owner and a visibility
/// (existing ones: the default project's, public), keypairs become per user (the
/// existing ones the operator's), flavors get Nova's id (`1` to `5` for the
/// defaults, the name for custom ones), whether they are public, a description and
/// extra specs.
const V4: &str = r#"
CREATE TABLE projects (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    description TEXT,
    enabled INTEGER NOT NULL DEFAULT 1,
    created_at TEXT NOT NULL
);
CREATE TABLE users (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    password_hash TEXT,
    enabled INTEGER NOT NULL DEFAULT 1,
    created_at TEXT NOT NULL
);
CREATE TABLE role_assignments (
    user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    project_id TEXT NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    role TEXT NOT NULL,
    PRIMARY KEY (user_id, project_id, role)
);
INSERT INTO projects (id, name, description, created_at) VALUES ('default', 'default',
    'What the compute command line makes, and every record from before projects',
    strftime('%Y-%m-%dT%H:%M:%SZ', 'now'));
INSERT INTO users (id, name, password_hash, created_at) VALUES ('operator', 'operator', NULL,
    strftime('%Y-%m-%dT%H:%M:%SZ', 'now'));
INSERT INTO role_assignments (user_id, project_id, role) VALUES ('operator', 'default', 'admin');

ALTER TABLE instances ADD COLUMN project_id TEXT NOT NULL DEFAULT 'default';
ALTER TABLE instances ADD COLUMN user_id TEXT NOT NULL DEFAULT 'operator';
CREATE INDEX instances_project ON instances (project_id);

ALTER TABLE images ADD COLUMN owner TEXT NOT NULL DEFAULT 'default';
ALTER TABLE images ADD COLUMN visibility TEXT NOT NULL DEFAULT 'public';

CREATE TABLE keypairs_v4 (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id TEXT NOT NULL,
    name TEXT NOT NULL,
    public_key TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    created_at TEXT NOT NULL,
    UNIQUE (user_id, name)
);
INSERT INTO keypairs_v4 (user_id, name, public_key, fingerprint, created_at)
    SELECT 'operator', name, public_key, fingerprint, strftime('%Y-%m-%dT%H:%M:%SZ', 'now')
    FROM keypairs ORDER BY name;
DROP TABLE keypairs;
ALTER TABLE keypairs_v4 RENAME TO keypairs;

ALTER TABLE flavors ADD COLUMN flavorid TEXT;
UPDATE flavors SET flavorid = CASE name
    WHEN 'm1.tiny' THEN '1' WHEN 'm1.small' THEN '2' WHEN 'm1.medium' THEN '3'
    WHEN 'm1.large' THEN '4' WHEN 'm1.xlarge' THEN '5' ELSE name END;
CREATE UNIQUE INDEX flavors_flavorid ON flavors (flavorid);
ALTER TABLE flavors ADD COLUMN is_public INTEGER NOT NULL DEFAULT 1;
ALTER TABLE flavors ADD COLUMN description TEXT;
CREATE TABLE flavor_extra_specs (
    flavorid TEXT NOT NULL,
    key TEXT NOT NULL,
    value TEXT NOT NULL,
    PRIMARY KEY (flavorid, key)
);
"#;

/// Version 5: the Image API's records (what Glance knows beyond `images`: queued,
/// saving and killed images, formats, MD5 and SHA-512, visibility, protection, tags
/// and properties), which lived as JSON files in `STATE/api/images/` before (the
/// API moves those in when it starts). `tags` and `properties` are JSON text.
/// And the indexes a page of instances is read from (`Store::instance_page`).
const V5: &str = r#"
CREATE TABLE image_records (
    id TEXT PRIMARY KEY,
    name TEXT,
    disk_format TEXT,
    container_format TEXT,
    visibility TEXT NOT NULL,
    owner TEXT NOT NULL,
    min_disk INTEGER NOT NULL DEFAULT 0,
    min_ram INTEGER NOT NULL DEFAULT 0,
    protected INTEGER NOT NULL DEFAULT 0,
    tags TEXT NOT NULL DEFAULT '[]',
    properties TEXT NOT NULL DEFAULT '{}',
    status TEXT NOT NULL,
    size INTEGER,
    checksum TEXT,
    os_hash_value TEXT,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    uploader TEXT,
    lease_until TEXT
);
CREATE INDEX image_records_status ON image_records (status);
-- A page of a list (newest first, of a project or all) is read from these.
CREATE INDEX instances_page ON instances (created_at, uuid);
CREATE INDEX instances_project_page ON instances (project_id, created_at, uuid);
"#;

/// Each version's migration, in order: `MIGRATIONS[i]` takes version `i` to `i + 1`.
const MIGRATIONS: [&str; 5] = [V1, V2, V3, V4, V5];

/// The version a database holds: `schema_version`, else the legacy user_version.
pub fn version(conn: &Connection) -> rusqlite::Result<i64> {
    let has_table: Option<i64> = conn
        .query_row(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_version'",
            [],
            |r| r.get(0),
        )
        .optional()?;
    if has_table.is_some() {
        return conn.query_row("SELECT version FROM schema_version", [], |r| r.get(0));
    }
    conn.pragma_query_value(None, "user_version", |r| r.get(0))
}

/// Brings the database to [`crate::SCHEMA_VERSION`] in one transaction, running
/// `first_use` inside it when the database was empty; refuses a newer one.
pub fn migrate(
    conn: &mut Connection,
    location: &str,
    first_use: impl FnOnce(&rusqlite::Transaction<'_>) -> Result<(), StoreError>,
) -> Result<(), StoreError> {
    let known = crate::SCHEMA_VERSION;
    let open_err = |source: rusqlite::Error| StoreError::Open {
        location: location.to_owned(),
        source: Box::new(source),
    };
    let found = version(conn).map_err(open_err)?;
    if found == known {
        return Ok(());
    }
    if found > known {
        return Err(StoreError::SchemaTooNew {
            location: location.to_owned(),
            found,
            known,
        });
    }
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(open_err)?;
    // Another process may have migrated it while this one waited for the lock.
    let found = version(&tx).map_err(open_err)?;
    if found > known {
        return Err(StoreError::SchemaTooNew {
            location: location.to_owned(),
            found,
            known,
        });
    }
    let failed = |source: rusqlite::Error| StoreError::Migration {
        location: location.to_owned(),
        from: found,
        to: known,
        source: Box::new(source),
    };
    for sql in MIGRATIONS.iter().skip(found.max(0) as usize) {
        tx.execute_batch(sql).map_err(failed)?;
    }
    if found == 0 {
        first_use(&tx)?;
    }
    tx.execute_batch(
        "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL);
         DELETE FROM schema_version;",
    )
    .map_err(failed)?;
    tx.execute("INSERT INTO schema_version (version) VALUES (?1)", [known])
        .map_err(failed)?;
    tx.pragma_update(None, "user_version", known)
        .map_err(failed)?;
    tx.commit().map_err(failed)?;
    tracing::info!(
        location,
        from = found,
        to = known,
        "database schema migrated"
    );
    Ok(())
}
