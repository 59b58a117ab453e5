//! A real guest under QEMU driven through the whole lifecycle by compute's driver:
//! boot, pause, unpause, soft and hard reboot, stop, start, suspend, resume,
//! rebuild, snapshot, delete; each step checked through QMP and the console log.

use compute::flavor::Flavor;
use compute_host::driver::images::ImageImport;
use compute_host::driver::{BootRequest, Host};
use compute_host::qemu::process;
use compute_host::qemu::Qmp;
use compute_store::{DocumentFeed, SqliteFeed};
use e2e::guest::{self, BOOT_MARKER};
use e2e::hostguest::console;
use std::time::{Duration, Instant};

/// A safeguard against a hung guest, not a speed assertion (TCG on a busy host).
const PATIENCE: Duration = Duration::from_secs(900);

fn boots(host: &Host, uuid: &str) -> usize {
    console(host, uuid).matches(BOOT_MARKER).count()
}

fn last_tick(host: &Host, uuid: &str) -> u64 {
    guest::last_tick(&console(host, uuid))
}

fn wait_for(what: &str, mut ok: impl FnMut() -> bool) {
    let deadline = Instant::now() + PATIENCE;
    while !ok() {
        assert!(Instant::now() < deadline, "guest never reached: {what}");
        std::thread::sleep(Duration::from_millis(250));
    }
}

fn qmp_status(host: &Host, uuid: &str) -> String {
    let mut q =
        Qmp::connect(&host.layout().instance(uuid).qmp(), Duration::from_secs(10)).expect("qmp");
    q.query_status().expect("query-status").status
}

#[test]
fn a_real_guest_walks_the_whole_lifecycle() {
    let dir = tempfile::tempdir().expect("tempdir");
    let g = guest::build(dir.path()).expect("test guest");
    let state = dir.path().join("state");
    let mut host = guest::open_host(&state, "10.77.0.0/24");
    let image = host
        .import_image(&ImageImport {
            name: "busybox".into(),
            disk: g.disk.clone(),
            kernel: Some(g.kernel.clone()),
            ramdisk: Some(g.initramfs.clone()),
            cmdline: Some(guest::CMDLINE.into()),
        })
        .expect("import");
    let flavor = Flavor {
        name: "t1".into(),
        vcpus: 1,
        ram_mb: 256,
        disk_gb: 1,
        ephemeral_gb: 1,
        swap_mb: 32,
    };
    host.store().add_flavor(&flavor).expect("flavor");

    let rec = host
        .boot(&BootRequest {
            name: "guest one".into(),
            image: "busybox".into(),
            flavor: "t1".into(),
            config_drive: true,
            ..Default::default()
        })
        .expect("boot");
    let uuid = rec.uuid.clone();
    assert_eq!(rec.state.status(), "ACTIVE");
    assert_eq!(qmp_status(&host, &uuid), "running");
    wait_for("first boot", || boots(&host, &uuid) >= 1);
    let log = console(&host, &uuid);
    assert!(
        log.contains(&format!("GUEST-BOOT serial={uuid} product=OpenStack Nova")),
        "{log}"
    );
    let inst = host.layout().instance(&uuid);
    assert!(inst.config_drive().exists() && inst.ephemeral().exists() && inst.swap().exists());

    // The metadata server's view of the same database.
    let mut feed = SqliteFeed::open(&state).expect("feed");
    let docs = feed.snapshot(None).expect("snapshot").documents;
    assert_eq!(docs.len(), 1);
    let doc = compute::Instance::from_json(&docs[0].document).expect("valid document");
    assert_eq!(doc.local_ipv4().map(|(ip, _)| ip), Some(rec.fixed_ip));

    assert_eq!(host.pause(&uuid).expect("pause").state.status(), "PAUSED");
    assert_eq!(qmp_status(&host, &uuid), "paused");
    assert_eq!(
        host.unpause(&uuid).expect("unpause").state.status(),
        "ACTIVE"
    );
    assert_eq!(qmp_status(&host, &uuid), "running");
    let t = last_tick(&host, &uuid);
    wait_for("ticks after unpause", || last_tick(&host, &uuid) > t);

    host.reboot(&uuid, false).expect("soft reboot");
    wait_for("boot after soft reboot", || boots(&host, &uuid) >= 2);
    let pid_before = host
        .store()
        .instance_by_uuid(&uuid)
        .expect("rec")
        .pid
        .expect("pid");
    let r = host.reboot(&uuid, true).expect("hard reboot");
    assert_ne!(r.pid, Some(pid_before), "hard reboot starts a new QEMU");
    assert!(!process::is_guest(pid_before, &uuid));
    wait_for("boot after hard reboot", || boots(&host, &uuid) >= 3);

    let pid = r.pid.expect("pid");
    let s = host.stop(&uuid, Duration::from_secs(2)).expect("stop");
    assert_eq!((s.state.status(), s.pid), ("SHUTOFF", None));
    assert!(!process::is_guest(pid, &uuid));
    assert_eq!(host.start(&uuid).expect("start").state.status(), "ACTIVE");
    assert_eq!(qmp_status(&host, &uuid), "running");
    wait_for("boot after start", || boots(&host, &uuid) >= 4);
    wait_for("a tick before suspend", || last_tick(&host, &uuid) >= 2);

    let before = last_tick(&host, &uuid);
    let s = host.suspend(&uuid).expect("suspend");
    assert_eq!((s.state.status(), s.pid), ("SUSPENDED", None));
    assert!(inst.saved_state().exists());
    let r = host.resume(&uuid).expect("resume");
    assert_eq!(r.state.status(), "ACTIVE");
    assert_eq!(qmp_status(&host, &uuid), "running");
    assert!(!inst.saved_state().exists());
    wait_for("ticks continuing after resume", || {
        last_tick(&host, &uuid) > before + 1
    });
    assert_eq!(
        boots(&host, &uuid),
        4,
        "resume continues the guest, it does not boot it"
    );

    assert!(
        host.delete_image(&image.id).is_err(),
        "an image in use cannot be deleted"
    );
    let snap = host.snapshot(&uuid, "snap").expect("image-create");
    assert!(snap.has_kernel && snap.format == "qcow2");
    let r = host.rebuild(&uuid, Some(&snap.id)).expect("rebuild");
    assert_eq!(
        (r.state.status(), r.image_id.as_str()),
        ("ACTIVE", snap.id.as_str())
    );
    wait_for("boot after rebuild", || boots(&host, &uuid) >= 5);

    let pid = host
        .store()
        .instance_by_uuid(&uuid)
        .expect("rec")
        .pid
        .expect("pid");
    host.delete(&uuid).expect("delete");
    assert!(!process::is_guest(pid, &uuid), "delete leaves no process");
    assert!(!inst.dir.exists(), "delete leaves no instance files");
    assert!(host.store().list_instances().expect("list").is_empty());
    assert!(feed.snapshot(None).expect("snapshot").documents.is_empty());
    host.delete_image(&snap.id)
        .expect("snapshot image no longer in use");
}
