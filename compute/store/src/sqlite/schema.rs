//! The database schema and its one migration. Triggers keep `generation` moving on
//! every change to an instance, in the same transaction, so readers (the metadata
//! server) can tell cheaply whether anything changed.

pub const SCHEMA_VERSION: i64 = 1;

pub const SCHEMA: &str = r#"
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
