//! Instances: allocation, lookups, state and document updates, passwords, and what
//! two writers at once cannot break.

use crate::{add, uuid, Backend, Fixture, HOST};
use compute::lifecycle::State;
use compute_store::{Fault, FaultChange, PasswordSet, Store, StoreError};
use std::sync::{Arc, Barrier};

fn allocation_is_unique_and_released_and_names_resolve(f: Fixture) {
    let mut s = f.store_with_host();
    let a = add(s.as_mut(), 10, "web");
    let b = add(s.as_mut(), 11, "web");
    assert_ne!(a.fixed_ip, b.fixed_ip);
    assert_ne!(a.mac, b.mac);
    assert_eq!(a.state, State::building());
    assert_eq!(a.host, HOST);
    assert!(a.document.contains(&a.fixed_ip.to_string()));
    assert!(matches!(
        s.find_instance("web"),
        Err(StoreError::Ambiguous { .. })
    ));
    assert_eq!(s.find_instance(&a.uuid).expect("by uuid").uuid, a.uuid);
    assert_eq!(s.list_instances().expect("list").len(), 2);
    // The detailed list: the same records as one by one, in the list's order.
    let records = s.instance_records(None).expect("records");
    let listed: Vec<String> = s
        .list_instances()
        .expect("list")
        .into_iter()
        .map(|i| i.uuid)
        .collect();
    let read: Vec<String> = records.iter().map(|r| r.uuid.clone()).collect();
    assert_eq!(read, listed);
    for r in &records {
        assert_eq!(*r, s.instance_by_uuid(&r.uuid).expect("by uuid"));
    }
    let own = s
        .instance_records(Some(compute_store::DEFAULT_PROJECT_ID))
        .expect("records");
    assert_eq!(own.len(), 2);
    assert!(s
        .instance_records(Some("nobody"))
        .expect("records")
        .is_empty());
    s.delete_instance(&a.uuid).expect("delete");
    assert_eq!(s.find_instance("web").expect("one left").uuid, b.uuid);
    let c = add(s.as_mut(), 12, "db");
    assert_eq!(c.fixed_ip, a.fixed_ip, "released IP is reused");
}

fn faults_change_as_told_and_runtime_is_kept(f: Fixture) {
    let mut s = f.store_with_host();
    let uuid = add(s.as_mut(), 1, "web").uuid;
    let fault = Fault {
        code: 500,
        message: "boom".into(),
    };
    let state = State::building();
    let fault_of = |s: &dyn Store| s.instance_by_uuid(&uuid).expect("row").fault;
    s.set_state(&uuid, state, FaultChange::Set(&fault), "t1")
        .expect("set");
    assert_eq!(fault_of(s.as_ref()), Some(fault.clone()));
    s.set_state(&uuid, state, FaultChange::Keep, "t2")
        .expect("keep");
    assert_eq!(fault_of(s.as_ref()), Some(fault));
    assert_eq!(s.instance_by_uuid(&uuid).expect("row").updated_at, "t2");
    s.set_state(&uuid, state, FaultChange::Clear, "t3")
        .expect("clear");
    assert_eq!(fault_of(s.as_ref()), None);
    assert!(matches!(
        s.set_state("nope", state, FaultChange::Keep, "t"),
        Err(StoreError::NotFound { .. })
    ));
    s.set_runtime(&uuid, Some(4242), Some(2222))
        .expect("runtime");
    let rec = s.instance_by_uuid(&uuid).expect("row");
    assert_eq!((rec.pid, rec.ssh_port), (Some(4242), Some(2222)));
    let claiming = s.instances_claiming_processes(HOST).expect("claiming");
    assert_eq!(claiming.len(), 1);
    assert!(s
        .instances_claiming_processes("elsewhere")
        .expect("claiming")
        .is_empty());
}

fn a_document_update_lands_or_changes_nothing(f: Fixture) {
    let mut s = f.store_with_host();
    let a = add(s.as_mut(), 1, "web");
    let rec = s
        .update_document("web", "t9", &|doc| {
            let mut v: serde_json::Value = serde_json::from_str(doc).map_err(|e| e.to_string())?;
            v["meta"]["role"] = "db".into();
            Ok(v.to_string())
        })
        .expect("update");
    assert!(rec.document.contains("\"role\":\"db\""), "{}", rec.document);
    assert!(rec.rev > a.rev);
    assert_eq!(rec.updated_at, "t9");
    let err = s
        .update_document("web", "t10", &|_| Err("meta key too long".into()))
        .expect_err("refused");
    assert_eq!(
        err.to_string(),
        format!("the new document of instance {} is refused", a.uuid)
    );
    let cause = std::error::Error::source(&err).map(ToString::to_string);
    assert_eq!(
        cause.as_deref(),
        Some("meta key too long"),
        "the rule's error is the cause"
    );
    let after = s.instance_by_uuid(&a.uuid).expect("row");
    assert_eq!(
        (after.document, after.rev),
        (rec.document, rec.rev),
        "nothing written"
    );
}

fn concurrent_document_updates_all_land(f: Fixture) {
    let mut s = f.store_with_host();
    let a = add(s.as_mut(), 1, "web");
    let n = 6;
    let barrier = Arc::new(Barrier::new(n));
    let workers: Vec<_> = (0..n)
        .map(|i| {
            let mut s = f.store();
            let barrier = barrier.clone();
            let uuid = a.uuid.clone();
            std::thread::spawn(move || {
                barrier.wait();
                s.update_document(&uuid, "t", &|doc| {
                    let mut v: serde_json::Value =
                        serde_json::from_str(doc).map_err(|e| e.to_string())?;
                    v["meta"][format!("k{i}")] = "v".into();
                    Ok(v.to_string())
                })
                .expect("update");
            })
        })
        .collect();
    for w in workers {
        w.join().expect("worker");
    }
    let doc: serde_json::Value =
        serde_json::from_str(&s.instance_by_uuid(&a.uuid).expect("row").document).expect("json");
    assert_eq!(doc["meta"].as_object().expect("meta").len(), n, "{doc}");
}

fn passwords_are_set_once_cleared_and_bump_the_revision(f: Fixture) {
    let mut s = f.store_with_host();
    let a = add(s.as_mut(), 1, "web");
    assert_eq!(s.password(&a.uuid).expect("get"), None);
    assert_eq!(
        s.set_password(&a.uuid, "first").expect("set"),
        PasswordSet::Set
    );
    let rev1 = s.instance_by_uuid(&a.uuid).expect("row").rev;
    assert!(rev1 > a.rev);
    assert_eq!(
        s.set_password(&a.uuid, "second").expect("again"),
        PasswordSet::AlreadySet
    );
    assert_eq!(s.password(&a.uuid).expect("get").as_deref(), Some("first"));
    assert_eq!(
        f.sql(&format!(
            "SELECT password FROM instances WHERE uuid = '{}'",
            a.uuid
        )),
        "first"
    );
    assert!(s.clear_password(&a.uuid).expect("clear"));
    assert!(!s.clear_password(&a.uuid).expect("nothing to clear"));
    assert!(s.instance_by_uuid(&a.uuid).expect("row").rev > rev1);
    assert_eq!(s.password(&a.uuid).expect("get"), None);
    for r in [
        s.set_password(&uuid(99), "x").map(|_| ()),
        s.password(&uuid(99)).map(|_| ()),
        s.clear_password(&uuid(99)).map(|_| ()),
    ] {
        assert!(matches!(r, Err(StoreError::NotFound { .. })), "{r:?}");
    }
}

fn of_racing_password_writers_exactly_one_wins(f: Fixture) {
    let mut s = f.store_with_host();
    let a = add(s.as_mut(), 1, "web");
    let n = 8;
    let barrier = Arc::new(Barrier::new(n));
    let racers: Vec<_> = (0..n)
        .map(|i| {
            let mut feed = f.feed();
            let barrier = barrier.clone();
            let uuid = a.uuid.clone();
            std::thread::spawn(move || {
                barrier.wait();
                (i, feed.set_password(&uuid, &format!("p{i}")).expect("set"))
            })
        })
        .collect();
    let outcomes: Vec<(usize, PasswordSet)> = racers
        .into_iter()
        .map(|r| r.join().expect("racer"))
        .collect();
    let winners: Vec<usize> = outcomes
        .iter()
        .filter(|(_, o)| *o == PasswordSet::Set)
        .map(|(i, _)| *i)
        .collect();
    assert_eq!(winners.len(), 1, "{outcomes:?}");
    assert_eq!(
        s.password(&a.uuid).expect("get"),
        Some(format!("p{}", winners[0]))
    );
}

fn a_store_knows_where_it_is(f: Fixture) {
    let s = f.store();
    let location = s.location();
    match f.backend {
        Backend::Sqlite => assert!(location.ends_with("compute.db"), "{location}"),
        Backend::Postgres => {
            assert!(
                location.starts_with("postgresql://postgres@/t"),
                "{location}"
            );
            assert!(location.contains("?host=/"), "{location}");
        }
    }
    assert_eq!(s.subnet().cidr.to_string(), crate::CIDR);
}

/// `instance_page` against the same filters and paging done in memory over
/// `instance_records` (what the API did before): the same answer, every time.
fn a_page_is_the_filtered_list_cut_by_the_database(f: Fixture) {
    use compute::lifecycle::State as S;
    use compute_store::InstanceQuery;
    let mut s = f.store_with_host();
    let names = ["web-1", "db-1", "web-2", "Web-3", "db-2", "web-4"];
    for (i, n) in names.iter().enumerate() {
        add(s.as_mut(), i as u32 + 1, n);
    }
    let running = S::building().spawned();
    s.set_state(&crate::uuid(2), running, FaultChange::Keep, "t")
        .expect("active");
    s.set_state(&crate::uuid(3), running, FaultChange::Keep, "t")
        .expect("active");
    let shutoff = S::with_status("SHUTOFF");
    let active = S::with_status("ACTIVE");
    let building = S::with_status("BUILD");
    let none: Vec<_> = Vec::new();
    let all = s.instance_records(None).expect("all");
    let mut checked = 0;
    for name in [None, Some("web"), Some("db"), Some("nothing")] {
        for states in [
            None,
            Some(&active[..]),
            Some(&building[..]),
            Some(&shutoff[..]),
            Some(&none[..]),
        ] {
            for project in [None, Some(compute_store::DEFAULT_PROJECT_ID), Some("other")] {
                let wanted: Vec<String> = all
                    .iter()
                    .rev()
                    .filter(|r| {
                        name.is_none_or(|n| r.name.contains(n))
                            && states.is_none_or(|st| st.contains(&(r.state.vm, r.state.task)))
                            && project.is_none_or(|p| r.project_id == p)
                    })
                    .map(|r| r.uuid.clone())
                    .collect();
                for limit in [0, 1, 2, 10] {
                    for marker in
                        std::iter::once(None).chain(all.iter().map(|r| Some(r.uuid.as_str())))
                    {
                        let q = InstanceQuery {
                            project,
                            name_contains: name,
                            states,
                            marker,
                            limit,
                        };
                        let got = s.instance_page(&q);
                        let start = match marker {
                            None => Some(0),
                            Some(m) => wanted.iter().position(|u| u == m).map(|p| p + 1),
                        };
                        match start {
                            None => assert!(
                                matches!(got, Err(StoreError::NotFound { kind: "marker", .. })),
                                "{q:?}: {got:?}"
                            ),
                            Some(start) => {
                                let got: Vec<String> =
                                    got.expect("page").into_iter().map(|r| r.uuid).collect();
                                let want: Vec<String> =
                                    wanted.iter().skip(start).take(limit).cloned().collect();
                                assert_eq!(got, want, "{q:?}");
                            }
                        }
                        checked += 1;
                    }
                }
            }
        }
    }
    assert!(checked > 1000);
}

crate::both!(
    a_page_is_the_filtered_list_cut_by_the_database,
    allocation_is_unique_and_released_and_names_resolve,
    faults_change_as_told_and_runtime_is_kept,
    a_document_update_lands_or_changes_nothing,
    concurrent_document_updates_all_land,
    passwords_are_set_once_cleared_and_bump_the_revision,
    of_racing_password_writers_exactly_one_wins,
    a_store_knows_where_it_is,
);
