//! The signed instance identity document, checked by `openssl` with the certificate
//! `metadata-server identity-cert` prints (and with an operator's own key); and
//! maintenance events scheduled with `metadata-server events`, as the guest sees them.

mod common;

use common::*;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

fn run(cmd: &mut Command) -> std::process::Output {
    let out = cmd.output().expect("command runs");
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn openssl(args: &[&str], dir: &Path) -> std::process::Output {
    Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("openssl runs")
}

struct Identity {
    document: Vec<u8>,
    signature: Vec<u8>,
    pkcs7: Vec<u8>,
    rsa2048: Vec<u8>,
}

fn fetch(server: &Server, ip: &str) -> Identity {
    let get = |leaf: &str| {
        let r = server.get(ip, &format!("/latest/dynamic/instance-identity/{leaf}"));
        assert_eq!(r.status, 200, "{leaf}: {}", r.text());
        assert_eq!(r.header("content-type"), Some("text/plain; charset=UTF-8"));
        r.body
    };
    Identity {
        document: get("document"),
        signature: get("signature"),
        pkcs7: get("pkcs7"),
        rsa2048: get("rsa2048"),
    }
}

/// Runs the verifications AWS documents, in `dir` holding `certificate`: the
/// signature with `openssl dgst`, the two PKCS#7 forms with `openssl smime`, whose
/// output must be the document itself.
fn verify_with_openssl(id: &Identity, dir: &Path) {
    std::fs::write(dir.join("document"), &id.document).expect("write");
    let key = openssl(&["x509", "-pubkey", "-noout", "-in", "certificate"], dir);
    assert!(
        key.status.success(),
        "{}",
        String::from_utf8_lossy(&key.stderr)
    );
    std::fs::write(dir.join("key"), &key.stdout).expect("write");
    let b64: String = String::from_utf8(id.signature.clone())
        .expect("ascii")
        .split_whitespace()
        .collect();
    let raw = base64::Engine::decode(&base64::engine::general_purpose::STANDARD, b64)
        .expect("signature is base64");
    std::fs::write(dir.join("signature"), raw).expect("write");
    let ok = openssl(
        &[
            "dgst",
            "-sha256",
            "-verify",
            "key",
            "-signature",
            "signature",
            "document",
        ],
        dir,
    );
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&ok.stdout).trim(), "Verified OK");
    // A changed document does not verify.
    let mut other = id.document.clone();
    other[5] ^= 1;
    std::fs::write(dir.join("other"), other).expect("write");
    let bad = openssl(
        &[
            "dgst",
            "-sha256",
            "-verify",
            "key",
            "-signature",
            "signature",
            "other",
        ],
        dir,
    );
    assert!(!bad.status.success());

    for (name, form) in [("pkcs7", &id.pkcs7), ("rsa2048", &id.rsa2048)] {
        let text = String::from_utf8(form.clone()).expect("ascii");
        assert!(
            text.split('\n').all(|l| l.len() <= 64),
            "{name}: lines of 64"
        );
        let pem = format!("-----BEGIN PKCS7-----\n{text}\n-----END PKCS7-----\n");
        std::fs::write(dir.join(name), pem).expect("write");
        for check in [&["-noverify"][..], &["-CAfile", "certificate"][..]] {
            let mut args = vec![
                "smime",
                "-verify",
                "-inform",
                "PEM",
                "-in",
                name,
                "-certfile",
                "certificate",
            ];
            args.extend_from_slice(check);
            let out = openssl(&args, dir);
            assert!(
                out.status.success(),
                "{name} {check:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            assert_eq!(
                out.stdout, id.document,
                "{name}: verified content is the document"
            );
        }
    }
}

#[test]
fn openssl_verifies_every_form_with_the_printed_certificate() {
    let server = Server::start(&[]);
    let id = fetch(&server, A_IP);
    let doc: serde_json::Value = serde_json::from_slice(&id.document).expect("json");
    assert_eq!(doc["instanceId"], "i-d8e02d56");
    assert_eq!(doc["accountId"], "6a5a0c0c0b1e4d1b9a0f1c2d3e4f5a6b");
    assert_eq!(doc["privateIp"], "127.0.0.2");
    let again = fetch(&server, A_IP);
    assert_eq!(
        again.document, id.document,
        "the same bytes on every request"
    );
    assert_eq!(again.signature, id.signature);

    let cert = run(Command::new(bin())
        .arg("identity-cert")
        .arg("--data-dir")
        .arg(server.data_dir()))
    .stdout;
    assert!(String::from_utf8_lossy(&cert).starts_with("-----BEGIN CERTIFICATE-----"));
    let dir = tempfile::tempdir().expect("tmp");
    std::fs::write(dir.path().join("certificate"), &cert).expect("write");
    verify_with_openssl(&id, dir.path());
    // Another instance's document is signed by the same key.
    verify_with_openssl(&fetch(&server, B_IP), dir.path());

    // A restart keeps the key: the certificate and the signatures stay.
    let mut server = server;
    server.restart();
    assert_eq!(fetch(&server, A_IP).signature, id.signature);
    let cert_after = run(Command::new(bin())
        .arg("identity-cert")
        .arg("--data-dir")
        .arg(server.data_dir()))
    .stdout;
    assert_eq!(cert_after, cert);
}

#[test]
fn a_changed_document_is_signed_anew() {
    let mut server = Server::start(&[]);
    let before = fetch(&server, A_IP);
    let mut docs: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&server.instances).expect("read")).expect("json");
    docs[0]["instance_type"] = "m1.xlarge".into();
    std::fs::write(&server.instances, serde_json::to_vec(&docs).expect("json")).expect("write");
    server.signal("HUP");
    let mut after = fetch(&server, A_IP);
    for _ in 0..50 {
        if after.document != before.document {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
        after = fetch(&server, A_IP);
    }
    assert_ne!(after.document, before.document);
    assert!(String::from_utf8_lossy(&after.document).contains("\"instanceType\" : \"m1.xlarge\""));
    assert_ne!(after.signature, before.signature);
    let dir = tempfile::tempdir().expect("tmp");
    let cert = run(Command::new(bin())
        .arg("identity-cert")
        .arg("--data-dir")
        .arg(server.data_dir()))
    .stdout;
    std::fs::write(dir.path().join("certificate"), cert).expect("write");
    verify_with_openssl(&after, dir.path());
    server.stop();
}

#[test]
fn an_operators_key_and_certificate_sign_and_bad_ones_are_refused() {
    let dir = tempfile::tempdir().expect("tmp");
    let d = dir.path();
    let make = |key: &str, cert: &str, bits: &str| {
        let out = openssl(
            &[
                "req",
                "-x509",
                "-newkey",
                &format!("rsa:{bits}"),
                "-nodes",
                "-keyout",
                key,
                "-out",
                cert,
                "-subj",
                "/CN=operator identity",
                "-days",
                "2",
            ],
            d,
        );
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    make("key.pem", "cert.pem", "2048");
    make("other-key.pem", "other-cert.pem", "2048");
    make("small-key.pem", "small-cert.pem", "1024");
    let key = d.join("key.pem").display().to_string();
    let cert = d.join("cert.pem").display().to_string();
    let server = Server::start(&["--identity-key", &key, "--identity-cert", &cert]);
    std::fs::copy(d.join("cert.pem"), d.join("certificate")).expect("copy");
    verify_with_openssl(&fetch(&server, A_IP), d);
    assert!(
        !server.data_dir().join("identity").exists(),
        "no key is made when the operator gives one"
    );

    for (k, c, says) in [
        ("key.pem", "other-cert.pem", "is not of the key"),
        ("small-key.pem", "small-cert.pem", "at least 2048"),
        ("cert.pem", "cert.pem", "holds no RSA private key"),
        ("key.pem", "key.pem", "holds no X.509 certificate"),
    ] {
        let out = Command::new(bin())
            .args(["serve", "--listen", "127.0.0.1:0", "--instances"])
            .arg(fixture())
            .arg("--password-dir")
            .arg(d.join("pw"))
            .arg("--identity-key")
            .arg(d.join(k))
            .arg("--identity-cert")
            .arg(d.join(c))
            .output()
            .expect("runs");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{k} {c}: {err}");
        assert!(err.contains(says), "{k} {c}: {err}");
        assert!(!err.contains("panicked"), "{err}");
    }
    let out = Command::new(bin())
        .args(["identity-cert", "--data-dir"])
        .arg(d.join("empty"))
        .output()
        .expect("runs");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("cert.pem") && err.contains("No such file"),
        "{err}"
    );
}

#[test]
fn maintenance_events_scheduled_by_the_operator_reach_the_guest() {
    let server = Server::start(&[]);
    let events = |args: &[&str]| {
        Command::new(bin())
            .arg("events")
            .args(args)
            .arg("--data-dir")
            .arg(server.data_dir())
            .output()
            .expect("runs")
    };
    let scheduled = "/latest/meta-data/events/maintenance/scheduled";
    let history = "/2018-08-17/meta-data/events/maintenance/history";
    assert_eq!(server.get(A_IP, scheduled).text(), "[]");
    let out = events(&[
        "schedule",
        "--instance",
        A,
        "--code",
        "instance-stop",
        "--not-before",
        "2026-03-01T09:00:00Z",
        "--not-after",
        "2026-03-01T11:30:00Z",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let id = String::from_utf8(out.stdout)
        .expect("utf8")
        .trim()
        .to_owned();
    let seen: serde_json::Value =
        serde_json::from_str(&server.get(A_IP, scheduled).text()).expect("json list");
    assert_eq!(
        seen,
        serde_json::json!([{
            "NotBefore": "1 Mar 2026 09:00:00 GMT", "Code": "instance-stop",
            "Description": "scheduled stop", "EventId": id,
            "NotAfter": "1 Mar 2026 11:30:00 GMT", "State": "active"
        }])
    );
    assert_eq!(server.get(B_IP, scheduled).text(), "[]", "only A's");
    assert_eq!(server.get(A_IP, history).text(), "[]");

    let out = events(&["clear", "--instance", A, "--completed"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(server.get(A_IP, scheduled).text(), "[]");
    let past: serde_json::Value =
        serde_json::from_str(&server.get(A_IP, history).text()).expect("json list");
    assert_eq!(past[0]["EventId"], id.as_str());
    assert_eq!(past[0]["State"], "completed");
    assert_eq!(events(&["clear", "--instance", A]).status.code(), Some(3));
    let list = events(&["list", "--instance", A]);
    assert!(String::from_utf8_lossy(&list.stdout).contains(&id));

    let bad = events(&["schedule", "--instance", A, "--not-before", "tomorrow"]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("RFC 3339"));
    let backwards = events(&[
        "schedule",
        "--instance",
        A,
        "--not-before",
        "2026-03-01T09:00:00Z",
        "--not-after",
        "2026-03-01T08:00:00Z",
    ]);
    assert_eq!(backwards.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&backwards.stderr).contains("before not-before"));
}
