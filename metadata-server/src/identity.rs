//! Which instance is asking. Four ways, as in the spec: a listener bound to one
//! instance; Neutron-style signed headers (only when a shared secret is configured);
//! `X-Forwarded-For`, only from a trusted proxy; and the peer's own address.
//!
//! Pure: the connection's peer, the request headers and the instance set go in, an
//! [`Identity`] comes out. It borrows the caller's entry from the set rather than
//! taking a reference on it: a request answers within one look at the set, and a
//! reference count written by every request would be a line that cores fight over
//! (and, in a large set, a trip to memory).

use crate::signature::SharedSecret;
use crate::store::{canonical_ip, InstanceEntry, InstanceSet};
use crate::token_headers as h;
use http::HeaderMap;
use ipnetwork::IpNetwork;
use std::net::IpAddr;
use std::sync::Arc;
use uuid::Uuid;

/// What the connection itself says about the caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Peer {
    /// A TCP peer address.
    Addr(IpAddr),
    /// A listener bound to one instance (`--instance-listener`): every connection is it.
    Bound(Uuid),
}

#[derive(Debug, Clone, Default)]
pub struct IdentityConfig {
    /// Peers whose `X-Forwarded-For` is believed.
    pub trusted_proxies: Vec<IpNetwork>,
    /// Secret shared with a Neutron-style proxy; signed headers are ignored without it.
    pub shared_secret: Option<SharedSecret>,
}

/// Why a caller was refused before any lookup (status as Nova answers).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rejection {
    /// Signed headers missing one of the three, or one repeated: 400.
    BadHeaders,
    /// Signature does not match: 403.
    BadSignature,
    /// Signed for an instance we do not have, or for another tenant: 404.
    NoSuchInstance,
}

#[derive(Debug, Clone)]
pub enum Identity<'a> {
    Instance(&'a Arc<InstanceEntry>),
    /// Nobody we know: sees only the version listings.
    Unknown,
    Rejected(Rejection),
}

impl<'a> Identity<'a> {
    pub fn instance(&self) -> Option<&'a Arc<InstanceEntry>> {
        match self {
            Identity::Instance(e) => Some(e),
            _ => None,
        }
    }
}

/// The single value of a header that must appear at most once.
fn single<'a>(
    headers: &'a HeaderMap,
    name: &http::HeaderName,
) -> Result<Option<&'a str>, Rejection> {
    h::single(headers, name).map_err(|h::Malformed| Rejection::BadHeaders)
}

fn signed<'a>(set: &'a InstanceSet, headers: &HeaderMap, secret: &SharedSecret) -> Identity<'a> {
    let parts = (|| {
        let id = single(headers, &h::INSTANCE_ID)?.ok_or(Rejection::BadHeaders)?;
        let tenant = single(headers, &h::TENANT_ID)?.ok_or(Rejection::BadHeaders)?;
        let sig = single(headers, &h::INSTANCE_ID_SIGNATURE)?.ok_or(Rejection::BadHeaders)?;
        Ok((id, tenant, sig))
    })();
    let (id, tenant, sig) = match parts {
        Ok(p) => p,
        Err(r) => return Identity::Rejected(r),
    };
    if !secret.verify(id, sig) {
        return Identity::Rejected(Rejection::BadSignature);
    }
    let entry = Uuid::try_parse(id).ok().and_then(|u| set.get(&u));
    match entry {
        Some(e) if e.document.project_id().unwrap_or("") == tenant => Identity::Instance(e),
        _ => Identity::Rejected(Rejection::NoSuchInstance),
    }
}

/// The client address a trusted proxy reports: the right-most `X-Forwarded-For`
/// entry, the one our proxy appended.
fn forwarded_for(headers: &HeaderMap) -> Option<IpAddr> {
    let last = headers.get_all(h::FORWARDED_FOR).iter().next_back()?;
    let text = last.to_str().ok()?;
    text.rsplit(',').next()?.trim().parse().ok()
}

pub fn identify<'a>(
    config: &IdentityConfig,
    set: &'a InstanceSet,
    peer: Peer,
    headers: &HeaderMap,
) -> Identity<'a> {
    let ip = match peer {
        Peer::Bound(uuid) => {
            return set.get(&uuid).map_or(Identity::Unknown, Identity::Instance);
        }
        Peer::Addr(ip) => canonical_ip(ip),
    };
    if let Some(secret) = &config.shared_secret {
        if h::any(headers, &h::SIGNED) {
            return signed(set, headers, secret);
        }
    }
    let ip = if config.trusted_proxies.iter().any(|n| n.contains(ip))
        && h::get(headers, &h::FORWARDED_FOR).is_some()
    {
        match forwarded_for(headers) {
            Some(ip) => canonical_ip(ip),
            None => return Identity::Unknown,
        }
    } else {
        ip
    };
    set.by_ip(&ip).map_or(Identity::Unknown, Identity::Instance)
}

#[cfg(test)]
mod tests {
    use super::*;
    use compute::Instance;

    fn instance(uuid: &str, ip: &str, project: &str) -> Instance {
        let doc = format!(
            r#"{{"uuid": "{uuid}", "name": "x", "project_id": "{project}", "network": {{"links": [{{"id": "l", "type": "phy",
            "ethernet_mac_address": "fa:16:3e:00:00:01"}}], "networks": [{{"id": "n", "type": "ipv4", "link": "l",
            "ip_address": "{ip}", "netmask": "255.255.255.0"}}], "services": []}}}}"#
        );
        Instance::from_json(doc.as_bytes()).expect("valid")
    }

    const A: &str = "aaaaaaaa-0000-4000-8000-000000000001";
    const B: &str = "bbbbbbbb-0000-4000-8000-000000000002";

    fn set() -> InstanceSet {
        InstanceSet::build(
            vec![instance(A, "10.0.0.1", "pa"), instance(B, "10.0.0.2", "pb")],
            None,
        )
        .expect("set")
    }

    fn who(
        config: &IdentityConfig,
        peer: Peer,
        headers: &[(http::HeaderName, &str)],
    ) -> Option<String> {
        let mut map = HeaderMap::new();
        for (n, v) in headers {
            map.append(n.clone(), v.parse().expect("value"));
        }
        match identify(config, &set(), peer, &map) {
            Identity::Instance(e) => Some(e.uuid().hyphenated().to_string()),
            Identity::Unknown => None,
            Identity::Rejected(r) => Some(format!("{r:?}")),
        }
    }

    fn addr(ip: &str) -> Peer {
        Peer::Addr(ip.parse().expect("ip"))
    }

    #[test]
    fn by_address_and_mapped_v6() {
        let c = IdentityConfig::default();
        assert_eq!(who(&c, addr("10.0.0.1"), &[]).as_deref(), Some(A));
        assert_eq!(who(&c, addr("::ffff:10.0.0.2"), &[]).as_deref(), Some(B));
        assert_eq!(who(&c, addr("10.0.0.9"), &[]), None);
        assert_eq!(
            who(&c, addr("10.0.0.1"), &[(h::FORWARDED_FOR, "10.0.0.2")]).as_deref(),
            Some(A)
        );
        assert_eq!(
            who(&c, Peer::Bound(B.parse().expect("uuid")), &[]).as_deref(),
            Some(B)
        );
    }

    #[test]
    fn link_local_source_is_known_by_the_mac_unless_shared() {
        let c = IdentityConfig::default();
        // fa:16:3e:00:00:01 (A and B share it in this fixture's template).
        assert_eq!(who(&c, addr("fe80::f816:3eff:fe00:1"), &[]), None);
        let doc = r#"{"uuid": "cccccccc-0000-4000-8000-000000000003", "name": "d", "network": {
            "links": [{"id": "l", "type": "phy", "ethernet_mac_address": "52:54:00:12:34:56"}],
            "networks": []}}"#;
        let set = InstanceSet::build(
            vec![Instance::from_json(doc.as_bytes()).expect("valid")],
            None,
        )
        .expect("set");
        let who = |ip: &str| {
            identify(&c, &set, addr(ip), &HeaderMap::new())
                .instance()
                .map(|e| e.uuid().hyphenated().to_string())
        };
        assert_eq!(
            who("fe80::5054:ff:fe12:3456").as_deref(),
            Some("cccccccc-0000-4000-8000-000000000003")
        );
        assert_eq!(who("fe80::5054:ff:fe12:3457"), None);
        assert_eq!(who("2001:db8::5054:ff:fe12:3456"), None, "only link-local");
    }

    #[test]
    fn dhcp_and_slaac_addresses_identify_their_instance() {
        let doc = r#"{"uuid": "cccccccc-0000-4000-8000-000000000003", "name": "d", "network": {
            "links": [{"id": "l", "type": "ovs", "ethernet_mac_address": "fa:16:3e:4c:2d:81"}],
            "networks": [{"id": "n0", "type": "ipv4_dhcp", "link": "l", "ip_address": "10.20.0.14"},
                         {"id": "n1", "type": "ipv6_slaac", "link": "l", "ip_address": "2001:db8:20::14",
                          "netmask": "ffff:ffff:ffff:ffff::"}]}}"#;
        let dual = Instance::from_json(doc.as_bytes()).expect("valid");
        let set = InstanceSet::build(vec![dual], None).expect("set");
        let c = IdentityConfig {
            trusted_proxies: vec!["192.0.2.0/24".parse().expect("cidr")],
            shared_secret: None,
        };
        let who = |peer: &str, xff: Option<&str>| {
            let mut headers = HeaderMap::new();
            if let Some(x) = xff {
                headers.append(h::FORWARDED_FOR, x.parse().expect("value"));
            }
            identify(&c, &set, addr(peer), &headers)
                .instance()
                .map(|e| e.uuid().hyphenated().to_string())
        };
        let d = Some("cccccccc-0000-4000-8000-000000000003".to_owned());
        assert_eq!(who("10.20.0.14", None), d);
        assert_eq!(who("::ffff:10.20.0.14", None), d);
        assert_eq!(who("2001:db8:20::14", None), d);
        assert_eq!(who("192.0.2.7", Some("10.20.0.14")), d);
        assert_eq!(who("192.0.2.7", Some("2001:db8:20::14")), d);
        assert_eq!(who("10.20.0.15", None), None);
    }

    #[test]
    fn trusted_proxy_and_signed_headers() {
        let c = IdentityConfig {
            trusted_proxies: vec!["192.0.2.0/24".parse().expect("cidr")],
            shared_secret: Some(SharedSecret::from_file_bytes(b"k")),
        };
        assert_eq!(
            who(
                &c,
                addr("192.0.2.7"),
                &[(h::FORWARDED_FOR, "1.1.1.1, 10.0.0.2")]
            )
            .as_deref(),
            Some(B)
        );
        assert_eq!(
            who(&c, addr("192.0.2.7"), &[]),
            None,
            "the proxy itself is nobody"
        );
        let sig = SharedSecret::from_file_bytes(b"k").sign(A);
        let ok = [
            (h::INSTANCE_ID, A),
            (h::TENANT_ID, "pa"),
            (h::INSTANCE_ID_SIGNATURE, sig.as_str()),
        ];
        assert_eq!(who(&c, addr("192.0.2.7"), &ok).as_deref(), Some(A));
        let wrong_tenant = [
            (h::INSTANCE_ID, A),
            (h::TENANT_ID, "pb"),
            (h::INSTANCE_ID_SIGNATURE, sig.as_str()),
        ];
        assert_eq!(
            who(&c, addr("192.0.2.7"), &wrong_tenant).as_deref(),
            Some("NoSuchInstance")
        );
        let forged = [
            (h::INSTANCE_ID, B),
            (h::TENANT_ID, "pb"),
            (h::INSTANCE_ID_SIGNATURE, sig.as_str()),
        ];
        assert_eq!(
            who(&c, addr("192.0.2.7"), &forged).as_deref(),
            Some("BadSignature")
        );
        assert_eq!(
            who(&c, addr("192.0.2.7"), &[(h::INSTANCE_ID, A)]).as_deref(),
            Some("BadHeaders")
        );
    }
}
