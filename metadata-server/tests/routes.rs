//! Every route of the spec over a real socket: the renderer's bytes, content types,
//! listings, 404s, HEAD, 405, and what an unknown caller sees.

mod common;

use base64::Engine;
use common::*;
use compute::metadata::{Body, Entry};
use compute::{render_service, Settings};

fn tree_of(uuid: &str) -> compute::MetadataTree {
    let inst = instances()
        .into_iter()
        .find(|i| i.uuid_str() == uuid)
        .expect("fixture instance");
    render_service(&inst, &Settings::default())
}

/// Every path of the rendered tree, as a guest would ask for it.
fn http_paths(path: &str) -> Vec<String> {
    let mut out = vec![format!("/{path}")];
    if let Some(rest) = path.strip_prefix("ec2/") {
        out.push(format!("/{rest}"));
    }
    out
}

#[test]
fn every_path_of_the_tree_serves_the_renderer_bytes() {
    let server = Server::start(&[]);
    for (uuid, ip) in [(A, A_IP), (B, B_IP)] {
        let tree = tree_of(uuid);
        let walked = tree.walk();
        assert!(walked.len() > 200, "the tree has every version");
        for (path, entry) in walked {
            for p in http_paths(&path) {
                let r = server.get(ip, &p);
                match entry {
                    Entry::Dir(d) => match &d.listing {
                        Some(l) => {
                            assert_eq!(r.status, 200, "{p}");
                            assert_eq!(r.body, l.as_ref(), "{p}");
                            assert_eq!(
                                r.header("content-type"),
                                Some("text/plain; charset=UTF-8"),
                                "{p}"
                            );
                            let slash = server.get(ip, &format!("{p}/"));
                            assert_eq!(slash.body, l.as_ref(), "{p}/ is the same listing");
                        }
                        None => {
                            assert_eq!(r.status, 404, "{p}");
                            assert_eq!(r.body, NOT_FOUND_BODY);
                        }
                    },
                    Entry::File(f) => {
                        assert_eq!(r.status, 200, "{p}");
                        assert_eq!(
                            r.header("content-type"),
                            Some(f.content_type.header_value()),
                            "{p}"
                        );
                        match &f.body {
                            Body::Static(b) => assert_eq!(r.body, b.as_ref(), "{p}"),
                            Body::Seeded { head, tail } => {
                                assert!(r.body.starts_with(head) && r.body.ends_with(tail), "{p}");
                                let seed = &r.body[head.len()..r.body.len() - tail.len()];
                                let raw = base64::engine::general_purpose::STANDARD
                                    .decode(seed)
                                    .expect("b64");
                                assert_eq!(raw.len(), 512);
                            }
                        }
                        let below = server.get(ip, &format!("{p}/below"));
                        assert_eq!(below.status, 404, "below a leaf: {p}");
                    }
                    Entry::Live(_) => {
                        assert_eq!(r.status, 200, "{p}");
                        assert!(!r.body.is_empty(), "{p}");
                    }
                    Entry::Password => {
                        assert_eq!(r.status, 200, "{p}");
                        assert_eq!(r.header("content-type"), Some("text/html; charset=UTF-8"));
                        assert!(r.body.is_empty());
                    }
                }
            }
        }
    }
}

/// With `--ec2-versions nova`, Nova's EC2 tree exactly (the AWS versions are in
/// tests/aws.rs); the OpenStack tree is the same either way.
#[test]
fn listings_and_normalisation_match_nova() {
    let server = Server::start(&["--ec2-versions", "nova"]);
    let root = server.get(A_IP, "/");
    assert_eq!(root.text(), "1.0\n2007-01-19\n2007-03-01\n2007-08-29\n2007-10-10\n2007-12-15\n2008-02-01\n2008-09-01\n2009-04-04\nlatest");
    assert_eq!(server.get(A_IP, "/ec2").body, root.body);
    let os = server.get(A_IP, "/openstack");
    assert!(
        os.text().starts_with("2012-08-10\n2013-04-04")
            && os.text().ends_with("2025-04-04\nlatest")
    );
    let v = server.get(A_IP, "/openstack/2016-10-06/");
    assert_eq!(v.text(), "meta_data.json\nuser_data\npassword\nvendor_data.json\nnetwork_data.json\nvendor_data2.json");
    let a = server.get(A_IP, "/latest/meta-data/instance-id");
    for p in [
        "/latest/meta-data/instance-id/",
        "//latest//meta-data/instance-id",
        "/ec2/latest/meta-data/instance-id",
        "/latest/x/../meta-data/instance-id",
        "/../../latest/meta-data/instance-id?x=1",
        "/2009-04-04/meta-data/instance-id",
    ] {
        let r = server.get(A_IP, p);
        assert_eq!((r.status, &r.body), (200, &a.body), "{p}");
    }
    assert_eq!(a.text(), "i-d8e02d56");
    assert_eq!(
        server.get(A_IP, "/latest/meta-data/public-keys/").text(),
        "0=mykey"
    );
    assert_eq!(
        server.get(A_IP, "/latest/meta-data/public-keys/0/").text(),
        "openssh-key"
    );
    assert_eq!(
        server.get(A_IP, "/latest/meta-data/placement/").text(),
        "availability-zone"
    );
    assert_eq!(
        server
            .get(A_IP, "/latest/meta-data/ami-manifest-path")
            .text(),
        "FIXME"
    );
    let pub4 = server.get(A_IP, "/latest/meta-data/public-ipv4");
    assert_eq!((pub4.status, pub4.body.len()), (200, 0));
    let ud = server.get(A_IP, "/latest/user-data");
    assert_eq!(ud.text(), "#!/bin/bash\necho 'Extra user data here'");
    assert_eq!(ud.header("content-type"), Some("text/plain; charset=UTF-8"));
    let nd = server.get(A_IP, "/openstack/latest/network_data.json");
    assert_eq!(nd.header("content-type"), Some("text/plain; charset=UTF-8"));
    let md = server.get(A_IP, "/openstack/latest/meta_data.json");
    assert_eq!(md.header("content-type"), Some("application/json"));
    assert_eq!(
        server
            .get(A_IP, "/openstack/latest/vendor_data.json")
            .text(),
        "{}"
    );
    assert_eq!(
        server
            .get(A_IP, "/openstack/latest/vendor_data2.json")
            .text(),
        "{\"static\": {}}"
    );
    // A stored seed is served as stored.
    let c = server.req(A_IP, "GET", "/openstack/latest/meta_data.json", &[], b"");
    assert_ne!(
        c.body, md.body,
        "a fresh seed per request without a stored one"
    );
}

#[test]
fn unknown_paths_and_versions_are_404_with_novas_body() {
    let server = Server::start(&[]);
    for p in [
        "/nope",
        "/latest/meta-data/nope",
        "/2010-01-01/meta-data/",
        "/openstack/2011-01-01/meta_data.json",
        "/openstack/latest/nope.json",
        "/openstack/content",
        "/openstack/content/0000",
        "/openstack/latest/meta_data.json/x",
        "/latest/%ff",
    ] {
        let r = server.get(A_IP, p);
        assert_eq!(r.status, 404, "{p}");
        assert_eq!(r.body, NOT_FOUND_BODY, "{p}");
        assert_eq!(r.header("content-type"), Some("text/plain; charset=UTF-8"));
    }
    // An instance without user data: 404 for both trees.
    let listener = format!("127.0.0.1:0={C}");
    let server = Server::start(&["--instance-listener", &listener]);
    let bound_port = server.bound_port(C);
    assert_eq!(
        request(
            A_IP,
            bound_port,
            "GET",
            "/openstack/latest/user_data",
            &[],
            b""
        )
        .status,
        404
    );
    assert_eq!(
        request(A_IP, bound_port, "GET", "/latest/user-data", &[], b"").status,
        404
    );
    let listing = request(A_IP, bound_port, "GET", "/2009-04-04", &[], b"");
    assert_eq!(listing.text(), "meta-data/");
    let listing = request(A_IP, bound_port, "GET", "/latest", &[], b"");
    assert_eq!(listing.text(), "dynamic/\nmeta-data/");
}

#[test]
fn head_has_get_headers_and_no_body_and_other_methods_are_405() {
    let server = Server::start(&[]);
    for p in [
        "/latest/meta-data/instance-id",
        "/openstack/latest/meta_data.json",
        "/openstack",
        "/nope",
    ] {
        let g = server.get(A_IP, p);
        let h = server.req(A_IP, "HEAD", p, &[], b"");
        assert_eq!(h.status, g.status, "{p}");
        assert!(h.body.is_empty(), "{p}");
        assert_eq!(h.header("content-type"), g.header("content-type"), "{p}");
        assert_eq!(
            h.header("content-length"),
            g.header("content-length"),
            "{p}"
        );
    }
    for m in ["POST", "PUT", "DELETE", "PATCH"] {
        let r = server.req(A_IP, m, "/latest/meta-data/", &[], b"");
        assert_eq!(r.status, 405, "{m}");
        assert_eq!(r.header("allow"), Some("GET, HEAD"));
    }
    let r = server.req(A_IP, "DELETE", "/openstack/latest/password", &[], b"");
    assert_eq!(
        r.status, 400,
        "the password path answers other methods with 400"
    );
    let r = server.req(A_IP, "GET", "/latest/api/token", &[], b"");
    assert_eq!((r.status, r.header("allow")), (405, Some("OPTIONS, PUT")));
}

#[test]
fn unknown_caller_sees_only_version_listings() {
    let server = Server::start(&[]);
    assert_eq!(server.get(NOBODY_IP, "/").status, 200);
    assert_eq!(server.get(NOBODY_IP, "/openstack").status, 200);
    assert_eq!(
        server.get(NOBODY_IP, "/openstack").body,
        server.get(A_IP, "/openstack").body
    );
    for p in [
        "/latest/meta-data/",
        "/openstack/latest/meta_data.json",
        "/latest",
        "/openstack/latest",
        "/latest/api/token",
    ] {
        let r = server.get(NOBODY_IP, p);
        assert!(r.status == 404 || r.status == 405, "{p}: {}", r.status);
    }
    let put = server.req(
        NOBODY_IP,
        "PUT",
        "/latest/api/token",
        &[("X-aws-ec2-metadata-token-ttl-seconds", "60")],
        b"",
    );
    assert_eq!(put.status, 404);
}
