//! AWS's EC2 tree over real sockets: every path AWS added answers from the version
//! that added it and 404 below; a crawl of every version finds every listed entry
//! answering (with and without trailing slashes, and through `//`); AWS's headers and
//! token rules; tags per instance and per deployment; `--ec2-versions nova`.

mod common;

use common::*;
use compute::metadata::Ec2Version as V;
use std::collections::BTreeSet;

/// Instance B of the fixture: NIC fa:16:3e:00:00:01 (static 127.0.0.3/24 and
/// 2001:db8::5/64, floating IP 203.0.113.20) and NIC fa:16:3e:00:00:02 (DHCP).
const B_MAC: &str = "fa:16:3e:00:00:01";
const B_MAC2: &str = "fa:16:3e:00:00:02";

/// Every path AWS added that instance B has, the first version that has it, and
/// its answer.
fn aws_paths() -> Vec<(String, V, &'static str)> {
    let nic = |leaf: &str| format!("meta-data/network/interfaces/macs/{B_MAC}/{leaf}");
    let mut out = vec![
        ("meta-data/mac".to_owned(), V::V2011_01_01, B_MAC),
        (
            "meta-data/network/interfaces/macs/".into(),
            V::V2011_01_01,
            "fa:16:3e:00:00:01/\nfa:16:3e:00:00:02/",
        ),
        (nic("device-number"), V::V2011_01_01, "0"),
        (nic("interface-id"), V::V2011_01_01, "eni-1a2b3c4d5e6f70819"),
        (nic("local-hostname"), V::V2011_01_01, "web-02.novalocal"),
        (nic("local-ipv4s"), V::V2011_01_01, "127.0.0.3"),
        (nic("mac"), V::V2011_01_01, B_MAC),
        (
            nic("owner-id"),
            V::V2011_01_01,
            "a1b2c3d4e5f60718293a4b5c6d7e8f90",
        ),
        (nic("public-ipv4s"), V::V2011_01_01, "203.0.113.20"),
        (
            nic("ipv4-associations/203.0.113.20"),
            V::V2011_01_01,
            "127.0.0.3",
        ),
        (nic("security-groups"), V::V2011_01_01, "default\nweb"),
        (
            nic("subnet-ipv4-cidr-block"),
            V::V2011_01_01,
            "127.0.0.0/24",
        ),
        (nic("vpc-ipv4-cidr-block"), V::V2011_01_01, "127.0.0.0/24"),
        (nic("vpc-id"), V::V2011_01_01, "vpc-0e6d3f1a111122223"),
        (nic("ipv6s"), V::V2016_06_30, "2001:db8::5"),
        (
            nic("subnet-ipv6-cidr-blocks"),
            V::V2016_06_30,
            "2001:db8::/64",
        ),
        (nic("vpc-ipv4-cidr-blocks"), V::V2016_06_30, "127.0.0.0/24"),
        (nic("vpc-ipv6-cidr-blocks"), V::V2016_06_30, "2001:db8::/64"),
        (
            format!("meta-data/network/interfaces/macs/{B_MAC2}/device-number"),
            V::V2011_01_01,
            "1",
        ),
        (
            "meta-data/services/domain".into(),
            V::V2014_02_25,
            "amazonaws.com",
        ),
        ("meta-data/services/partition".into(), V::V2015_10_20, "aws"),
        (
            "meta-data/events/maintenance/scheduled".into(),
            V::V2018_08_17,
            "[]",
        ),
        (
            "meta-data/events/maintenance/history".into(),
            V::V2018_08_17,
            "[]",
        ),
        (
            "meta-data/instance-life-cycle".into(),
            V::V2019_10_01,
            "on-demand",
        ),
        (
            "meta-data/placement/availability-zone-id".into(),
            V::V2019_10_01,
            "zone-b",
        ),
        (
            "meta-data/placement/region".into(),
            V::V2020_10_27,
            "RegionOne",
        ),
        ("meta-data/ipv6".into(), V::V2021_01_03, "2001:db8::5"),
        ("meta-data/tags/instance/role".into(), V::V2021_03_23, "db"),
        (
            "meta-data/tags/instance/quote".into(),
            V::V2021_03_23,
            "a \"quoted\" \\ value\nline2",
        ),
        (
            "dynamic/instance-identity/".into(),
            V::V2009_04_04,
            "document\npkcs7\nrsa2048\nsignature",
        ),
    ];
    for leaf in ["document", "signature", "pkcs7", "rsa2048"] {
        out.push((
            format!("dynamic/instance-identity/{leaf}"),
            V::V2009_04_04,
            "",
        ));
    }
    out
}

fn version_names() -> Vec<&'static str> {
    V::ALL
        .iter()
        .map(|v| v.as_str())
        .chain(["latest"])
        .collect()
}

fn version_of(name: &str) -> V {
    name.parse().unwrap_or(V::V2024_04_11)
}

#[test]
fn every_aws_path_answers_from_its_version_and_404_below() {
    let server = Server::start(&["--ec2-tags"]);
    let mut answered = 0;
    for (path, since, want) in aws_paths() {
        for name in version_names() {
            let r = server.get(B_IP, &format!("/{name}/{path}"));
            if version_of(name) >= since {
                assert_eq!(r.status, 200, "/{name}/{path}: {}", r.text());
                if !want.is_empty() {
                    assert_eq!(r.text(), want, "/{name}/{path}");
                }
                assert!(!r.body.is_empty(), "/{name}/{path}");
                answered += 1;
            } else {
                assert_eq!(r.status, 404, "/{name}/{path}");
                assert_eq!(r.body, NOT_FOUND_BODY, "/{name}/{path}");
            }
        }
    }
    assert!(answered > 400, "{answered}");
    // Tag keys outside AWS's rule are not tags; a unicode value is served as is.
    assert_eq!(
        server.get(B_IP, "/latest/meta-data/tags/instance/").text(),
        "quote\nrole\nunicode"
    );
    assert_eq!(
        server
            .get(B_IP, "/latest/meta-data/tags/instance/unicode")
            .text(),
        "snowman \u{2603} and \u{1f600}"
    );
}

/// Every path reachable from `/<version>/` through listings, with its answer; asks
/// each directory without its trailing `/` and each leaf with one, and through `//`.
fn crawl(server: &Server, ip: &str, version: &str) -> BTreeSet<String> {
    let mut seen = BTreeSet::new();
    let mut dirs = vec![format!("/{version}/")];
    while let Some(dir) = dirs.pop() {
        let r = server.get(ip, &dir);
        assert_eq!(r.status, 200, "{dir}");
        assert!(
            !r.body.ends_with(b"\n"),
            "{dir}: listing ends with a newline"
        );
        let bare = server.get(ip, dir.trim_end_matches('/'));
        assert_eq!((bare.status, &bare.body), (200, &r.body), "{dir} without /");
        let doubled = server.get(ip, &dir.replacen('/', "//", 2));
        assert_eq!(
            (doubled.status, &doubled.body),
            (200, &r.body),
            "{dir} with //"
        );
        for line in r.text().split('\n') {
            assert!(!line.is_empty(), "{dir}: empty line in {:?}", r.text());
            if let Some(sub) = line.strip_suffix('/') {
                dirs.push(format!("{dir}{sub}/"));
            } else if dir.ends_with("/public-keys/") {
                let index = line.split_once('=').map_or(line, |(i, _)| i);
                dirs.push(format!("{dir}{index}/"));
            } else {
                let leaf = format!("{dir}{line}");
                let got = server.get(ip, &leaf);
                assert_eq!(got.status, 200, "{leaf} is listed: {}", got.text());
                let slash = server.get(ip, &format!("{leaf}/"));
                assert_eq!((slash.status, &slash.body), (200, &got.body), "{leaf}/");
                seen.insert(leaf);
            }
        }
    }
    seen
}

#[test]
fn every_listed_entry_answers_at_every_version() {
    let server = Server::start(&["--ec2-tags"]);
    let mut sizes = Vec::new();
    for name in version_names() {
        for ip in [A_IP, B_IP] {
            let leaves = crawl(&server, ip, name);
            sizes.push((name, ip, leaves.len()));
        }
    }
    // The trees grow with the versions: B's latest has its two NICs, tags, events...
    let at = |name: &str, ip: &str| {
        sizes
            .iter()
            .find(|(n, i, _)| *n == name && *i == ip)
            .map(|s| s.2)
            .expect("crawled")
    };
    assert!(at("2011-01-01", B_IP) > at("2009-04-04", B_IP));
    assert!(at("latest", B_IP) > at("2011-01-01", B_IP));
    assert_eq!(at("latest", B_IP), at("2024-04-11", B_IP));
    assert!(at("latest", B_IP) >= 50, "{sizes:?}");
}

#[test]
fn nova_versions_keep_novas_listings_and_dynamic_is_answered_unlisted() {
    let server = Server::start(&[]);
    assert_eq!(
        server.get(A_IP, "/2009-04-04/").text(),
        "meta-data/\nuser-data"
    );
    assert_eq!(
        server.get(A_IP, "/latest/").text(),
        "dynamic/\nmeta-data/\nuser-data"
    );
    let nova_meta = server.get(A_IP, "/2009-04-04/meta-data/").text();
    assert!(!nova_meta.contains("mac") && !nova_meta.contains("network/"));
    assert_eq!(server.get(A_IP, "/2008-09-01/dynamic/").status, 404);
    let doc = server.get(A_IP, "/2009-04-04/dynamic/instance-identity/document");
    assert_eq!(doc.status, 200);
    assert_eq!(
        doc.body,
        server
            .get(A_IP, "/latest/dynamic/instance-identity/document")
            .body
    );
    // Without --ec2-tags and without the document's metadata_tags: no tags.
    assert_eq!(server.get(B_IP, "/latest/meta-data/tags/").status, 404);
    assert!(!server
        .get(B_IP, "/latest/meta-data/")
        .text()
        .contains("tags/"));
}

#[test]
fn ec2_versions_nova_is_novas_tree_exactly() {
    let aws = Server::start(&[]);
    let nova = Server::start(&["--ec2-versions", "nova"]);
    assert_eq!(
        nova.get(A_IP, "/").text(),
        "1.0\n2007-01-19\n2007-03-01\n2007-08-29\n2007-10-10\n2007-12-15\n2008-02-01\n2008-09-01\n2009-04-04\nlatest"
    );
    for p in [
        "/2011-01-01/meta-data/",
        "/2021-03-23/meta-data/instance-id",
        "/2009-04-04/dynamic/instance-identity/document",
        "/latest/dynamic/",
        "/latest/meta-data/mac",
    ] {
        assert_eq!(nova.get(A_IP, p).status, 404, "{p}");
    }
    for ip in [A_IP, B_IP] {
        let nova_leaves = crawl(&nova, ip, "2009-04-04");
        assert_eq!(nova_leaves, crawl(&aws, ip, "2009-04-04"));
        for leaf in nova_leaves {
            let latest = leaf.replacen("/2009-04-04/", "/latest/", 1);
            assert_eq!(nova.get(ip, &leaf).body, aws.get(ip, &leaf).body, "{leaf}");
            assert_eq!(
                nova.get(ip, &latest).body,
                nova.get(ip, &leaf).body,
                "{latest}"
            );
        }
    }
    let ud = nova.get(A_IP, "/latest/user-data");
    assert_eq!(ud.header("content-type"), Some("text/plain; charset=UTF-8"));
}

#[test]
fn tags_per_instance_and_per_deployment() {
    let mut docs: serde_json::Value =
        serde_json::from_slice(&std::fs::read(fixture()).expect("fixture")).expect("json");
    docs[0]["metadata_tags"] = true.into();
    let server = Server::start_with(&docs, &[]);
    assert_eq!(
        server.get(A_IP, "/latest/meta-data/tags/instance/").text(),
        "priority\nrole"
    );
    assert_eq!(
        server
            .get(A_IP, "/2021-03-23/meta-data/tags/instance/role")
            .text(),
        "webserver"
    );
    assert_eq!(
        server.get(A_IP, "/2021-01-03/meta-data/tags/").status,
        404,
        "before 2021-03-23"
    );
    assert_eq!(
        server.get(B_IP, "/latest/meta-data/tags/").status,
        404,
        "B did not ask for tags"
    );
}

#[test]
fn aws_headers_content_types_and_token_rules() {
    let server = Server::start(&[]);
    let r = server.get(A_IP, "/latest/meta-data/instance-id");
    assert_eq!(r.header("server"), Some("EC2ws"));
    assert_eq!(r.header("content-type"), Some("text/plain; charset=UTF-8"));
    assert_eq!(server.get(A_IP, "/").header("server"), Some("EC2ws"));
    assert_eq!(server.get(A_IP, "/nope").header("server"), Some("EC2ws"));
    assert_eq!(
        server
            .get(A_IP, "/openstack/latest/meta_data.json")
            .header("server"),
        None,
        "the OpenStack tree is Nova's"
    );
    let ud = server.get(A_IP, "/latest/user-data");
    assert_eq!(ud.header("content-type"), Some("application/octet-stream"));
    let old = server.get(A_IP, "/2009-04-04/user-data");
    assert_eq!(
        old.header("content-type"),
        Some("text/plain; charset=UTF-8")
    );
    assert_eq!(old.body, ud.body);

    let ttl = ("X-aws-ec2-metadata-token-ttl-seconds", "300");
    for v in ["2021-03-23", "2009-04-04", "1.0"] {
        let r = server.req(A_IP, "PUT", &format!("/{v}/api/token"), &[ttl], b"");
        assert_eq!(r.status, 403, "PUT /{v}/api/token");
    }
    let get = server.req(A_IP, "GET", "/latest/api/token", &[], b"");
    assert_eq!(
        (get.status, get.header("allow")),
        (405, Some("OPTIONS, PUT"))
    );
    let options = server.req(A_IP, "OPTIONS", "/latest/api/token", &[], b"");
    assert_eq!(
        (options.status, options.header("allow")),
        (200, Some("OPTIONS, PUT"))
    );
    let put = server.req(A_IP, "PUT", "/latest/api/token", &[ttl], b"");
    assert_eq!(put.status, 200);
    assert_eq!(
        put.header("x-aws-ec2-metadata-token-ttl-seconds"),
        Some("300")
    );
    assert_eq!(put.header("server"), Some("EC2ws"));
    let token = put.text();
    let with = server.req(
        A_IP,
        "GET",
        "/latest/meta-data/instance-id",
        &[("X-aws-ec2-metadata-token", &token)],
        b"",
    );
    let left: u32 = with
        .header("x-aws-ec2-metadata-token-ttl-seconds")
        .expect("TTL echoed")
        .parse()
        .expect("number");
    assert!((290..=300).contains(&left), "{left}");
    let without = server.get(A_IP, "/latest/meta-data/instance-id");
    assert_eq!(without.header("x-aws-ec2-metadata-token-ttl-seconds"), None);
}
