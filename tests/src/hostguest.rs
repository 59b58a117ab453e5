//! Watching guests that compute's [`Host`] booted: their console, the base64
//! sections they print between `GUEST-BEGIN name` and `GUEST-END name rc=N`, what
//! compute's one renderer serves them, and the `metadata-server` binary compute runs.
//! Shared by the metadata tests of every networking mode.

use base64::Engine;
use compute::metadata::{Entry, MetadataPath};
use compute_host::driver::Host;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// The `metadata-server` built beside the test binary, or `E2E_METADATA_SERVER`.
pub fn metadata_server() -> PathBuf {
    if let Ok(p) = std::env::var("E2E_METADATA_SERVER") {
        return PathBuf::from(p);
    }
    let exe = std::env::current_exe().expect("current exe");
    let beside = exe
        .parent()
        .and_then(Path::parent)
        .map(|d| d.join("metadata-server"))
        .expect("target dir");
    assert!(
        beside.is_file(),
        "{} is missing: build it first (`cargo build -p metadata-server`; `cargo test --workspace` does) or set E2E_METADATA_SERVER",
        beside.display()
    );
    beside
}

/// The guest's serial console so far, its whole lines only
/// ([`crate::console::whole_lines`]).
pub fn console(host: &Host, uuid: &str) -> String {
    crate::console::whole_lines(&host.console_log(uuid, None).expect("console log"))
}

/// Waits until the console shows `marker`; `patience` guards against a hung guest.
pub fn wait_for(host: &Host, uuid: &str, marker: &str, patience: Duration) -> Duration {
    let start = Instant::now();
    loop {
        let log = console(host, uuid);
        if log.contains(marker) {
            return start.elapsed();
        }
        assert!(
            start.elapsed() < patience,
            "guest {uuid} never printed {marker}:\n{log}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The bytes a guest printed between `GUEST-BEGIN name` and `GUEST-END name rc=N`,
/// and N.
pub fn section(log: &str, name: &str) -> (Vec<u8>, String) {
    let begin = format!("GUEST-BEGIN {name}\n");
    let start = log
        .find(&begin)
        .unwrap_or_else(|| panic!("no section {name}:\n{log}"))
        + begin.len();
    let end_marker = format!("GUEST-END {name} rc=");
    let end = start
        + log[start..]
            .find(&end_marker)
            .unwrap_or_else(|| panic!("section {name} not closed:\n{log}"));
    let b64: String = log[start..end].split_whitespace().collect();
    let rc = log[end + end_marker.len()..]
        .lines()
        .next()
        .unwrap_or_default()
        .trim()
        .to_owned();
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(b64)
        .unwrap_or_else(|e| panic!("section {name} is not base64: {e}"));
    (bytes, rc)
}

/// What compute's one renderer serves at `path` for the instance (default settings).
pub fn rendered(host: &Host, uuid: &str, path: &str) -> Vec<u8> {
    let rec = host.store().instance_by_uuid(uuid).expect("record");
    let instance = compute::Instance::from_json(rec.document.as_bytes()).expect("document");
    let tree = compute::render_service(&instance, &compute::Settings::default());
    let p = MetadataPath::parse(path).expect("path");
    match tree.lookup(p.segments()) {
        Some(Entry::File(f)) => f.body.with_seed("").to_vec(),
        other => panic!("{path} is not a file: {other:?}"),
    }
}

/// A compute host (see [`crate::guest::host_config`]) networked in `mode`, running the
/// `metadata-server` built beside the tests; `bridge` names the bridge of bridge mode.
pub fn open_networked_host(
    state: &Path,
    cidr: &str,
    mode: compute_host::driver::NetworkMode,
    bridge: &str,
) -> compute_host::driver::Host {
    compute_host::driver::Host::open_networked(
        crate::guest::host_config(state, cidr),
        compute_host::driver::Networking {
            mode,
            metadata_server: metadata_server(),
            bridge: bridge.into(),
        },
    )
    .expect("open host")
}
