//! Property tests on paths and headers: whatever arrives, the answer is a reply with
//! a status below 500, and nothing panics. Run against the pure core (many cases) and
//! against the running server (fewer cases, real parsing by hyper).

mod common;

use bytes::Bytes;
use common::*;
use compute::Settings;
use http::{HeaderMap, HeaderName, HeaderValue, Method};
use metadata_server::answer::{Outcome, RequestParts, Responder, TokenMode};
use metadata_server::cache::RenderCache;
use metadata_server::identity::{identify, IdentityConfig, Peer};
use metadata_server::signature::SharedSecret;
use metadata_server::store::InstanceSet;
use metadata_server::token::TokenAuthority;
use proptest::prelude::*;
use std::sync::Arc;

fn responder() -> &'static Responder {
    static R: std::sync::OnceLock<Responder> = std::sync::OnceLock::new();
    R.get_or_init(|| Responder {
        cache: RenderCache::new(Arc::new(Settings::default()), 16 << 20),
        tokens: TokenAuthority::new([1; 32]),
        token_mode: TokenMode::Optional,
        token_mode_for: Default::default(),
        dynamic_vendor_data: false,
    })
}

fn set() -> &'static InstanceSet {
    static S: std::sync::OnceLock<InstanceSet> = std::sync::OnceLock::new();
    S.get_or_init(|| InstanceSet::build(instances(), None).expect("set"))
}

fn segment() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("openstack".to_owned()),
        Just("ec2".to_owned()),
        Just("latest".to_owned()),
        Just("2009-04-04".to_owned()),
        Just("2013-04-04".to_owned()),
        Just("meta-data".to_owned()),
        Just("meta_data.json".to_owned()),
        Just("public-keys".to_owned()),
        Just("0".to_owned()),
        Just("password".to_owned()),
        Just("content".to_owned()),
        Just("api".to_owned()),
        Just("token".to_owned()),
        Just("2021-03-23".to_owned()),
        Just("2011-01-01".to_owned()),
        Just("dynamic".to_owned()),
        Just("instance-identity".to_owned()),
        Just("document".to_owned()),
        Just("signature".to_owned()),
        Just("rsa2048".to_owned()),
        Just("network".to_owned()),
        Just("interfaces".to_owned()),
        Just("macs".to_owned()),
        Just("fa:16:3e:00:00:01".to_owned()),
        Just("events".to_owned()),
        Just("maintenance".to_owned()),
        Just("scheduled".to_owned()),
        Just("tags".to_owned()),
        Just("instance".to_owned()),
        Just("..".to_owned()),
        Just(".".to_owned()),
        Just("".to_owned()),
        "%[0-9a-fA-F]{0,2}".prop_map(|s| s),
        "[ -~]{0,12}",
    ]
}

fn path() -> impl Strategy<Value = String> {
    (
        prop::collection::vec(segment(), 0..8),
        any::<bool>(),
        "[?#]?[ -~]{0,8}",
    )
        .prop_map(|(segs, slash, q)| {
            let mut p = String::from("/");
            p.push_str(&segs.join("/"));
            if slash {
                p.push('/');
            }
            p.push_str(&q);
            p
        })
}

fn headers() -> impl Strategy<Value = Vec<(usize, Vec<u8>)>> {
    prop::collection::vec((0usize..8, prop::collection::vec(any::<u8>(), 0..80)), 0..6)
}

const NAMES: [&str; 8] = [
    "x-forwarded-for",
    "x-instance-id",
    "x-tenant-id",
    "x-instance-id-signature",
    "x-aws-ec2-metadata-token",
    "x-aws-ec2-metadata-token-ttl-seconds",
    "x-metadata-token",
    "x-metadata-token-ttl-seconds",
];

fn method() -> impl Strategy<Value = Method> {
    prop_oneof![
        Just(Method::GET),
        Just(Method::HEAD),
        Just(Method::POST),
        Just(Method::PUT),
        Just(Method::DELETE),
        Just(Method::OPTIONS)
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn core_never_panics_or_fails(p in path(), hs in headers(), m in method(), who in 0usize..4, body in prop::collection::vec(any::<u8>(), 0..1100)) {
        let config = IdentityConfig {
            trusted_proxies: vec!["127.0.0.9/32".parse().expect("cidr")],
            shared_secret: Some(SharedSecret::from_file_bytes(b"k")),
        };
        let mut map = HeaderMap::new();
        for (i, v) in &hs {
            if let Ok(v) = HeaderValue::from_bytes(v) {
                map.append(HeaderName::from_static(NAMES[*i]), v);
            }
        }
        let peer = match who {
            0 => Peer::Addr(A_IP.parse().expect("ip")),
            1 => Peer::Addr("127.0.0.9".parse().expect("ip")),
            2 => Peer::Bound(C.parse().expect("uuid")),
            _ => Peer::Addr(NOBODY_IP.parse().expect("ip")),
        };
        let identity = identify(&config, set(), peer, &map);
        let body = Bytes::from(body);
        let parsed = compute::metadata::MetadataPath::parse(&p);
        let req = RequestParts { method: &m, path: parsed.as_ref(), headers: &map, body: &body };
        let mut memo = metadata_server::cache::TreeMemo::default();
        match responder().answer(req, &identity, 1000, &mut memo) {
            Outcome::Reply(r) => prop_assert!(r.status.as_u16() < 500, "{p}: {}", r.status),
            Outcome::PasswordGet(_) | Outcome::PasswordPost(..) | Outcome::VendorData2 { .. }
            | Outcome::Identity { .. } | Outcome::Events { .. } => {}
        }
    }
}

#[test]
fn server_never_answers_5xx_to_odd_requests() {
    let server = Server::start(&[]);
    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig {
        cases: 150,
        ..ProptestConfig::default()
    });
    let strategy = (path(), headers(), 0usize..4);
    runner
        .run(&strategy, |(p, hs, m)| {
            // Only what a client can put on the wire: visible ASCII path and header values.
            let p: String = p.chars().filter(|c| c.is_ascii_graphic()).collect();
            let p = if p.starts_with('/') {
                p
            } else {
                format!("/{p}")
            };
            let hv: Vec<(&str, String)> = hs
                .iter()
                .map(|(i, v)| {
                    (
                        NAMES[*i],
                        v.iter()
                            .filter(|b| b.is_ascii_graphic())
                            .map(|b| *b as char)
                            .collect(),
                    )
                })
                .collect();
            let refs: Vec<(&str, &str)> = hv.iter().map(|(n, v)| (*n, v.as_str())).collect();
            let method = ["GET", "HEAD", "PUT", "OPTIONS"][m];
            let r = server.req(A_IP, method, &p, &refs, b"");
            prop_assert!(r.status < 500, "{method} {p}: {}", r.status);
            Ok(())
        })
        .expect("no 5xx");
    assert!(!server.log().contains("panicked"));
}
