//! Benchmarks of compute's own work, printed as ratios to the targets:
//! - `boot`: from `Host::boot` being called to QEMU running and answering QMP
//!   (validation, database, overlay and ephemeral disks, config drive, QEMU spawn);
//!   the guest's own boot is not included. Target: under 150 ms.
//! - `compute list` with 10,000 instances in the database, the whole binary run
//!   (open, reconcile, query, print). Target: under 50 ms.
//!
//! Run with `cargo bench -p compute --bench compute_ops`.

use compute_host::drive_builder::ConfigDriveBuilder;
use compute_host::driver::images::ImageImport;
use compute_host::driver::{BootRequest, Host, HostConfig};
use compute_host::qemu::accel::AccelChoice;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

const BOOTS: usize = 10;
const INSTANCES: usize = 10_000;
const LIST_RUNS: usize = 20;

fn open(state: &Path) -> Host {
    Host::open(HostConfig {
        state_dir: state.to_owned(),
        qemu: "qemu-system-x86_64".into(),
        accel: AccelChoice::Tcg,
        cidr: "10.0.0.0/16".parse().expect("cidr"),
        settings: compute::Settings::default(),
        drive_builder: Box::new(ConfigDriveBuilder::default()),
        host_name: None,
    })
    .expect("open host")
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn report(name: &str, samples: Vec<Duration>, target_ms: f64) {
    let min = *samples.iter().min().expect("samples");
    let med = median(samples);
    let ms = med.as_secs_f64() * 1000.0;
    println!(
        "{name}: median {ms:.1} ms, min {:.1} ms, target {target_ms} ms, ratio {:.2}",
        min.as_secs_f64() * 1000.0,
        ms / target_ms
    );
}

fn bench_boot(dir: &Path) {
    let state = dir.join("boot-state");
    let mut host = open(&state);
    let disk = dir.join("blank.qcow2");
    let ok = Command::new("qemu-img")
        .args(["create", "-q", "-f", "qcow2"])
        .arg(&disk)
        .arg("16M")
        .status();
    assert!(ok.expect("qemu-img").success());
    host.import_image(&ImageImport {
        name: "blank".into(),
        disk,
        kernel: None,
        ramdisk: None,
        cmdline: None,
    })
    .expect("import");
    let mut samples = Vec::new();
    for i in 0..BOOTS {
        let req = BootRequest {
            name: format!("bench-{i}"),
            image: "blank".into(),
            flavor: "m1.tiny".into(),
            config_drive: true,
            ..Default::default()
        };
        let t = Instant::now();
        let rec = host.boot(&req).expect("boot");
        samples.push(t.elapsed());
        host.delete(&rec.uuid).expect("delete");
    }
    report(
        "boot to QEMU running (TCG, config drive, qcow2 overlay)",
        samples,
        150.0,
    );
}

fn bench_list(dir: &Path) {
    let state = dir.join("list-state");
    drop(open(&state));
    let db = rusqlite::Connection::open(state.join(compute_store::DB_FILE)).expect("db");
    db.execute_batch("BEGIN").expect("begin");
    {
        let mut st = db
            .prepare(
                "INSERT INTO instances (uuid, name, flavor, image_id, key_name, vm_state, task_state, power_state,
                 fixed_ip, mac, ssh_port, pid, fault, document, created_at, updated_at)
                 VALUES (?1, ?2, ?3, 'img', NULL, 'stopped', NULL, 'shutdown', ?4, ?5, NULL, NULL, NULL, ?6, ?7, ?7)",
            )
            .expect("prepare");
        let flavor =
            r#"{"name":"m1.tiny","vcpus":1,"ram_mb":512,"disk_gb":1,"ephemeral_gb":0,"swap_mb":0}"#;
        for i in 0..INSTANCES {
            let uuid = format!("00000000-0000-4000-8000-{i:012}");
            let ip = format!("10.0.{}.{}", (i + 4) / 256, (i + 4) % 256);
            let mac = format!(
                "fa:16:3e:{:02x}:{:02x}:{:02x}",
                i >> 16,
                (i >> 8) & 0xff,
                i & 0xff
            );
            let doc = format!(r#"{{"uuid":"{uuid}","name":"vm-{i}"}}"#);
            st.execute(rusqlite::params![
                uuid,
                format!("vm-{i}"),
                flavor,
                ip,
                mac,
                doc,
                "2024-01-01T00:00:00Z"
            ])
            .expect("insert");
        }
    }
    db.execute_batch("COMMIT").expect("commit");
    for (label, extra) in [("text", &[][..]), ("json", &["--format", "json"][..])] {
        let mut samples = Vec::new();
        for _ in 0..LIST_RUNS {
            let t = Instant::now();
            let out = Command::new(env!("CARGO_BIN_EXE_compute"))
                .arg("--state-dir")
                .arg(&state)
                .arg("list")
                .args(extra)
                .output()
                .expect("compute list");
            samples.push(t.elapsed());
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            assert!(out.stdout.len() > INSTANCES * 40);
        }
        report(
            &format!("compute list, {INSTANCES} instances ({label})"),
            samples,
            50.0,
        );
    }
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` does not: then only smoke-run.
    let dir = tempfile::tempdir().expect("tempdir");
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    bench_boot(dir.path());
    bench_list(dir.path());
}
