//! The API in process: requests straight to `Api::respond` over a SQLite state
//! folder (no sockets), and once through the sockets for what only they do (body
//! limits). Microversion negotiation and echo, Nova's fault bodies, the shapes of
//! flavors and keypairs per microversion, policy, tokens, and a property test that
//! no random request gets a 5xx.

mod common;

use common::{header, Harness};
use compute_api::auth::AuthMode;
use compute_api::Service;
use compute_store::Role;
use http::Method;
use serde_json::{json, Value};
use std::time::Duration;

#[test]
fn microversions_are_negotiated_and_echoed_as_nova_does() {
    let h = Harness::new(AuthMode::NoAuth);
    let root = h.call(Service::Compute, Method::GET, "/", &[], "");
    assert_eq!(root.status, 200);
    assert_eq!(root.body["versions"][0]["version"], "2.96");
    assert_eq!(
        root.body["versions"][0]["links"][0]["href"], "http://api.test:8774/v2.1/",
        "absolute, from the Host the client used"
    );
    assert_eq!(
        header(&root, "openstack-api-version"),
        None,
        "/ is not versioned"
    );
    let doc = h.call(Service::Compute, Method::GET, "/v2.1/", &[], "");
    assert_eq!(doc.body["version"]["min_version"], "2.1");
    assert_eq!(header(&doc, "openstack-api-version"), Some("compute 2.1"));
    assert_eq!(header(&doc, "x-openstack-nova-api-version"), Some("2.1"));
    assert!(header(&doc, "vary").is_some_and(|v| v.contains("OpenStack-API-Version")));
    let latest = h.compute(Method::GET, "/v2.1/flavors", "latest", "");
    assert_eq!(
        header(&latest, "openstack-api-version"),
        Some("compute 2.96")
    );
    let legacy = h.call(
        Service::Compute,
        Method::GET,
        "/v2.1/flavors",
        &[("x-openstack-nova-api-version", "2.55")],
        "",
    );
    assert_eq!(
        header(&legacy, "x-openstack-nova-api-version"),
        Some("2.55")
    );
    let high = h.compute(Method::GET, "/v2.1/flavors", "2.97", "");
    assert_eq!(high.status, 406);
    assert_eq!(
        high.body,
        json!({"computeFault": {"code": 406, "message":
            "Version 2.97 is not supported by the API. Minimum is 2.1 and maximum is 2.96."}})
    );
    let bad = h.compute(Method::GET, "/v2.1/flavors", "two", "");
    assert_eq!(bad.status, 400);
    assert!(bad.body["badRequest"]["message"]
        .as_str()
        .is_some_and(|m| m.contains("invalid format")));
    let missing = h.compute(Method::GET, "/v2.1/servers-of-nobody", "2.1", "");
    assert_eq!(missing.status, 404);
    assert_eq!(missing.body["itemNotFound"]["code"], 404);
    let method = h.compute(Method::PATCH, "/v2.1/flavors", "2.1", "");
    assert_eq!(method.status, 405);
    assert!(method.body.get("badMethod").is_some());
    let with_project = h.compute(Method::GET, "/v2.1/some-project/flavors", "2.1", "");
    assert_eq!(
        with_project.status, 200,
        "Nova's optional project id segment"
    );
}

#[test]
fn discovery_of_image_and_identity_is_their_own() {
    let h = Harness::new(AuthMode::NoAuth);
    let image = h.call(Service::Image, Method::GET, "/", &[], "");
    assert_eq!(image.status, 300);
    assert_eq!(image.body["versions"][0]["id"], "v2.17");
    assert_eq!(
        h.call(Service::Image, Method::GET, "/versions", &[], "")
            .status,
        200
    );
    let identity = h.call(Service::Identity, Method::GET, "/", &[], "");
    assert_eq!(identity.status, 300);
    assert_eq!(identity.body["versions"]["values"][0]["id"], "v3.14");
    assert!(header(&identity, "location").is_some());
    let v3 = h.call(Service::Identity, Method::GET, "/v3", &[], "");
    assert_eq!(v3.body["version"]["status"], "stable");
}

#[test]
fn tokens_scope_requests_and_policy_holds() {
    let h = Harness::new(AuthMode::Keystone);
    h.user("alice", "alpha", Role::Admin);
    h.user("bob", "beta", Role::Member);
    let none = h.compute(Method::GET, "/v2.1/flavors", "2.1", "");
    assert_eq!(none.status, 401);
    assert_eq!(
        header(&none, "www-authenticate"),
        Some("Keystone uri=\"http://api.test:5000/v3\"")
    );
    assert_eq!(none.body["unauthorized"]["code"], 401);
    let alice = h.token("alice", "alpha");
    let bob = h.token("bob", "beta");
    let with = |token: &str, method: Method, path: &str, version: &str, body: &str| {
        let mv = format!("compute {version}");
        h.call(
            Service::Compute,
            method,
            path,
            &[("x-auth-token", token), ("openstack-api-version", &mv)],
            body,
        )
    };
    assert_eq!(
        with(&alice, Method::GET, "/v2.1/flavors", "2.1", "").status,
        200
    );
    // Bob may not create a flavor; alice may, once.
    let flavor = r#"{"flavor": {"name": "f1", "ram": 64, "vcpus": 1, "disk": 1, "id": "f1",
        "os-flavor-access:is_public": false}}"#;
    let denied = with(&bob, Method::POST, "/v2.1/flavors", "2.1", flavor);
    assert_eq!(denied.status, 403);
    assert_eq!(
        denied.body["forbidden"]["message"],
        "Policy doesn't allow os_compute_api:os-flavor-manage:create to be performed."
    );
    assert_eq!(
        with(&alice, Method::POST, "/v2.1/flavors", "2.1", flavor).status,
        200
    );
    let dup = with(&alice, Method::POST, "/v2.1/flavors", "2.1", flavor);
    assert_eq!(dup.status, 409);
    assert_eq!(
        dup.body["conflictingRequest"]["message"],
        "Flavor with name f1 already exists."
    );
    // A private flavor is invisible to a member: 404, as for one that does not exist.
    assert_eq!(
        with(&bob, Method::GET, "/v2.1/flavors/f1", "2.1", "").status,
        404
    );
    assert_eq!(
        with(&alice, Method::GET, "/v2.1/flavors/f1", "2.1", "").status,
        200
    );
    let all = with(
        &alice,
        Method::GET,
        "/v2.1/flavors?is_public=None",
        "2.1",
        "",
    );
    assert_eq!(all.body["flavors"].as_array().map(Vec::len), Some(6));
    let public = with(&bob, Method::GET, "/v2.1/flavors?is_public=None", "2.1", "");
    assert_eq!(public.body["flavors"].as_array().map(Vec::len), Some(5));
    let bad = with(
        &alice,
        Method::GET,
        "/v2.1/flavors?is_public=maybe",
        "2.1",
        "",
    );
    assert_eq!(bad.status, 400);
    // A token for the wrong project (no role there), a forged one, a disabled user.
    let body = json!({"auth": {"identity": {"methods": ["password"], "password": {"user": {
        "name": "bob", "domain": {"name": "Default"}, "password": "bob"}}},
        "scope": {"project": {"name": "alpha", "domain": {"name": "Default"}}}}});
    let wrong = h.call(
        Service::Identity,
        Method::POST,
        "/v3/auth/tokens",
        &[],
        &body.to_string(),
    );
    assert_eq!(wrong.status, 401);
    let forged = format!("{}x", &alice[..alice.len() - 1]);
    assert_eq!(
        with(&forged, Method::GET, "/v2.1/flavors", "2.1", "").status,
        401
    );
    h.store()
        .set_user_enabled("bob-id", false)
        .expect("disable");
    assert_eq!(
        with(&bob, Method::GET, "/v2.1/flavors", "2.1", "").status,
        401
    );
    // Identity validates tokens for a caller that has one.
    let v = h.call(
        Service::Identity,
        Method::GET,
        "/v3/auth/tokens",
        &[("x-auth-token", &alice), ("x-subject-token", &alice)],
        "",
    );
    assert_eq!(v.status, 200);
    assert_eq!(v.body["token"]["project"]["name"], "alpha");
    assert_eq!(v.body["token"]["catalog"].as_array().map(Vec::len), Some(3));
}

#[test]
fn flavor_shapes_follow_the_microversion() {
    let h = Harness::new(AuthMode::NoAuth);
    let old = h.compute(Method::GET, "/v2.1/flavors/1", "2.1", "");
    assert_eq!(old.body["flavor"]["swap"], "");
    assert!(old.body["flavor"].get("description").is_none());
    assert!(old.body["flavor"].get("extra_specs").is_none());
    let mid = h.compute(Method::GET, "/v2.1/flavors/1", "2.55", "");
    assert_eq!(mid.body["flavor"]["description"], Value::Null);
    assert!(mid.body["flavor"].get("extra_specs").is_none());
    let new = h.compute(Method::GET, "/v2.1/flavors/1", "2.75", "");
    assert_eq!(new.body["flavor"]["swap"], 0);
    assert_eq!(new.body["flavor"]["extra_specs"], json!({}));
    let list = h.compute(Method::GET, "/v2.1/flavors", "2.55", "");
    let first = &list.body["flavors"][0];
    assert_eq!(first["id"], "1");
    assert!(first.get("ram").is_none(), "the list is id, name, links");
    assert_eq!(
        first["links"][1]["href"], "http://api.test:8774/flavors/1",
        "bookmark"
    );
    // Paging: a full page has a next link with its last id as the marker.
    let page = h.compute(Method::GET, "/v2.1/flavors?limit=2", "2.1", "");
    assert_eq!(page.body["flavors"].as_array().map(Vec::len), Some(2));
    assert!(page.body["flavors_links"][0]["href"]
        .as_str()
        .is_some_and(|l| l.ends_with("marker=2")));
    let next = h.compute(Method::GET, "/v2.1/flavors?limit=2&marker=2", "2.1", "");
    assert_eq!(next.body["flavors"][0]["id"], "3");
    assert_eq!(
        h.compute(Method::GET, "/v2.1/flavors?marker=zz", "2.1", "")
            .status,
        400
    );
    // Extra specs.
    let set = h.compute(
        Method::POST,
        "/v2.1/flavors/1/os-extra_specs",
        "2.1",
        r#"{"extra_specs": {"hw:cpu_policy": "dedicated", "n": 2}}"#,
    );
    assert_eq!(set.status, 200);
    assert_eq!(set.body["extra_specs"]["n"], "2", "kept as text");
    let one = h.compute(Method::GET, "/v2.1/flavors/1/os-extra_specs/n", "2.1", "");
    assert_eq!(one.body, json!({"n": "2"}));
    let mismatch = h.compute(
        Method::PUT,
        "/v2.1/flavors/1/os-extra_specs/n",
        "2.1",
        r#"{"m": "1"}"#,
    );
    assert_eq!(
        mismatch.body["badRequest"]["message"],
        "Request body and URI mismatch"
    );
    assert_eq!(
        h.compute(
            Method::PUT,
            "/v2.1/flavors/1/os-extra_specs/n",
            "2.1",
            r#"{"n": "3"}"#
        )
        .status,
        200
    );
    assert_eq!(
        h.compute(
            Method::DELETE,
            "/v2.1/flavors/1/os-extra_specs/n",
            "2.1",
            ""
        )
        .status,
        202
    );
    let gone = h.compute(Method::GET, "/v2.1/flavors/1/os-extra_specs/n", "2.1", "");
    assert_eq!(
        gone.body["itemNotFound"]["message"],
        "Flavor 1 has no extra specs with key n."
    );
    let shown = h.compute(Method::GET, "/v2.1/flavors/1", "2.61", "");
    assert_eq!(
        shown.body["flavor"]["extra_specs"],
        json!({"hw:cpu_policy": "dedicated"})
    );
    // Create: 200, description from 2.55 only, Nova's checks.
    let made = h.compute(
        Method::POST,
        "/v2.1/flavors",
        "2.55",
        r#"{"flavor": {"name": "d1", "ram": "128", "vcpus": 1, "disk": 0, "id": null,
            "swap": "", "description": "small"}}"#,
    );
    assert_eq!(made.status, 200, "{}", made.body);
    assert_eq!(made.body["flavor"]["description"], "small");
    assert!(
        made.body["flavor"]["id"]
            .as_str()
            .is_some_and(|i| i.len() == 36),
        "a uuid"
    );
    let early = h.compute(
        Method::POST,
        "/v2.1/flavors",
        "2.1",
        r#"{"flavor": {"name": "d2", "ram": 128, "vcpus": 1, "disk": 0, "description": "x"}}"#,
    );
    assert_eq!(early.status, 400);
    for bad in [
        r#"{"flavor": {"name": "d3", "vcpus": 1, "disk": 0}}"#,
        r#"{"flavor": {"name": "d3", "ram": -1, "vcpus": 1, "disk": 0}}"#,
        r#"{"flavor": {"name": " d3", "ram": 64, "vcpus": 1, "disk": 0}}"#,
        r#"{"flavor": {"name": "d3", "ram": 64, "vcpus": 1, "disk": 0, "id": " x"}}"#,
        r#"{"flavor": {"name": "d3", "ram": 64, "vcpus": 1000, "disk": 0}}"#,
        r#"{"flavor": []}"#,
        r#"[]"#,
        r#"{"#,
    ] {
        let a = h.compute(Method::POST, "/v2.1/flavors", "2.1", bad);
        assert_eq!(a.status, 400, "{bad}: {}", a.body);
    }
    let id = made.body["flavor"]["id"].as_str().expect("id").to_owned();
    assert_eq!(
        h.compute(Method::DELETE, &format!("/v2.1/flavors/{id}"), "2.1", "")
            .status,
        202
    );
    assert_eq!(
        h.compute(Method::DELETE, &format!("/v2.1/flavors/{id}"), "2.1", "")
            .status,
        404
    );
}

const KEY: &str = "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAAAgQDx8nkQv/zgGgB4rMYmIf+6A4l6Rr+o/6lHBQdW5aYd44bd8JttDCE/F/pNRr0lRE+PiqSPO8nDPHw0010JeMH9gYgnnFlyY3/OcJ02RhIPyyxYpv9FhY+2YiUkpwFOcLImyrxEsYXpD/0d3ac30bNH6Sw9JD9UZHYcpSxsIbECHw== Generated-by-Nova";

#[test]
fn keypair_shapes_and_codes_follow_the_microversion() {
    let h = Harness::new(AuthMode::NoAuth);
    let body = |name: &str| json!({"keypair": {"name": name, "public_key": KEY}}).to_string();
    let old = h.compute(Method::POST, "/v2.1/os-keypairs", "2.1", &body("a"));
    assert_eq!(old.status, 200);
    assert!(old.body["keypair"].get("type").is_none());
    assert_eq!(
        old.body["keypair"]["fingerprint"], "1e:2c:9b:56:79:4b:45:77:f9:ca:7a:98:2c:b0:d5:3c",
        "Nova's fingerprint of Nova's key"
    );
    let new = h.compute(Method::POST, "/v2.1/os-keypairs", "2.2", &body("b"));
    assert_eq!(new.status, 201);
    assert_eq!(new.body["keypair"]["type"], "ssh");
    assert_eq!(new.body["keypair"]["user_id"], "operator");
    let dup = h.compute(Method::POST, "/v2.1/os-keypairs", "2.2", &body("b"));
    assert_eq!(dup.status, 409);
    assert_eq!(
        dup.body["conflictingRequest"]["message"],
        "Key pair 'b' already exists."
    );
    let junk = h.compute(
        Method::POST,
        "/v2.1/os-keypairs",
        "2.2",
        r#"{"keypair": {"name": "c", "public_key": "not a key"}}"#,
    );
    assert_eq!(junk.status, 400);
    let required = h.compute(
        Method::POST,
        "/v2.1/os-keypairs",
        "2.92",
        r#"{"keypair": {"name": "c"}}"#,
    );
    assert_eq!(required.status, 400, "no generation from 2.92");
    let list = h.compute(Method::GET, "/v2.1/os-keypairs", "2.2", "");
    assert_eq!(list.body["keypairs"][0]["keypair"]["name"], "a");
    assert_eq!(list.body["keypairs"][0]["keypair"]["type"], "ssh");
    let page = h.compute(Method::GET, "/v2.1/os-keypairs?limit=1", "2.35", "");
    assert!(page.body["keypairs_links"][0]["href"]
        .as_str()
        .is_some_and(|l| l.contains("marker=a")));
    let shown = h.compute(Method::GET, "/v2.1/os-keypairs/a", "2.2", "");
    assert_eq!(shown.body["keypair"]["deleted"], false);
    assert!(shown.body["keypair"]["id"].is_u64());
    let missing = h.compute(Method::GET, "/v2.1/os-keypairs/zz", "2.2", "");
    assert_eq!(
        missing.body["itemNotFound"]["message"],
        "Keypair zz not found for user operator"
    );
    assert_eq!(
        h.compute(Method::DELETE, "/v2.1/os-keypairs/a", "2.1", "")
            .status,
        202
    );
    assert_eq!(
        h.compute(Method::DELETE, "/v2.1/os-keypairs/b", "2.2", "")
            .status,
        204
    );
    let limits = h.compute(Method::GET, "/v2.1/limits", "2.57", "");
    let abs = &limits.body["limits"]["absolute"];
    assert_eq!(abs["maxTotalKeypairs"], 100);
    assert!(abs.get("maxPersonality").is_none(), "gone at 2.57");
    let old_limits = h.compute(Method::GET, "/v2.1/limits", "2.1", "");
    assert_eq!(old_limits.body["limits"]["absolute"]["maxPersonality"], 5);
}

#[test]
fn bodies_are_bounded_in_depth() {
    let h = Harness::new(AuthMode::NoAuth);
    let deep = format!("{}{}", "[".repeat(100), "]".repeat(100));
    let a = h.compute(Method::POST, "/v2.1/os-keypairs", "2.2", &deep);
    assert_eq!(a.status, 400);
    assert!(a.body["badRequest"]["message"]
        .as_str()
        .is_some_and(|m| m.contains("deeper than 32")));
    let media = h.call(
        Service::Compute,
        Method::POST,
        "/v2.1/os-keypairs",
        &[("content-type", "text/plain")],
        "x",
    );
    assert_eq!(media.status, 415);
}

#[test]
fn the_sockets_refuse_a_body_over_the_limit() {
    use std::io::{Read, Write};
    let h = Harness::new(AuthMode::NoAuth);
    let listener =
        h.rt.block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let (_stop, stop_rx) = tokio::sync::watch::channel(false);
    h.rt.spawn(compute_api::server::serve(
        h.api.clone(),
        vec![(Service::Compute, listener)],
        stop_rx,
    ));
    let mut s = std::net::TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    write!(
        s,
        "POST /v2.1/os-keypairs HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 999999999\r\n\r\n{{"
    )
    .expect("write");
    let mut reply = String::new();
    let _ = s.read_to_string(&mut reply);
    assert!(reply.starts_with("HTTP/1.1 413"), "{reply}");
    assert!(reply.contains("overLimit"), "{reply}");
}

mod properties {
    use super::*;
    use proptest::prelude::*;

    fn segment() -> impl Strategy<Value = String> {
        prop_oneof![
            Just("v2.1".to_owned()),
            Just("flavors".to_owned()),
            Just("os-keypairs".to_owned()),
            Just("os-extra_specs".to_owned()),
            Just("detail".to_owned()),
            Just("limits".to_owned()),
            Just("1".to_owned()),
            "[a-zA-Z0-9%._~-]{0,12}",
        ]
    }

    fn body() -> impl Strategy<Value = String> {
        prop_oneof![
            Just(String::new()),
            Just(r#"{"flavor": {"name": "p", "ram": 64, "vcpus": 1, "disk": 0}}"#.to_owned()),
            Just(r#"{"keypair": {"name": "p"}}"#.to_owned()),
            Just(r#"{"extra_specs": {"a": "b"}}"#.to_owned()),
            "\\PC{0,64}",
            proptest::collection::vec(any::<u8>(), 0..64)
                .prop_map(|b| String::from_utf8_lossy(&b).into_owned()),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 200, .. ProptestConfig::default() })]

        #[test]
        fn no_request_gets_a_server_error(
            segs in proptest::collection::vec(segment(), 0..5),
            method in prop_oneof![Just(Method::GET), Just(Method::POST), Just(Method::PUT),
                Just(Method::DELETE), Just(Method::PATCH)],
            version in prop_oneof![Just("2.1"), Just("2.61"), Just("latest"), Just("x"), Just("2.92")],
            query in "[a-z_=&0-9A-Za-z%]{0,20}",
            body in body(),
            service in prop_oneof![Just(Service::Compute), Just(Service::Image), Just(Service::Identity)],
        ) {
            thread_local! {
                static H: Harness = Harness::new(AuthMode::NoAuth);
            }
            let path = format!("/{}?{query}", segs.join("/"));
            let Ok(_) = path.parse::<http::Uri>() else { return Ok(()) };
            let mv = format!("compute {version}");
            let status = H.with(|h| {
                h.call(service, method.clone(), &path, &[("openstack-api-version", &mv)], &body).status
            });
            prop_assert!(status < 500, "{method} {path} {body:?}: {status}");
        }
    }
}
