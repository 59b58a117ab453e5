//! What only the SQLite backend has: WAL, and databases from before schema
//! versions were kept in a table (version 1, a generation counter, no hosts).

use super::*;
use crate::records::HostSpec;
use crate::{DocumentFeed, SqliteFeed};
use compute::placement::Resources;

fn open(dir: &Path) -> SqliteStore {
    SqliteStore::open(dir, "10.0.0.0/24".parse().expect("cidr")).expect("open store")
}

#[test]
fn the_database_is_in_wal_mode() {
    let dir = tempfile::tempdir().expect("tempdir");
    let s = open(dir.path());
    let mode: String = s
        .conn
        .pragma_query_value(None, "journal_mode", |r| r.get(0))
        .expect("mode");
    assert_eq!(mode, "wal");
}

#[test]
fn a_version_1_folder_is_migrated_and_its_host_adopts_its_instances() {
    let dir = tempfile::tempdir().expect("tempdir");
    {
        let conn = Connection::open(dir.path().join(DB_FILE)).expect("db");
        conn.execute_batch(schema::V1).expect("v1");
        conn.execute_batch(
            "PRAGMA user_version = 1;
             INSERT INTO meta (key, value) VALUES ('network_cidr', '10.0.0.0/24');
             INSERT INTO instances (uuid, name, flavor, image_id, vm_state, power_state,
                 fixed_ip, mac, document, created_at, updated_at)
             VALUES ('u1', 'old', '{\"name\":\"m1.small\",\"vcpus\":1,\"ram_mb\":2048,\"disk_gb\":20,\"swap_mb\":1}',
                 'img', 'active', 'running', '10.0.0.5', 'fa:16:3e:00:00:01', '{}', 't', 't');
             INSERT INTO keypairs (name, public_key, fingerprint) VALUES ('ops', 'ssh-ed25519 AAAA', 'aa');
             INSERT INTO flavors (name, vcpus, ram_mb, disk_gb) VALUES ('m1.tiny', 1, 512, 1), ('c1', 1, 64, 1);
             INSERT INTO images (id, name, format, size, virtual_size, checksum, has_kernel,
                 has_ramdisk, created_at) VALUES ('img', 'old', 'raw', 1, 1, 'x', 0, 0, 't');
             UPDATE meta SET value = '41' WHERE key = 'generation';",
        )
        .expect("v1 rows");
    }
    let s = open(dir.path());
    let rec = s.instance_by_uuid("u1").expect("kept");
    assert_eq!(rec.host, "", "no host yet");
    assert_eq!(
        (rec.project_id.as_str(), rec.user_id.as_str()),
        (crate::DEFAULT_PROJECT_ID, crate::OPERATOR_USER_ID),
        "the default project adopts what there was"
    );
    let kp = s
        .keypair(crate::OPERATOR_USER_ID, "ops")
        .expect("the operator's");
    assert_eq!(kp.keypair.fingerprint, "aa");
    assert_eq!(
        s.flavor_record("1").expect("Nova's id").flavor.name,
        "m1.tiny"
    );
    let custom = s.flavor_record("c1").expect("by name");
    assert_eq!((custom.id.as_str(), custom.is_public), ("c1", true));
    let image = s.image("img").expect("kept");
    assert_eq!(
        (image.owner.as_str(), image.visibility),
        (crate::DEFAULT_PROJECT_ID, crate::Visibility::Public)
    );
    assert_eq!(
        s.roles_of(crate::OPERATOR_USER_ID, crate::DEFAULT_PROJECT_ID)
            .expect("roles"),
        vec![crate::Role::Admin]
    );
    assert_eq!(rec.rev, 41, "revisions start where the generation was");
    let mut feed = SqliteFeed::open(dir.path()).expect("feed");
    assert_eq!(feed.rev().expect("rev"), 41);
    s.register_host(&HostSpec {
        name: "here".into(),
        capacity: Resources {
            vcpus: 2,
            ram_mb: 4096,
            disk_gb: 50,
        },
        ratios: None,
    })
    .expect("register");
    let rec = s.instance_by_uuid("u1").expect("adopted");
    assert_eq!(rec.host, "here");
    assert_eq!(rec.rev, 42);
    let used = s.host("here").expect("host").used;
    assert_eq!(
        used,
        Resources {
            vcpus: 1,
            ram_mb: 2048,
            disk_gb: 21
        },
        "usage from the flavor, swap rounded up"
    );
}
