//! Golden files: every document of every version, for each fixture and both views,
//! produced by the real `compute render` command. `UPDATE_GOLDEN=1` rewrites them
//! (review the diff: it is the exact change a guest would see).

use std::path::{Path, PathBuf};
use std::process::Command;

/// A fixed seed for the service view, so its `meta_data.json` is stable.
const SEED: &str = "c2VlZA==";

fn manifest() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn render(fixture: &str, view: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("out");
    let status = Command::new(env!("CARGO_BIN_EXE_compute"))
        .args([
            "render",
            "--view",
            view,
            "--random-seed",
            SEED,
            "--instance",
        ])
        .arg(
            manifest()
                .join("../tests/fixtures")
                .join(format!("{fixture}.json")),
        )
        .arg("--out")
        .arg(&out)
        .status()
        .expect("run compute render");
    assert!(
        status.success(),
        "compute render failed for {fixture} {view}"
    );
    dir
}

fn files_under(root: &Path) -> Vec<(String, Vec<u8>)> {
    fn go(root: &Path, dir: &Path, out: &mut Vec<(String, Vec<u8>)>) {
        for entry in std::fs::read_dir(dir).expect("read_dir") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                go(root, &path, out);
            } else {
                let rel = path
                    .strip_prefix(root)
                    .expect("under root")
                    .to_string_lossy()
                    .into_owned();
                out.push((rel, std::fs::read(&path).expect("read")));
            }
        }
    }
    let mut out = Vec::new();
    go(root, root, &mut out);
    out.sort();
    out
}

/// One text file per fixture and view: `=== path (N bytes)` then the exact bytes.
fn snapshot(files: &[(String, Vec<u8>)]) -> String {
    let mut s = String::new();
    for (path, bytes) in files {
        s.push_str(&format!("=== {path} ({} bytes)\n", bytes.len()));
        s.push_str(&String::from_utf8_lossy(bytes));
        s.push('\n');
    }
    s
}

fn check(fixture: &str, view: &str) {
    let dir = render(fixture, view);
    let got = snapshot(&files_under(&dir.path().join("out")));
    let golden = manifest()
        .join("tests/golden")
        .join(format!("{fixture}.{view}.txt"));
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(&golden, &got).expect("write golden");
        return;
    }
    let want = std::fs::read_to_string(&golden).unwrap_or_else(|e| {
        panic!(
            "missing golden {} ({e}); run with UPDATE_GOLDEN=1",
            golden.display()
        )
    });
    if got != want {
        let first = got
            .lines()
            .zip(want.lines())
            .position(|(a, b)| a != b)
            .unwrap_or(0);
        panic!(
            "{fixture} {view} differs from {} at line {}:\n got: {}\nwant: {}",
            golden.display(),
            first + 1,
            got.lines().nth(first).unwrap_or(""),
            want.lines().nth(first).unwrap_or("")
        );
    }
}

#[test]
fn basic_drive() {
    check("basic", "drive");
}

#[test]
fn basic_service() {
    check("basic", "service");
}

#[test]
fn multinic_drive() {
    check("multinic", "drive");
}

#[test]
fn multinic_service() {
    check("multinic", "service");
}

#[test]
fn dualstack_drive() {
    check("dualstack", "drive");
}

#[test]
fn dualstack_service() {
    check("dualstack", "service");
}

/// Python's own `json.dumps`, given each document parsed with its key order kept,
/// must give back exactly our bytes: that is what "Nova's bytes" means.
#[test]
fn every_json_document_is_byte_identical_to_python_json_dumps() {
    let mut paths = Vec::new();
    let mut dirs = Vec::new();
    for fixture in ["basic", "multinic", "dualstack"] {
        for view in ["drive", "service"] {
            let dir = render(fixture, view);
            for (rel, _) in files_under(&dir.path().join("out")) {
                if rel.ends_with(".json") {
                    paths.push(dir.path().join("out").join(rel));
                }
            }
            dirs.push(dir);
        }
    }
    assert!(
        paths.len() > 100,
        "expected every version's documents, found {}",
        paths.len()
    );
    let script = r#"
import json, sys, collections
bad = []
for p in sys.argv[1:]:
    raw = open(p, 'rb').read()
    again = json.dumps(json.loads(raw, object_pairs_hook=collections.OrderedDict)).encode()
    if again != raw:
        bad.append(p)
print(len(sys.argv) - 1, 'checked')
if bad:
    print('differs:', *bad, sep='\n')
    sys.exit(1)
"#;
    let out = Command::new("python3")
        .arg("-c")
        .arg(script)
        .args(&paths)
        .output()
        .expect("python3 must be installed");
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
