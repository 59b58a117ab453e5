//! Hosts and placement as the store applies it: registration, heartbeats, enabled,
//! usage, and boots that place, refuse, and never overbook.

use crate::{register, try_add, uuid, Backend, Fixture, HOST};
use compute::placement::{AllocationRatios, PlacementError, Rejection, Resources};
use compute_store::{HostSpec, StoreError};
use std::sync::{Arc, Barrier};
use std::time::Duration;

fn a_host_registers_heartbeats_and_keeps_its_settings(f: Fixture) {
    let s = f.store();
    assert!(s.hosts().expect("hosts").is_empty());
    register(s.as_ref(), HOST, 4, 8192, 100);
    let h = s.host(HOST).expect("host");
    assert_eq!(
        h.capacity,
        Resources {
            vcpus: 4,
            ram_mb: 8192,
            disk_gb: 100
        }
    );
    assert_eq!(h.ratios, AllocationRatios::default());
    assert!(h.enabled);
    assert!(h.heartbeat_age.expect("age") < Duration::from_secs(5));
    assert!(
        h.heartbeat_at
            .as_deref()
            .is_some_and(|t| t.ends_with('Z') && t.len() == 20),
        "{h:?}"
    );
    s.set_host_enabled(HOST, false, Some("maintenance"))
        .expect("disable");
    let ratios = AllocationRatios {
        cpu: 2.0,
        ram: 1.0,
        disk: 1.0,
    };
    s.register_host(&HostSpec {
        name: HOST.into(),
        capacity: Resources {
            vcpus: 8,
            ram_mb: 16384,
            disk_gb: 200,
        },
        ratios: Some(ratios),
    })
    .expect("again");
    let h = s.host(HOST).expect("host");
    assert_eq!(h.capacity.vcpus, 8, "capacity follows the machine");
    assert_eq!(h.ratios, ratios);
    assert!(!h.enabled, "a restart does not enable a disabled host");
    assert_eq!(h.disabled_reason.as_deref(), Some("maintenance"));
    s.set_host_enabled(HOST, true, Some("ignored"))
        .expect("enable");
    let h = s.host(HOST).expect("host");
    assert!(h.enabled && h.disabled_reason.is_none());
    s.heartbeat(HOST).expect("heartbeat");
    assert!(matches!(
        s.heartbeat("nope"),
        Err(StoreError::NotFound { .. })
    ));
    assert!(matches!(
        s.set_host_enabled("nope", true, None),
        Err(StoreError::NotFound { .. })
    ));
    for bad in ["", "a b", "a/b"] {
        let spec = HostSpec {
            name: bad.into(),
            capacity: Resources::default(),
            ratios: None,
        };
        assert!(
            matches!(s.register_host(&spec), Err(StoreError::InvalidHost(_))),
            "{bad}"
        );
    }
    let zero = HostSpec {
        name: HOST.into(),
        capacity: Resources::default(),
        ratios: Some(AllocationRatios {
            cpu: 0.0,
            ram: 1.0,
            disk: 1.0,
        }),
    };
    assert!(matches!(
        s.register_host(&zero),
        Err(StoreError::InvalidRatio(_))
    ));
    assert_eq!(
        s.host(HOST).expect("kept").capacity.vcpus,
        8,
        "nothing written"
    );
}

fn a_state_folder_has_one_host_and_postgres_many(f: Fixture) {
    let s = f.store();
    register(s.as_ref(), HOST, 4, 8192, 100);
    let second = HostSpec {
        name: "h2".into(),
        capacity: Resources {
            vcpus: 1,
            ram_mb: 1,
            disk_gb: 1,
        },
        ratios: None,
    };
    match f.backend {
        Backend::Sqlite => {
            let err = s.register_host(&second).expect_err("one host");
            assert!(matches!(err, StoreError::OneHost { .. }));
            assert!(
                err.to_string()
                    .contains("has one host, h1; it cannot take h2"),
                "{err}"
            );
            assert_eq!(s.hosts().expect("hosts").len(), 1);
        }
        Backend::Postgres => {
            s.register_host(&second).expect("second host");
            let names: Vec<String> = s
                .hosts()
                .expect("hosts")
                .into_iter()
                .map(|h| h.name)
                .collect();
            assert_eq!(names, ["h1", "h2"]);
        }
    }
}

fn boots_are_placed_counted_and_refused_with_the_reason(f: Fixture) {
    let mut s = f.store();
    let err = try_add(s.as_mut(), &uuid(1), "a", "m1.tiny", None).expect_err("no host");
    assert!(
        matches!(err, StoreError::Placement(PlacementError::NoHosts)),
        "{err}"
    );
    // 1 vCPU x 16, 1024 MiB x 1.5, 30 GB: one m1.small (1/2048/20) fits, not two.
    register(s.as_ref(), HOST, 1, 2048, 30);
    let a = try_add(s.as_mut(), &uuid(1), "a", "m1.small", None).expect("fits");
    assert_eq!(a.host, HOST);
    let h = s.host(HOST).expect("host");
    assert_eq!(
        h.used,
        Resources {
            vcpus: 1,
            ram_mb: 2048,
            disk_gb: 20
        }
    );
    assert_eq!(h.instances, 1);
    let err = try_add(s.as_mut(), &uuid(2), "b", "m1.small", None).expect_err("full");
    assert!(
        err.to_string().starts_with("No valid host was found."),
        "{err}"
    );
    assert!(
        err.to_string()
            .contains("h1 is not enough RAM (2048 MiB wanted, 1024 MiB free)"),
        "{err}"
    );
    assert_eq!(
        s.list_instances().expect("list").len(),
        1,
        "nothing recorded"
    );
    let err =
        try_add(s.as_mut(), &uuid(2), "b", "m1.tiny", Some("elsewhere")).expect_err("unknown");
    assert!(
        matches!(err, StoreError::Placement(PlacementError::UnknownHost(_))),
        "{err}"
    );
    s.set_host_enabled(HOST, false, Some("maintenance"))
        .expect("disable");
    let err = try_add(s.as_mut(), &uuid(2), "b", "m1.tiny", Some(HOST)).expect_err("disabled");
    assert_eq!(
        err.to_string(),
        "No valid host was found. The requested host h1 is disabled (maintenance)"
    );
    s.set_host_enabled(HOST, true, None).expect("enable");
    try_add(s.as_mut(), &uuid(2), "b", "m1.tiny", Some(HOST)).expect("honoured");
    s.delete_instance(&a.uuid).expect("delete");
    assert_eq!(
        s.host(HOST).expect("host").used,
        Resources {
            vcpus: 1,
            ram_mb: 512,
            disk_gb: 1
        }
    );
}

fn a_host_without_a_recent_heartbeat_is_down(f: Fixture) {
    let mut s = f.store_with_host();
    let past = match f.backend {
        Backend::Sqlite => "strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '-60 seconds')",
        Backend::Postgres => "now() - interval '60 seconds'",
    };
    f.exec(&format!("UPDATE hosts SET heartbeat_at = {past}"));
    let age = s.host(HOST).expect("host").heartbeat_age.expect("age");
    assert!((59..=65).contains(&age.as_secs()), "{age:?}");
    let err = try_add(s.as_mut(), &uuid(1), "a", "m1.tiny", Some(HOST)).expect_err("down");
    assert!(
        matches!(
            &err,
            StoreError::Placement(PlacementError::HostRefused {
                reason: Rejection::Down { .. },
                ..
            })
        ),
        "{err}"
    );
    s.heartbeat(HOST).expect("heartbeat");
    try_add(s.as_mut(), &uuid(1), "a", "m1.tiny", None).expect("up again");
}

fn concurrent_boots_never_overbook_a_host(f: Fixture) {
    let s = f.store();
    // Room for exactly 3 m1.small (2048 MiB each) by RAM: 4096 x 1.5 = 6144.
    register(s.as_ref(), HOST, 8, 4096, 1000);
    let n = 8;
    let barrier = Arc::new(Barrier::new(n));
    let boots: Vec<_> = (0..n)
        .map(|i| {
            let mut s = f.store();
            let barrier = barrier.clone();
            std::thread::spawn(move || {
                barrier.wait();
                try_add(s.as_mut(), &uuid(i as u32 + 1), "vm", "m1.small", None)
            })
        })
        .collect();
    let results: Vec<_> = boots.into_iter().map(|b| b.join().expect("boot")).collect();
    let ok = results.iter().filter(|r| r.is_ok()).count();
    assert_eq!(ok, 3, "{results:?}");
    for r in results.iter().filter_map(|r| r.as_ref().err()) {
        assert!(matches!(r, StoreError::Placement(_)), "{r}");
    }
    assert_eq!(s.host(HOST).expect("host").used.ram_mb, 3 * 2048);
}

fn placement_spreads_by_free_ram(f: Fixture) {
    let mut s = f.store();
    register(s.as_ref(), "big", 8, 8192, 1000);
    register(s.as_ref(), "small", 8, 5000, 1000);
    let hosts: Vec<String> = (1..=4)
        .map(|i| {
            try_add(s.as_mut(), &uuid(i), "vm", "m1.small", None)
                .expect("placed")
                .host
        })
        .collect();
    // Free RAM after ratios: big 12288, small 7500; each m1.small takes 2048 from the
    // one chosen: big (10240 left), big (8192), big (6144), then small.
    assert_eq!(hosts, ["big", "big", "big", "small"]);
}

crate::both!(
    a_host_registers_heartbeats_and_keeps_its_settings,
    a_state_folder_has_one_host_and_postgres_many,
    boots_are_placed_counted_and_refused_with_the_reason,
    a_host_without_a_recent_heartbeat_is_down,
    concurrent_boots_never_overbook_a_host,
);

crate::postgres_only!(placement_spreads_by_free_ram);
