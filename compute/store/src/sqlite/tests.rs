use super::*;
use crate::Fault;
use compute::mac::MacAddr;
use std::net::Ipv4Addr;

fn open(dir: &Path) -> SqliteStore {
    SqliteStore::open(dir, "10.0.0.0/24".parse().expect("cidr")).expect("open store")
}

fn add(store: &mut SqliteStore, uuid: &str, name: &str, tail: u8) -> InstanceRecord {
    let flavor = store.flavor("m1.tiny").expect("tiny");
    let doc = |ip: Ipv4Addr, mac: MacAddr| {
        Ok(format!(
            "{{\"uuid\":\"{uuid}\",\"name\":\"{name}\",\"ip\":\"{ip}\",\"mac\":\"{mac}\"}}"
        ))
    };
    store
        .insert_instance(&NewInstance {
            uuid,
            name,
            flavor: &flavor,
            image_id: "img",
            key_name: None,
            now: "2024-01-01T00:00:00Z",
            mac_candidates: vec![[0, 0, tail], [0, 1, tail]],
            document: &doc,
        })
        .expect("insert")
}

#[test]
fn defaults_flavors_and_wal() {
    let dir = tempfile::tempdir().expect("tempdir");
    let s = open(dir.path());
    assert_eq!(s.flavors().expect("flavors").len(), 5);
    let mode: String = s
        .conn
        .pragma_query_value(None, "journal_mode", |r| r.get(0))
        .expect("mode");
    assert_eq!(mode, "wal");
    let custom = Flavor {
        name: "c1".into(),
        vcpus: 1,
        ram_mb: 128,
        disk_gb: 1,
        ephemeral_gb: 1,
        swap_mb: 64,
    };
    s.add_flavor(&custom).expect("add");
    assert!(matches!(
        s.add_flavor(&custom),
        Err(StoreError::Exists { .. })
    ));
    drop(s);
    let s = open(dir.path());
    assert_eq!(s.flavor("c1").expect("kept"), custom);
    assert!(matches!(s.flavor("nope"), Err(StoreError::NotFound { .. })));
}

#[test]
fn allocation_is_unique_and_released_and_names_resolve() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut s = open(dir.path());
    let a = add(&mut s, "00000000-0000-0000-0000-00000000000a", "web", 1);
    let b = add(&mut s, "00000000-0000-0000-0000-00000000000b", "web", 1);
    assert_ne!(a.fixed_ip, b.fixed_ip);
    assert_ne!(a.mac, b.mac);
    assert_eq!(a.state, State::building());
    assert!(a.document.contains(&a.fixed_ip.to_string()));
    assert!(matches!(
        s.find_instance("web"),
        Err(StoreError::Ambiguous { .. })
    ));
    assert_eq!(s.find_instance(&a.uuid).expect("by uuid").uuid, a.uuid);
    s.delete_instance(&a.uuid).expect("delete");
    assert_eq!(s.find_instance("web").expect("one left").uuid, b.uuid);
    let c = add(&mut s, "00000000-0000-0000-0000-00000000000c", "db", 2);
    assert_eq!(c.fixed_ip, a.fixed_ip, "released IP is reused");
}

#[test]
fn reader_sees_documents_and_generation_moves() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut s = open(dir.path());
    let mut r = DocumentReader::open(dir.path()).expect("reader");
    let g0 = r.generation().expect("gen");
    let a = add(&mut s, "00000000-0000-0000-0000-00000000000a", "web", 1);
    let (g1, docs) = r.documents().expect("docs");
    assert!(g1 > g0);
    assert_eq!(docs.len(), 1);
    assert_eq!(docs[0].fixed_ip, a.fixed_ip);
    assert_eq!(docs[0].vm_state, "building");
    s.set_state(
        &a.uuid,
        State::building().spawned(),
        FaultChange::Clear,
        "t",
    )
    .expect("state");
    assert!(r.generation().expect("gen") > g1);
}

#[test]
fn images_in_use_cannot_be_deleted() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut s = open(dir.path());
    let img = Image {
        id: "img".into(),
        name: "cirros".into(),
        format: "qcow2".into(),
        size: 1,
        virtual_size: 1,
        checksum: "x".into(),
        has_kernel: false,
        has_ramdisk: false,
        cmdline: None,
        created_at: "t".into(),
    };
    s.add_image(&img).expect("add");
    assert_eq!(s.image("cirros").expect("by name"), img);
    add(&mut s, "00000000-0000-0000-0000-00000000000a", "web", 1);
    assert!(matches!(
        s.delete_image("img"),
        Err(StoreError::ImageInUse { count: 1, .. })
    ));
}

#[test]
fn the_host_holds_it_as_a_boxed_store_and_faults_change_as_told() {
    fn sendable<T: Send + ?Sized>() {}
    sendable::<Box<dyn Store>>();
    let dir = tempfile::tempdir().expect("tempdir");
    let mut sqlite = open(dir.path());
    let uuid = add(
        &mut sqlite,
        "00000000-0000-0000-0000-00000000000a",
        "web",
        1,
    )
    .uuid;
    let store: Box<dyn Store> = Box::new(sqlite);
    let fault = Fault {
        code: 500,
        message: "boom".into(),
    };
    let state = State::building();
    let fault_of = |s: &dyn Store| s.instance_by_uuid(&uuid).expect("row").fault;
    store
        .set_state(&uuid, state, FaultChange::Set(&fault), "t1")
        .expect("set");
    assert_eq!(fault_of(store.as_ref()), Some(fault.clone()));
    store
        .set_state(&uuid, state, FaultChange::Keep, "t2")
        .expect("keep");
    assert_eq!(fault_of(store.as_ref()), Some(fault));
    assert_eq!(store.instance_by_uuid(&uuid).expect("row").updated_at, "t2");
    store
        .set_state(&uuid, state, FaultChange::Clear, "t3")
        .expect("clear");
    assert_eq!(fault_of(store.as_ref()), None);
    assert!(matches!(
        store.set_state("nope", state, FaultChange::Keep, "t"),
        Err(StoreError::NotFound { .. })
    ));
}
