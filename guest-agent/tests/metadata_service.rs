//! The agent against a loopback TEST DOUBLE of the metadata service (see
//! `common/service_double.rs`): token first, plain GETs on 403/404/405, retries on
//! 503, EC2 fallback, and the generated password that `openssl` decrypts.

mod common;
use common::service_double::{Behaviour, ServiceDouble, TokenMode};
use common::*;
use std::process::Command;

fn run_against(
    svc: &ServiceDouble,
    root: &std::path::Path,
    extra: &[&str],
) -> (i32, serde_json::Value, String) {
    let mut args = vec![
        "--source",
        "metadata",
        "--metadata-url",
        &svc.url,
        "--root",
        root.to_str().expect("utf8"),
    ];
    args.extend_from_slice(extra);
    run_json(&args)
}

#[test]
fn token_then_documents_over_http() {
    let svc = ServiceDouble::start(
        &instance(&fixture(MULTINIC)),
        Behaviour {
            token: TokenMode::Required,
            ..Default::default()
        },
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let root = guest_root(dir.path());
    let (code, report, stderr) = run_against(&svc, &root, &["--user", "debian"]);
    assert_eq!(code, 0, "{report}\n{stderr}");
    assert!(
        report["source"]
            .as_str()
            .expect("s")
            .contains("openstack/2025-04-04, IMDSv2 token"),
        "{report}"
    );
    let seen = svc.seen();
    assert_eq!(
        (seen[0].method.as_str(), seen[0].path.as_str()),
        ("PUT", "/latest/api/token")
    );
    assert!(
        seen[1..]
            .iter()
            .all(|s| s.token && s.status == 200 || s.status == 404),
        "{seen:?}"
    );
    assert_eq!(read(&root.join("etc/hostname")), "web-02\n");
    assert!(read(&root.join("home/debian/.ssh/authorized_keys")).starts_with("ssh-ed25519 "));
    // The service shows neither files nor admin_pass (as Nova's does not).
    assert_eq!(step(&report, "files").0, "skipped");
    assert_eq!(step(&report, "password").0, "skipped");
    assert!(!root.join("etc/motd").exists());
}

#[test]
fn refused_token_falls_back_to_plain_gets() {
    for status in [403, 404, 405] {
        let svc = ServiceDouble::start(
            &instance(&fixture(MULTINIC)),
            Behaviour {
                token: TokenMode::Refused(status),
                ..Default::default()
            },
        );
        let dir = tempfile::tempdir().expect("tempdir");
        let root = guest_root(dir.path());
        let (code, report, _) = run_against(&svc, &root, &[]);
        assert_eq!(code, 0, "{status}: {report}");
        assert!(report["source"].as_str().expect("s").contains("no token"));
        assert!(svc.seen()[1..].iter().all(|s| !s.token));
        assert_eq!(read(&root.join("etc/hostname")), "web-02\n");
    }
}

#[test]
fn transient_errors_are_retried() {
    let svc = ServiceDouble::start(
        &instance(&fixture(MULTINIC)),
        Behaviour {
            fail_first: 3,
            ..Default::default()
        },
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let root = guest_root(dir.path());
    let (code, report, _) = run_against(&svc, &root, &[]);
    assert_eq!(code, 0, "{report}");
    let seen = svc.seen();
    assert_eq!(seen.iter().filter(|s| s.status == 503).count(), 3);
    assert_eq!(read(&root.join("etc/hostname")), "web-02\n");
}

#[test]
fn unreachable_service_gives_up_at_the_deadline() {
    // A port nobody listens on: connection refused, retried until the deadline.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port();
    let url = format!("http://127.0.0.1:{port}");
    let out = agent(&[
        "run",
        "--source",
        "metadata",
        "--metadata-url",
        &url,
        "--metadata-timeout",
        "1",
        "--root",
        "/nonexistent",
    ]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    // The whole chain, once, on one line: what was done, where, and the last cause.
    let expected = format!(
        "guest-agent: finding the instance's data: metadata service: \
         {url}/latest/api/token: no answer within the deadline of 1s: \
         the last request failed: io: Connection refused"
    );
    assert!(err.starts_with(&expected), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
}

#[test]
fn ec2_tree_when_there_is_no_openstack() {
    let svc = ServiceDouble::start(
        &instance(&fixture(MULTINIC)),
        Behaviour {
            openstack: false,
            ..Default::default()
        },
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let root = guest_root(dir.path());
    let (code, report, stderr) = run_against(&svc, &root, &[]);
    assert_eq!(code, 0, "{report}\n{stderr}");
    assert_eq!(report["instance_id"], "i-2f1d4c3b");
    assert_eq!(read(&root.join("etc/hostname")), "web-02\n");
    assert!(read(&root.join("root/.ssh/authorized_keys")).contains("ops@example"));
    // User data came from the EC2 tree (its runcmd is saved as a script).
    assert!(root
        .join("var/lib/guest-agent/i-2f1d4c3b/scripts/runcmd-000")
        .exists());
}

/// An RSA key pair made by ssh-keygen: (private key PEM path, OpenSSH public key).
fn rsa_key(dir: &std::path::Path) -> (std::path::PathBuf, String) {
    let key = dir.join("id_rsa");
    run_tool(
        Command::new("ssh-keygen")
            .args(["-q", "-t", "rsa", "-b", "2048", "-m", "PEM", "-N", "", "-f"])
            .arg(&key),
    );
    let public = read(&dir.join("id_rsa.pub")).trim().to_owned();
    (key, public)
}

#[test]
fn generated_password_decrypts_with_the_private_key() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (key, public) = rsa_key(dir.path());
    let mut doc = fixture(BASIC);
    doc["keys"] = serde_json::json!([{"name": "k", "type": "ssh", "data": public}]);
    doc.as_object_mut().expect("object").remove("admin_pass");
    let svc = ServiceDouble::start(&instance(&doc), Behaviour::default());
    let root = guest_root(dir.path());
    let (code, report, stderr) = run_against(&svc, &root, &["--generate-password"]);
    assert_eq!(code, 0, "{report}\n{stderr}");
    assert_eq!(step(&report, "password").0, "ok", "{report}");

    // What `nova get-password` does: base64-decode, RSA PKCS#1 v1.5 decrypt.
    let blob = svc.password().expect("a password was posted");
    let enc = dir.path().join("blob.bin");
    let b64 = dir.path().join("blob.b64");
    std::fs::write(&b64, &blob).expect("write");
    run_tool(
        Command::new("openssl")
            .args(["base64", "-d", "-A", "-in"])
            .arg(&b64)
            .arg("-out")
            .arg(&enc),
    );
    let out = Command::new("openssl")
        .args([
            "pkeyutl",
            "-decrypt",
            "-pkeyopt",
            "rsa_padding_mode:pkcs1",
            "-inkey",
        ])
        .arg(&key)
        .arg("-in")
        .arg(&enc)
        .output()
        .expect("openssl runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let password = String::from_utf8(out.stdout).expect("text");
    assert_eq!(password.len(), 16);
    let shadow = read(&root.join("etc/shadow"));
    let hash = shadow
        .lines()
        .next()
        .expect("root")
        .split(':')
        .nth(1)
        .expect("hash");
    assert!(
        crypt_matches(hash, &password),
        "the posted password is the one set"
    );
    assert!(!stderr.contains(&password) && !report.to_string().contains(&password));

    // A clone (new root, no state) posts again: the endpoint answers 409 and the
    // root password stays as it was.
    let root2 = dir.path().join("root2");
    std::fs::create_dir(&root2).expect("mkdir");
    let (code, report, _) = run_against(&svc, &root2, &["--generate-password"]);
    assert_eq!(code, 0, "{report}");
    let (outcome, details) = step(&report, "password");
    assert_eq!(outcome, "skipped");
    assert!(details[0].contains("409"), "{details:?}");
    let posts: Vec<u16> = svc
        .seen()
        .iter()
        .filter(|s| s.method == "POST")
        .map(|s| s.status)
        .collect();
    assert_eq!(posts, [200, 409]);
    assert!(!root2.join("etc/shadow").exists());
}

#[test]
fn generate_password_without_rsa_key_fails_that_step_only() {
    let svc = ServiceDouble::start(&instance(&fixture(MULTINIC)), Behaviour::default());
    let dir = tempfile::tempdir().expect("tempdir");
    let root = guest_root(dir.path());
    let (code, report, _) = run_against(&svc, &root, &["--generate-password"]);
    assert_eq!(code, 1, "a failed step makes the exit code non-zero");
    let (outcome, details) = step(&report, "password");
    assert_eq!(outcome, "failed");
    assert!(details[0].contains("no ssh-rsa key"), "{details:?}");
    assert_eq!(step(&report, "hostname").0, "ok");
    assert!(svc.password().is_none());
}
