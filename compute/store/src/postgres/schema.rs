//! The PostgreSQL schema and its migrations, the same versions and meaning as
//! SQLite's (`crate::sqlite` keeps the other copy; types differ where the engines
//! do: BIGINT for every count, BOOLEAN, TIMESTAMPTZ for the database's own clock).
//!
//! A migration runs in one transaction under an advisory lock, so that two hosts
//! starting at once migrate once, and a failure leaves the previous version whole
//! (PostgreSQL's DDL is transactional). The version is the one row of
//! `schema_version`.

use crate::StoreError;
use postgres::{Client, GenericClient, Transaction};

/// The advisory lock key of migrations (any constant; "compute" in ASCII).
const MIGRATION_LOCK: i64 = 0x0063_6f6d_7075_7465;

/// Version 1: flavors, images, keypairs, instances.
const V1: &str = r#"
CREATE TABLE meta (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
INSERT INTO meta (key, value) VALUES ('generation', '0');
CREATE TABLE flavors (
    name TEXT PRIMARY KEY,
    vcpus BIGINT NOT NULL,
    ram_mb BIGINT NOT NULL,
    disk_gb BIGINT NOT NULL,
    ephemeral_gb BIGINT NOT NULL DEFAULT 0,
    swap_mb BIGINT NOT NULL DEFAULT 0
);
CREATE TABLE images (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    format TEXT NOT NULL,
    size BIGINT NOT NULL,
    virtual_size BIGINT NOT NULL,
    checksum TEXT NOT NULL,
    has_kernel BOOLEAN NOT NULL,
    has_ramdisk BOOLEAN NOT NULL,
    cmdline TEXT,
    created_at TEXT NOT NULL
);
CREATE INDEX images_name ON images (name);
CREATE TABLE keypairs (
    name TEXT PRIMARY KEY,
    public_key TEXT NOT NULL,
    fingerprint TEXT NOT NULL
);
CREATE TABLE instances (
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
    ssh_port BIGINT,
    pid BIGINT,
    fault TEXT,
    document TEXT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE INDEX instances_name ON instances (name);
CREATE INDEX instances_image ON instances (image_id);
"#;

/// Version 2: revisions and tombstones (one trigger, which also notifies), hosts and
/// placement, passwords, work.
const V2: &str = r#"
CREATE TABLE revision (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    rev BIGINT NOT NULL,
    purged_rev BIGINT NOT NULL DEFAULT 0
);
INSERT INTO revision (id, rev)
    SELECT 1, COALESCE((SELECT value::BIGINT FROM meta WHERE key = 'generation'), 0);
DELETE FROM meta WHERE key = 'generation';

CREATE TABLE hosts (
    name TEXT PRIMARY KEY,
    vcpus BIGINT NOT NULL,
    ram_mb BIGINT NOT NULL,
    disk_gb BIGINT NOT NULL,
    cpu_ratio DOUBLE PRECISION NOT NULL DEFAULT 16.0,
    ram_ratio DOUBLE PRECISION NOT NULL DEFAULT 1.5,
    disk_ratio DOUBLE PRECISION NOT NULL DEFAULT 1.0,
    enabled BOOLEAN NOT NULL DEFAULT TRUE,
    disabled_reason TEXT,
    heartbeat_at TIMESTAMPTZ,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now()
);

ALTER TABLE instances
    ADD COLUMN host TEXT NOT NULL DEFAULT '',
    ADD COLUMN vcpus BIGINT NOT NULL DEFAULT 0,
    ADD COLUMN ram_mb BIGINT NOT NULL DEFAULT 0,
    ADD COLUMN disk_gb BIGINT NOT NULL DEFAULT 0,
    ADD COLUMN password TEXT,
    ADD COLUMN rev BIGINT NOT NULL DEFAULT 0;
UPDATE instances SET
    vcpus = (flavor::jsonb ->> 'vcpus')::BIGINT,
    ram_mb = (flavor::jsonb ->> 'ram_mb')::BIGINT,
    disk_gb = (flavor::jsonb ->> 'disk_gb')::BIGINT
        + COALESCE((flavor::jsonb ->> 'ephemeral_gb')::BIGINT, 0)
        + (COALESCE((flavor::jsonb ->> 'swap_mb')::BIGINT, 0) + 1023) / 1024,
    rev = (SELECT rev FROM revision);
CREATE INDEX instances_rev ON instances (rev);
CREATE INDEX instances_host ON instances (host);

CREATE TABLE tombstones (
    uuid TEXT PRIMARY KEY,
    host TEXT NOT NULL,
    rev BIGINT NOT NULL,
    deleted_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX tombstones_rev ON tombstones (rev);

-- The next revision. The row lock it takes is held to the end of the transaction:
-- writers of instances commit one after the other, in revision order.
CREATE FUNCTION compute_next_rev() RETURNS BIGINT LANGUAGE sql AS $$
    UPDATE revision SET rev = rev + 1 WHERE id = 1 RETURNING rev
$$;

CREATE FUNCTION compute_instance_changed() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    r BIGINT := compute_next_rev();
BEGIN
    IF TG_OP = 'DELETE' THEN
        INSERT INTO tombstones (uuid, host, rev) VALUES (OLD.uuid, OLD.host, r)
            ON CONFLICT (uuid) DO UPDATE
            SET host = EXCLUDED.host, rev = EXCLUDED.rev, deleted_at = now();
        PERFORM pg_notify('compute_changes', r::TEXT || ' ' || OLD.host);
        RETURN OLD;
    END IF;
    IF TG_OP = 'INSERT' THEN
        DELETE FROM tombstones WHERE uuid = NEW.uuid;
    END IF;
    NEW.rev := r;
    PERFORM pg_notify('compute_changes', r::TEXT || ' ' || NEW.host);
    RETURN NEW;
END
$$;

CREATE TRIGGER instances_changed BEFORE INSERT OR UPDATE OR DELETE ON instances
    FOR EACH ROW EXECUTE FUNCTION compute_instance_changed();

CREATE TABLE work (
    id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    host TEXT NOT NULL,
    uuid TEXT NOT NULL,
    action TEXT NOT NULL,
    args TEXT NOT NULL,
    state TEXT NOT NULL DEFAULT 'queued',
    outcome TEXT,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    started_at TIMESTAMPTZ,
    finished_at TIMESTAMPTZ
);
CREATE INDEX work_queue ON work (host, state, id);

CREATE FUNCTION compute_work_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('compute_work', NEW.id::TEXT || ' ' || NEW.host || ' ' || NEW.state);
    RETURN NEW;
END
$$;

CREATE TRIGGER work_changed AFTER INSERT OR UPDATE OF state ON work
    FOR EACH ROW EXECUTE FUNCTION compute_work_changed();
"#;

/// Version 3: image files in the database, so that every host can fetch what it
/// boots: each file's size and SHA-256, and its bytes in chunks of
/// [`super::images::CHUNK`] (going with their image).
const V3: &str = r#"
CREATE TABLE image_files (
    image_id TEXT NOT NULL REFERENCES images (id) ON DELETE CASCADE,
    part TEXT NOT NULL,
    size BIGINT NOT NULL,
    sha256 TEXT NOT NULL,
    PRIMARY KEY (image_id, part)
);
CREATE TABLE image_chunks (
    image_id TEXT NOT NULL,
    part TEXT NOT NULL,
    seq BIGINT NOT NULL,
    bytes BYTEA NOT NULL,
    PRIMARY KEY (image_id, part, seq),
    FOREIGN KEY (image_id, part) REFERENCES image_files (image_id, part) ON DELETE CASCADE
);
"#;

/// Version 4: ownership and identity, as SQLite's version 4 (see there).
const V4: &str = r#"
CREATE TABLE projects (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    description TEXT,
    enabled BOOLEAN NOT NULL DEFAULT TRUE,
    created_at TEXT NOT NULL
);
CREATE TABLE users (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    password_hash TEXT,
    enabled BOOLEAN NOT NULL DEFAULT TRUE,
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
    to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'));
INSERT INTO users (id, name, password_hash, created_at) VALUES ('operator', 'operator', NULL,
    to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'));
INSERT INTO role_assignments (user_id, project_id, role) VALUES ('operator', 'default', 'admin');

ALTER TABLE instances
    ADD COLUMN project_id TEXT NOT NULL DEFAULT 'default',
    ADD COLUMN user_id TEXT NOT NULL DEFAULT 'operator';
CREATE INDEX instances_project ON instances (project_id);

ALTER TABLE images
    ADD COLUMN owner TEXT NOT NULL DEFAULT 'default',
    ADD COLUMN visibility TEXT NOT NULL DEFAULT 'public';

CREATE TABLE keypairs_v4 (
    id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    user_id TEXT NOT NULL,
    name TEXT NOT NULL,
    public_key TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    created_at TEXT NOT NULL,
    UNIQUE (user_id, name)
);
INSERT INTO keypairs_v4 (user_id, name, public_key, fingerprint, created_at)
    SELECT 'operator', name, public_key, fingerprint,
        to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"')
    FROM keypairs ORDER BY name;
DROP TABLE keypairs;
ALTER TABLE keypairs_v4 RENAME TO keypairs;

ALTER TABLE flavors ADD COLUMN flavorid TEXT;
UPDATE flavors SET flavorid = CASE name
    WHEN 'm1.tiny' THEN '1' WHEN 'm1.small' THEN '2' WHEN 'm1.medium' THEN '3'
    WHEN 'm1.large' THEN '4' WHEN 'm1.xlarge' THEN '5' ELSE name END;
ALTER TABLE flavors
    ALTER COLUMN flavorid SET NOT NULL,
    ADD CONSTRAINT flavors_flavorid UNIQUE (flavorid),
    ADD COLUMN is_public BOOLEAN NOT NULL DEFAULT TRUE,
    ADD COLUMN description TEXT;
CREATE TABLE flavor_extra_specs (
    flavorid TEXT NOT NULL,
    key TEXT NOT NULL,
    value TEXT NOT NULL,
    PRIMARY KEY (flavorid, key)
);
"#;

/// Version 5: the Image API's records, as SQLite's version 5 (see there).
const V5: &str = r#"
CREATE TABLE image_records (
    id TEXT PRIMARY KEY,
    name TEXT,
    disk_format TEXT,
    container_format TEXT,
    visibility TEXT NOT NULL,
    owner TEXT NOT NULL,
    min_disk BIGINT NOT NULL DEFAULT 0,
    min_ram BIGINT NOT NULL DEFAULT 0,
    protected BOOLEAN NOT NULL DEFAULT FALSE,
    tags TEXT NOT NULL DEFAULT '[]',
    properties TEXT NOT NULL DEFAULT '{}',
    status TEXT NOT NULL,
    size BIGINT,
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

/// The version a database holds (0: empty).
pub fn version(c: &mut impl GenericClient) -> Result<i64, postgres::Error> {
    let exists: bool = c
        .query_one("SELECT to_regclass('schema_version') IS NOT NULL", &[])?
        .try_get(0)?;
    if !exists {
        return Ok(0);
    }
    let row = c.query_opt("SELECT version FROM schema_version", &[])?;
    match row {
        Some(r) => r.try_get(0),
        None => Ok(0),
    }
}

/// Brings the database to [`crate::SCHEMA_VERSION`], running `first_use` in the same
/// transaction when it was empty; refuses a newer one.
pub fn migrate(
    c: &mut Client,
    location: &str,
    first_use: impl FnOnce(&mut Transaction<'_>) -> Result<(), StoreError>,
) -> Result<(), StoreError> {
    let known = crate::SCHEMA_VERSION;
    let too_new = |found| StoreError::SchemaTooNew {
        location: location.to_owned(),
        found,
        known,
    };
    let found = version(c)?;
    if found == known {
        return Ok(());
    }
    if found > known {
        return Err(too_new(found));
    }
    // The lock is the session's, taken before the transaction starts: a process
    // that waited for it must look at the catalog afresh, and PostgreSQL only takes
    // in other sessions' catalog changes at a transaction's start (a table another
    // migrator made while this one waited inside its transaction stays unseen).
    c.execute("SELECT pg_advisory_lock($1)", &[&MIGRATION_LOCK])?;
    let migrated = migrate_locked(c, location, first_use);
    let unlocked = c.execute("SELECT pg_advisory_unlock($1)", &[&MIGRATION_LOCK]);
    migrated?;
    unlocked?;
    Ok(())
}

/// [`migrate`] once its lock is held.
fn migrate_locked(
    c: &mut Client,
    location: &str,
    first_use: impl FnOnce(&mut Transaction<'_>) -> Result<(), StoreError>,
) -> Result<(), StoreError> {
    let known = crate::SCHEMA_VERSION;
    let too_new = |found| StoreError::SchemaTooNew {
        location: location.to_owned(),
        found,
        known,
    };
    let mut tx = c.transaction()?;
    let found = version(&mut tx)?;
    if found >= known {
        return if found > known {
            Err(too_new(found))
        } else {
            Ok(())
        };
    }
    let failed = |e: postgres::Error| StoreError::Migration {
        location: location.to_owned(),
        from: found,
        to: known,
        source: Box::new(e),
    };
    for sql in MIGRATIONS.iter().skip(found.max(0) as usize) {
        tx.batch_execute(sql).map_err(failed)?;
    }
    if found == 0 {
        first_use(&mut tx)?;
    }
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS schema_version (version BIGINT NOT NULL);
         DELETE FROM schema_version;",
    )
    .map_err(failed)?;
    tx.execute(
        "INSERT INTO schema_version (version) VALUES ($1)",
        &[&known],
    )
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
