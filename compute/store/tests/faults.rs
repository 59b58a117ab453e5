//! PostgreSQL going wrong: a bad or unreachable URL, and the server stopped hard in
//! the middle of use (its own test binary: every test here shares a cluster that one
//! of them kills). Each error names the database and says what happened; nothing
//! half-written survives; after a restart the same store and feed work again.

use compute::mac::MacAddr;
use compute::placement::{Resources, DEFAULT_UP_TIMEOUT};
use compute_store::DocumentFeed;
use compute_store::{
    open_store, Catchup, HostSpec, Location, NewInstance, PgFeed, PgStore, Store, StoreError,
};
use std::net::Ipv4Addr;
use std::sync::mpsc;
use std::sync::Mutex;
use std::time::Duration;

/// The tests take turns: one of them stops the server every test here uses.
static TURNS: Mutex<()> = Mutex::new(());

fn cidr() -> ipnetwork::Ipv4Network {
    "10.0.0.0/24".parse().expect("cidr")
}

fn open_error(url: &str) -> String {
    let err = open_store(&Location::Postgres(url.into()), cidr())
        .err()
        .expect("refused");
    assert!(matches!(err, StoreError::Open { .. }), "{err}");
    let mut text = err.to_string();
    let mut cause = std::error::Error::source(&err);
    while let Some(c) = cause {
        text.push_str(": ");
        text.push_str(&c.to_string());
        cause = c.source();
    }
    text
}

#[test]
fn a_wrong_or_unreachable_database_is_named_and_nothing_is_written() {
    let _turn = TURNS.lock().unwrap_or_else(|p| p.into_inner());
    let text = open_error("postgresql://nova:s3cret@127.0.0.1:1/compute");
    assert!(
        text.starts_with("cannot open the database postgresql://nova@127.0.0.1:1/compute: "),
        "{text}"
    );
    assert!(!text.contains("s3cret"), "{text}");
    let text = open_error("postgresql://nova@%2Fnonexistent%2Fdir/compute");
    assert!(
        text.starts_with(
            "cannot open the database postgresql://nova@/compute?host=/nonexistent/dir: "
        ),
        "{text}"
    );
    let text = open_error("postgresql://nova:s3cret@db:notaport/compute");
    assert!(
        text.starts_with("cannot open the database postgresql://nova:***@db:notaport/compute: "),
        "{text}"
    );
    // The server is there, the database is not: nothing is created.
    let cluster = pgtest::cluster();
    let db = cluster.database();
    let missing = db.url().replace(&format!("/{}", db.name), "/nosuchdb");
    let text = open_error(&missing);
    assert!(text.contains("/nosuchdb"), "{text}");
    assert!(text.contains("does not exist"), "{text}");
    assert_eq!(
        db.psql("SELECT COUNT(*) FROM pg_database WHERE datname = 'nosuchdb'"),
        "0"
    );
}

#[test]
fn a_hard_stop_fails_the_request_in_flight_loses_nothing_and_the_store_reconnects() {
    let _turn = TURNS.lock().unwrap_or_else(|p| p.into_inner());
    let cluster = pgtest::cluster();
    let db = cluster.database();
    let url = db.url();
    let mut store = PgStore::connect(&url, cidr()).expect("store");
    store
        .register_host(&HostSpec {
            name: "h1".into(),
            capacity: Resources {
                vcpus: 8,
                ram_mb: 8192,
                disk_gb: 100,
            },
            ratios: None,
        })
        .expect("host");
    let flavor = store.flavor("m1.tiny").expect("flavor");
    let insert = |store: &mut PgStore,
                  uuid: &str,
                  doc: &dyn Fn(
        Ipv4Addr,
        MacAddr,
    ) -> Result<String, compute_store::DocumentProblem>| {
        store.insert_instance(&NewInstance {
            uuid,
            name: "vm",
            flavor: &flavor,
            image_id: "img",
            key_name: None,
            project_id: compute_store::DEFAULT_PROJECT_ID,
            user_id: compute_store::OPERATOR_USER_ID,
            now: "t",
            host: None,
            up_timeout: DEFAULT_UP_TIMEOUT,
            mac_candidates: vec![[0, 0, uuid.len() as u8], [0, 1, 1]],
            document: doc,
        })
    };
    let plain = |_: Ipv4Addr, _: MacAddr| Ok("{}".to_string());
    let kept = insert(&mut store, "kept", &plain).expect("insert");
    store.set_password("kept", "pw").expect("password");
    let mut feed = PgFeed::connect(&url).expect("feed");
    let rev = feed.rev().expect("rev");

    // Stop the server while an insert's transaction is open (its document is being
    // built, after placement and allocation).
    let (inside_tx, inside) = mpsc::channel();
    let (go_on, wait) = mpsc::channel::<()>();
    let (inside_tx, wait) = (Mutex::new(inside_tx), Mutex::new(wait));
    let stalled = |_: Ipv4Addr, _: MacAddr| {
        let _ = inside_tx.lock().expect("lock").send(());
        let _ = wait.lock().expect("lock").recv();
        Ok("{}".to_string())
    };
    let err = std::thread::scope(|s| {
        let killer = s.spawn(move || {
            inside.recv().expect("the insert reached its document");
            cluster.kill();
            go_on.send(()).expect("go on");
        });
        let res = insert(&mut store, "lost", &stalled);
        killer.join().expect("killer");
        res.expect_err("the server went away mid-transaction")
    });
    assert!(matches!(err, StoreError::Unavailable { .. }), "{err}");
    let text = err.to_string();
    assert!(
        text.starts_with(&format!(
            "lost the connection to the database postgresql://postgres@/{}",
            db.name
        )),
        "{text}"
    );
    assert!(
        text.contains("nothing was changed by the failed request"),
        "{text}"
    );
    // While it is down: every call says so, without a panic.
    let err = store.flavors().expect_err("down");
    assert!(matches!(err, StoreError::Unavailable { .. }), "{err}");
    assert!(matches!(feed.rev(), Err(StoreError::Unavailable { .. })));
    assert!(matches!(
        feed.wait_for_change(rev, None, Duration::from_millis(100)),
        Err(StoreError::Unavailable { .. })
    ));

    cluster.start();
    // The same objects work again; what was committed is there, the half-done
    // insert is not, and revisions go on from where they were.
    assert_eq!(
        store.instance_by_uuid("kept").expect("kept").rev,
        kept.rev + 1
    );
    assert!(matches!(
        store.instance_by_uuid("lost"),
        Err(StoreError::NotFound { .. })
    ));
    assert_eq!(db.psql("SELECT COUNT(*) FROM instances"), "1");
    assert_eq!(store.password("kept").expect("pw").as_deref(), Some("pw"));
    assert_eq!(feed.rev().expect("rev"), rev);
    let again = insert(&mut store, "again", &plain).expect("insert after restart");
    assert_eq!(again.rev, rev + 1);
    assert!(feed
        .wait_for_change(rev, None, Duration::from_secs(5))
        .expect("wait after restart"));
    match feed.changes_since(rev, None).expect("catch up") {
        Catchup::Changes { changes, .. } => {
            assert_eq!(changes.len(), 1);
            assert_eq!(changes[0].uuid(), "again");
        }
        other => panic!("{other:?}"),
    }
}
