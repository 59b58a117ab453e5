//! IMDSv2 tokens over real sockets: issuing, TTL bounds, X-Forwarded-For refusal,
//! binding to one instance, optional and required modes, Firecracker spellings.

mod common;

use common::*;

const TTL: &str = "X-aws-ec2-metadata-token-ttl-seconds";
const TOKEN: &str = "X-aws-ec2-metadata-token";

fn token(server: &Server, from: &str) -> String {
    let r = server.req(from, "PUT", "/latest/api/token", &[(TTL, "60")], b"");
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("content-type"), Some("text/plain; charset=UTF-8"));
    r.text()
}

#[test]
fn token_rules() {
    let server = Server::start(&[]);
    let put = |h: &[(&str, &str)]| server.req(A_IP, "PUT", "/latest/api/token", h, b"").status;
    assert_eq!(put(&[]), 400, "TTL missing");
    assert_eq!(put(&[(TTL, "0")]), 400);
    assert_eq!(put(&[(TTL, "21601")]), 400);
    assert_eq!(put(&[(TTL, "ten")]), 400);
    assert_eq!(put(&[(TTL, "1")]), 200);
    assert_eq!(put(&[(TTL, "21600")]), 200);
    assert_eq!(put(&[(TTL, "60"), ("X-Forwarded-For", A_IP)]), 403);
    assert_eq!(
        server
            .req(A_IP, "PUT", "/ec2/latest/api/token", &[(TTL, "60")], b"")
            .status,
        200
    );

    let a = token(&server, A_IP);
    let b = token(&server, B_IP);
    let id = "/latest/meta-data/instance-id";
    assert_eq!(
        server.req(A_IP, "GET", id, &[(TOKEN, &a)], b"").text(),
        "i-d8e02d56"
    );
    // Optional mode: no token is fine; a bad or foreign token is not.
    assert_eq!(server.get(A_IP, id).status, 200);
    assert_eq!(
        server.req(A_IP, "GET", id, &[(TOKEN, &b)], b"").status,
        401,
        "B's token is refused for A"
    );
    assert_eq!(
        server.req(B_IP, "GET", id, &[(TOKEN, &a)], b"").status,
        401,
        "A's token is refused for B"
    );
    assert_eq!(
        server
            .req(A_IP, "GET", id, &[(TOKEN, "garbage")], b"")
            .status,
        401
    );
    // Firecracker's spellings.
    let fc = server.req(
        A_IP,
        "PUT",
        "/latest/api/token",
        &[("X-metadata-token-ttl-seconds", "60")],
        b"",
    );
    assert_eq!(fc.status, 200);
    assert_eq!(
        server
            .req(A_IP, "GET", id, &[("X-metadata-token", &fc.text())], b"")
            .status,
        200
    );
}

#[test]
fn required_mode_globally_and_per_instance() {
    let per = format!("{A}=required");
    let server = Server::start(&["--instance-tokens", &per]);
    let id = "/latest/meta-data/instance-id";
    assert_eq!(server.get(A_IP, id).status, 401);
    assert_eq!(
        server.get(A_IP, "/openstack/latest/meta_data.json").status,
        401
    );
    assert_eq!(server.get(B_IP, id).status, 200, "B stays optional");
    let a = token(&server, A_IP);
    assert_eq!(server.req(A_IP, "GET", id, &[(TOKEN, &a)], b"").status, 200);

    let server = Server::start(&["--tokens", "required"]);
    assert_eq!(server.get(B_IP, id).status, 401);
    let b = token(&server, B_IP);
    assert_eq!(server.req(B_IP, "GET", id, &[(TOKEN, &b)], b"").status, 200);
    let metrics = request(NOBODY_IP, server.metrics_port, "GET", "/metrics", &[], b"").text();
    assert!(
        metrics.contains("metadata_tokenless_requests_total"),
        "{metrics}"
    );
}
