//! Who is asking, and isolation: A never sees B, spoofed X-Forwarded-For is ignored
//! from untrusted peers, signed headers are checked, bound listeners are their instance.

mod common;

use common::*;
use metadata_server::signature::SharedSecret;
use std::process::Command;

fn uuid_of(r: &Resp) -> String {
    let v: serde_json::Value = serde_json::from_slice(&r.body).expect("json");
    v["uuid"].as_str().expect("uuid").to_owned()
}

#[test]
fn source_address_picks_the_instance_and_a_never_sees_b() {
    let server = Server::start(&[]);
    assert_eq!(
        uuid_of(&server.get(A_IP, "/openstack/latest/meta_data.json")),
        A
    );
    assert_eq!(
        uuid_of(&server.get(B_IP, "/openstack/latest/meta_data.json")),
        B
    );
    assert_eq!(
        server.get(A_IP, "/latest/meta-data/local-ipv4").text(),
        A_IP
    );
    assert_eq!(
        server.get(B_IP, "/latest/meta-data/local-ipv4").text(),
        B_IP
    );
    // Spoofed X-Forwarded-For from an untrusted peer changes nothing.
    let spoof = server.req(
        A_IP,
        "GET",
        "/openstack/latest/meta_data.json",
        &[("X-Forwarded-For", B_IP)],
        b"",
    );
    assert_eq!(uuid_of(&spoof), A);
    let spoof = server.req(
        NOBODY_IP,
        "GET",
        "/openstack/latest/meta_data.json",
        &[("X-Forwarded-For", B_IP)],
        b"",
    );
    assert_eq!(spoof.status, 404);
    // Signed headers are ignored without a configured secret.
    let secret = SharedSecret::from_file_bytes(b"s3cret");
    let sig = secret.sign(B);
    let h = [
        ("X-Instance-ID", B),
        ("X-Tenant-ID", "a1b2c3d4e5f60718293a4b5c6d7e8f90"),
        ("X-Instance-ID-Signature", sig.as_str()),
    ];
    assert_eq!(
        uuid_of(&server.req(A_IP, "GET", "/openstack/latest/meta_data.json", &h, b"")),
        A
    );
}

#[test]
fn trusted_proxy_forwarded_for_is_honoured() {
    let server = Server::start(&["--trusted-proxy", "127.0.0.9/32"]);
    let r = server.req(
        "127.0.0.9",
        "GET",
        "/openstack/latest/meta_data.json",
        &[("X-Forwarded-For", B_IP)],
        b"",
    );
    assert_eq!(uuid_of(&r), B);
    let r = server.req(
        "127.0.0.9",
        "GET",
        "/openstack/latest/meta_data.json",
        &[("X-Forwarded-For", "10.9.9.9, 127.0.0.2")],
        b"",
    );
    assert_eq!(
        uuid_of(&r),
        A,
        "the right-most entry is the one our proxy added"
    );
    let r = server.req(
        "127.0.0.9",
        "GET",
        "/openstack/latest/meta_data.json",
        &[("X-Forwarded-For", "garbage")],
        b"",
    );
    assert_eq!(r.status, 404);
    // Not trusted: its own address decides.
    let r = server.req(
        "127.0.0.8",
        "GET",
        "/openstack/latest/meta_data.json",
        &[("X-Forwarded-For", B_IP)],
        b"",
    );
    assert_eq!(r.status, 404);
}

#[test]
fn neutron_signed_headers() {
    let dir = tempfile::tempdir().expect("tmp");
    let secret_file = dir.path().join("secret");
    std::fs::write(&secret_file, "s3cret\n").expect("write");
    let server = Server::start(&[
        "--proxy-shared-secret-file",
        secret_file.to_str().expect("utf8"),
    ]);
    let secret = SharedSecret::from_file_bytes(b"s3cret");
    let sig_b = secret.sign(B);
    let tenant_b = "a1b2c3d4e5f60718293a4b5c6d7e8f90";
    let path = "/openstack/latest/meta_data.json";
    let ok = server.req(
        NOBODY_IP,
        "GET",
        path,
        &[
            ("X-Instance-ID", B),
            ("X-Tenant-ID", tenant_b),
            ("X-Instance-ID-Signature", &sig_b),
        ],
        b"",
    );
    assert_eq!(uuid_of(&ok), B);
    // Bad signature: 403.
    let bad = secret.sign(A);
    let r = server.req(
        NOBODY_IP,
        "GET",
        path,
        &[
            ("X-Instance-ID", B),
            ("X-Tenant-ID", tenant_b),
            ("X-Instance-ID-Signature", &bad),
        ],
        b"",
    );
    assert_eq!(r.status, 403);
    let r = server.req(
        NOBODY_IP,
        "GET",
        path,
        &[
            ("X-Instance-ID", B),
            ("X-Tenant-ID", tenant_b),
            ("X-Instance-ID-Signature", "00"),
        ],
        b"",
    );
    assert_eq!(r.status, 403);
    // Missing or repeated header: 400.
    let r = server.req(
        NOBODY_IP,
        "GET",
        path,
        &[("X-Instance-ID", B), ("X-Instance-ID-Signature", &sig_b)],
        b"",
    );
    assert_eq!(r.status, 400);
    let r = server.req(
        NOBODY_IP,
        "GET",
        path,
        &[
            ("X-Instance-ID", B),
            ("X-Instance-ID", B),
            ("X-Tenant-ID", tenant_b),
            ("X-Instance-ID-Signature", &sig_b),
        ],
        b"",
    );
    assert_eq!(r.status, 400);
    // Tenant mismatch or unknown instance: 404.
    let r = server.req(
        NOBODY_IP,
        "GET",
        path,
        &[
            ("X-Instance-ID", B),
            ("X-Tenant-ID", "other"),
            ("X-Instance-ID-Signature", &sig_b),
        ],
        b"",
    );
    assert_eq!(r.status, 404);
    let ghost = "00000000-0000-4000-8000-000000000000";
    let sig_ghost = secret.sign(ghost);
    let r = server.req(
        NOBODY_IP,
        "GET",
        path,
        &[
            ("X-Instance-ID", ghost),
            ("X-Tenant-ID", ""),
            ("X-Instance-ID-Signature", &sig_ghost),
        ],
        b"",
    );
    assert_eq!(r.status, 404);
    // The EC2 version listing stays open, as in Nova.
    let r = server.req(
        NOBODY_IP,
        "GET",
        "/",
        &[("X-Instance-ID", B), ("X-Instance-ID-Signature", "00")],
        b"",
    );
    assert_eq!(r.status, 200);
    let metrics = request(NOBODY_IP, server.metrics_port, "GET", "/metrics", &[], b"").text();
    assert!(
        metrics.contains("metadata_signature_mismatches_total 2"),
        "{metrics}"
    );
}

#[test]
fn bound_listeners_are_their_instance_whoever_connects() {
    let dir = tempfile::tempdir().expect("tmp");
    let sock = dir.path().join("c.sock");
    let tcp = format!("127.0.0.1:0={B}");
    let unix = format!("{}={C}", sock.display());
    let server = Server::start(&["--instance-listener", &tcp, "--instance-listener", &unix]);
    let port = server.bound_port(B);
    // From A's address, on B's listener: B, and headers cannot change that.
    let r = request(
        A_IP,
        port,
        "GET",
        "/openstack/latest/meta_data.json",
        &[("X-Forwarded-For", A_IP)],
        b"",
    );
    assert_eq!(uuid_of(&r), B);
    // A unix socket (QEMU guestfwd), read with curl.
    let out = Command::new("curl")
        .args([
            "-sS",
            "--unix-socket",
            sock.to_str().expect("utf8"),
            "http://169.254.169.254/openstack/latest/meta_data.json",
        ])
        .output()
        .expect("curl runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(v["uuid"], C);
    assert_eq!(
        v["random_seed"], "c2VlZA==",
        "a stored seed is served as stored"
    );
}
