//! The password endpoint with Nova's rules, its durability across a restart, and the
//! operator command that reads and clears it.

mod common;

use common::*;
use std::process::Command;

const P: &str = "/openstack/2013-04-04/password";

fn operator(server: &Server, action: &str, uuid: &str) -> std::process::Output {
    Command::new(bin())
        .args(["password", action, "--instance", uuid, "--password-dir"])
        .arg(server.password_dir())
        .output()
        .expect("operator command runs")
}

#[test]
fn post_once_then_409_durable_and_operator_can_clear() {
    let mut server = Server::start(&[]);
    let empty = server.get(A_IP, P);
    assert_eq!((empty.status, empty.body.len()), (200, 0));
    assert_eq!(
        empty.header("content-type"),
        Some("text/html; charset=UTF-8")
    );
    assert_eq!(
        server.req(A_IP, "POST", P, &[], &[b'x'; 1021]).status,
        400,
        "over 1020 bytes"
    );
    assert_eq!(
        server.req(A_IP, "POST", P, &[], b"encrypted-blob").status,
        200
    );
    assert_eq!(
        server.get(A_IP, "/openstack/latest/password").text(),
        "encrypted-blob"
    );
    assert_eq!(server.req(A_IP, "POST", P, &[], b"again").status, 409);
    assert_eq!(
        server.req(A_IP, "POST", P, &[], &[b'x'; 1021]).status,
        409,
        "409 comes first, as in Nova"
    );
    assert_eq!(
        server.get(B_IP, P).body.len(),
        0,
        "B does not see A's password"
    );
    assert_eq!(server.req(A_IP, "PUT", P, &[], b"x").status, 400);
    assert_eq!(
        server
            .req(A_IP, "POST", "/openstack/2012-08-10/password", &[], b"x")
            .status,
        404,
        "no password before 2013-04-04"
    );

    server.restart();
    assert_eq!(
        server.get(A_IP, P).text(),
        "encrypted-blob",
        "survives a restart"
    );
    let got = operator(&server, "get", A);
    assert!(got.status.success());
    assert_eq!(got.stdout, b"encrypted-blob");
    let none = operator(&server, "get", B);
    assert_eq!(none.status.code(), Some(3), "exit 3 when none is stored");
    assert!(operator(&server, "clear", A).status.success());
    assert_eq!(
        server.get(A_IP, P).body.len(),
        0,
        "the running server sees the clear"
    );
    assert_eq!(server.req(A_IP, "POST", P, &[], b"new").status, 200);
    assert_eq!(operator(&server, "get", A).stdout, b"new");
    assert!(
        !server.log().contains("encrypted-blob"),
        "passwords never reach the log"
    );
}
