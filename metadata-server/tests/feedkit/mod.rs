//! Compute's store as the feed tests drive it: a database (PostgreSQL from
//! `pgtest`, or a state folder's SQLite) with two hosts, instances whose documents
//! put them on loopback addresses (127.0.0.N is instance N), and `meta` changes
//! through the store's own `update_document`, as `compute meta-set` makes them.

#![allow(dead_code)]

use compute_store::{open_store, HostSpec, Location, NewInstance, Store};
use std::net::Ipv4Addr;
use std::time::Duration;

pub const H1: &str = "h1";
pub const H2: &str = "h2";

/// Instance N's uuid.
pub fn uuid(n: u8) -> String {
    format!("{n:08x}-0000-4000-8000-0000000000{n:02x}")
}

/// Instance N's address, the one it asks from.
pub fn ip(n: u8) -> String {
    format!("127.0.0.{n}")
}

/// A small valid document for instance N.
pub fn doc(n: u8, meta: &[(&str, &str)]) -> String {
    let meta: serde_json::Map<String, serde_json::Value> = meta
        .iter()
        .map(|(k, v)| (k.to_string(), serde_json::Value::from(*v)))
        .collect();
    serde_json::json!({
        "uuid": uuid(n),
        "name": format!("vm-{n}"),
        "meta": meta,
        "network": {
            "links": [{"id": "tap0", "type": "phy", "ethernet_mac_address": format!("fa:16:3e:00:00:{n:02x}")}],
            "networks": [{"id": "network0", "type": "ipv4", "link": "tap0",
                          "ip_address": ip(n), "netmask": "255.0.0.0"}],
            "services": []
        }
    })
    .to_string()
}

/// Records the instance `text` describes (its uuid and name read from it) on `host`
/// (`None`: placed nowhere), MAC `fa:16:3e:00:00:TAIL` among its candidates.
pub fn insert_document<S: Store + ?Sized>(
    store: &mut S,
    text: &str,
    host: Option<&str>,
    up_timeout: Duration,
    tail: u8,
) {
    let parsed: serde_json::Value = serde_json::from_str(text).expect("a JSON document");
    let uuid = parsed["uuid"].as_str().expect("uuid");
    let name = parsed["name"].as_str().expect("name");
    let flavor = store.flavor("m1.tiny").expect("flavor");
    let document = |_: Ipv4Addr, _| Ok(text.to_owned());
    store
        .insert_instance(&NewInstance {
            uuid,
            name,
            flavor: &flavor,
            image_id: "img",
            key_name: None,
            project_id: compute_store::DEFAULT_PROJECT_ID,
            user_id: compute_store::OPERATOR_USER_ID,
            now: "2024-01-01T00:00:00Z",
            host,
            up_timeout,
            mac_candidates: vec![[0, 0, tail]],
            document: &document,
        })
        .expect("insert");
}

pub struct Db {
    pub location: Location,
    pub store: Box<dyn Store>,
    /// The state folder (SQLite), kept for the test's life.
    pub dir: Option<tempfile::TempDir>,
}

fn host(name: &str) -> HostSpec {
    HostSpec {
        name: name.into(),
        capacity: compute::placement::Resources {
            vcpus: 64,
            ram_mb: 65536,
            disk_gb: 1000,
        },
        ratios: None,
    }
}

impl Db {
    /// A fresh PostgreSQL database of this test binary's cluster, hosts h1 and h2.
    pub fn postgres() -> Db {
        let url = pgtest::cluster().database().url();
        let location = Location::Postgres(url);
        let store = open_store(&location, "10.0.0.0/16".parse().expect("cidr")).expect("store");
        store.register_host(&host(H1)).expect("h1");
        store.register_host(&host(H2)).expect("h2");
        Db {
            location,
            store,
            dir: None,
        }
    }

    /// A fresh state folder (SQLite: one host, h1).
    pub fn sqlite() -> Db {
        let dir = tempfile::tempdir().expect("tempdir");
        let location = Location::StateDir(dir.path().to_owned());
        let store = open_store(&location, "10.0.0.0/16".parse().expect("cidr")).expect("store");
        store.register_host(&host(H1)).expect("h1");
        Db {
            location,
            store,
            dir: Some(dir),
        }
    }

    /// The server's arguments for this database, for `host` (or all).
    pub fn source_args(&self, host: Option<&str>) -> Vec<String> {
        let mut args = match &self.location {
            Location::Postgres(url) => vec!["--database".to_owned(), url.clone()],
            Location::StateDir(d) => vec!["--state-dir".to_owned(), d.display().to_string()],
        };
        if let Some(h) = host {
            args.extend(["--host".to_owned(), h.to_owned()]);
        }
        args
    }

    pub fn url(&self) -> String {
        match &self.location {
            Location::Postgres(url) => url.clone(),
            Location::StateDir(_) => panic!("not PostgreSQL"),
        }
    }

    /// Boots instance N on `host` (its document from [`doc`]).
    pub fn insert(&mut self, n: u8, host: &str, meta: &[(&str, &str)]) {
        insert_document(
            &mut *self.store,
            &doc(n, meta),
            Some(host),
            Duration::from_secs(3600),
            n,
        );
    }

    /// Sets `meta[key] = value` on instance N, as `compute meta-set` does.
    pub fn set_meta(&mut self, n: u8, key: &str, value: &str) {
        let change = |doc: &str| -> Result<String, compute_store::DocumentProblem> {
            let mut v: serde_json::Value = serde_json::from_str(doc)?;
            v["meta"][key] = value.into();
            Ok(v.to_string())
        };
        self.store
            .update_document(&uuid(n), "2024-01-01T00:00:01Z", &change)
            .expect("meta-set");
    }

    pub fn delete(&mut self, n: u8) {
        self.store.delete_instance(&uuid(n)).expect("delete");
    }
}

/// ETags and waiting, on a server following `db` with instance N on it: 304 for
/// the current tag; a waiter wakes when a committed change reaches its answer, and
/// answers at its timeout when none does.
pub fn etag_and_wait_follow_commits(db: &mut Db, server: &crate::common::Server, n: u8) {
    use crate::common::{eventually, request};
    let meta = "/openstack/latest/meta_data.json";
    let first = server.get(&ip(n), meta);
    assert_eq!(first.status, 200, "{}", server.log());
    let tag = first.header("etag").expect("etag").to_owned();
    let inm = server.req(&ip(n), "GET", meta, &[("If-None-Match", &tag)], b"");
    assert_eq!(inm.status, 304);

    let port = server.port;
    let from = ip(n);
    let waiter = std::thread::spawn(move || {
        request(
            &from,
            port,
            "GET",
            &format!("{meta}?wait_for_change=true&timeout_sec=15"),
            &[],
            b"",
        )
    });
    assert!(
        eventually(Duration::from_secs(10), || server
            .metrics()
            .contains("metadata_waiters 1")),
        "{}",
        server.metrics()
    );
    db.set_meta(n, "role", "committed");
    let woke = waiter.join().expect("waiter");
    assert_eq!(woke.status, 200);
    assert!(
        woke.text().contains(r#""role": "committed""#),
        "{}",
        woke.text()
    );
    let new_tag = woke.header("etag").expect("etag").to_owned();
    assert_ne!(new_tag, tag);
    let stale = server.req(&ip(n), "GET", meta, &[("If-None-Match", &tag)], b"");
    assert_eq!(stale.status, 200);

    let timed_out = server.get(
        &ip(n),
        &format!("{meta}?wait_for_change=true&timeout_sec=1"),
    );
    assert_eq!(timed_out.status, 200);
    assert_eq!(timed_out.header("etag"), Some(new_tag.as_str()));
}
