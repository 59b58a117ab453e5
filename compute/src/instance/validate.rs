//! Every check the spec asks of a document, collected into one list of field errors.

use super::error::{FieldError, InstanceError};
use super::hostname::{is_valid_hostname, sanitize_hostname};
use super::netmodel::NetworkError;
use super::network::{Network, NetworkData};
use super::{InjectedFile, InstanceDocument, MAX_USER_DATA_BASE64};
use crate::mac::MacAddr;
use base64::Engine;
use std::collections::HashSet;
use uuid::Uuid;

/// What validation decoded or derived along the way.
pub(super) struct Validated {
    pub uuid: Uuid,
    pub hostname: String,
    pub user_data: Option<Vec<u8>>,
    pub files: Vec<InjectedFile>,
    pub created_at: Option<i64>,
}

/// Decodes standard base64, ignoring line breaks the way Nova's decoder does: how
/// the document's base64 fields (user data, files, the random seed) are read, here
/// and by whoever reads them back from rendered metadata.
pub fn decode_base64(text: &str) -> Result<Vec<u8>, base64::DecodeError> {
    let compact: String = text.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    base64::engine::general_purpose::STANDARD.decode(compact)
}

pub(super) fn validate(doc: &InstanceDocument) -> Result<Validated, InstanceError> {
    let mut errs = Vec::new();

    let uuid = match Uuid::try_parse(&doc.uuid) {
        Ok(u) if doc.uuid.len() == 36 => u,
        _ => {
            errs.push(FieldError::new(
                "uuid",
                &doc.uuid,
                "not a UUID; write it hyphenated, like d8e02d56-2648-49a3-bf97-6be8f1204f38",
            ));
            Uuid::nil()
        }
    };

    if doc.name.trim().is_empty() {
        errs.push(FieldError::new("name", &doc.name, "must not be empty"));
    }

    let hostname = match &doc.hostname {
        Some(h) => {
            if !is_valid_hostname(h) {
                errs.push(FieldError::new(
                    "hostname",
                    h,
                    "must be 1 to 63 characters of a-z, 0-9 and '-', not starting or ending with '-'",
                ));
            }
            h.clone()
        }
        None => sanitize_hostname(&doc.name, &uuid.hyphenated().to_string()),
    };

    for (field, value) in [
        ("availability_zone", &doc.availability_zone),
        ("instance_type", &doc.instance_type),
    ] {
        if let Some(v) = value {
            if v.is_empty() {
                errs.push(FieldError::new(field, v, "must not be empty when given"));
            }
        }
    }

    if let Some(region) = &doc.region {
        let ok = (1..=64).contains(&region.len())
            && region
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
        if !ok {
            errs.push(FieldError::new(
                "region",
                region,
                "must be 1 to 64 characters of letters, digits, '-', '_' and '.', like us-east-1 or RegionOne",
            ));
        }
    }

    let mut key_names = HashSet::new();
    for (i, key) in doc.keys.iter().enumerate() {
        if key.name.is_empty() {
            errs.push(FieldError::new(
                format!("keys[{i}].name"),
                &key.name,
                "must not be empty",
            ));
        } else if !key_names.insert(key.name.as_str()) {
            errs.push(FieldError::new(
                format!("keys[{i}].name"),
                &key.name,
                "names another key already; key names must be unique",
            ));
        }
        if key.data.trim().is_empty() {
            errs.push(FieldError::new(
                format!("keys[{i}].data"),
                &key.data,
                "must hold the public key text",
            ));
        }
    }

    let user_data = match &doc.user_data {
        None => None,
        Some(ud) if ud.len() > MAX_USER_DATA_BASE64 => {
            errs.push(FieldError::new(
                "user_data",
                format!("{} bytes of base64", ud.len()),
                format!("is over Nova's limit of {MAX_USER_DATA_BASE64} bytes of base64; compress it (gzip) or fetch the rest from the guest"),
            ));
            None
        }
        Some(ud) => match decode_base64(ud) {
            Ok(bytes) => Some(bytes),
            Err(_) => {
                errs.push(FieldError::new(
                    "user_data",
                    ud,
                    "is not valid base64; encode the raw user data with `base64 -w0`",
                ));
                None
            }
        },
    };

    let files = validate_files(doc, &mut errs);

    if let Some(seed) = &doc.random_seed {
        if decode_base64(seed).map_or(true, |b| b.is_empty()) {
            errs.push(FieldError::new(
                "random_seed",
                seed,
                "must be base64 of the seed bytes (Nova uses 512)",
            ));
        }
    }

    if let Some(ip) = &doc.public_ipv4 {
        if ip.parse::<std::net::Ipv4Addr>().is_err() {
            errs.push(FieldError::new("public_ipv4", ip, "is not an IPv4 address"));
        }
    }

    if let Some(root) = &doc.root_device_name {
        if !root.starts_with("/dev/") || root.len() <= 5 {
            errs.push(FieldError::new(
                "root_device_name",
                root,
                "must be a device path like /dev/vda",
            ));
        }
    }
    for (name, dev) in &doc.block_device_mapping {
        if name == "ami" || name == "root" {
            errs.push(FieldError::new(
                format!("block_device_mapping.{name}"),
                dev,
                "is derived from root_device_name; set that instead",
            ));
        } else if !dev.starts_with("/dev/") {
            errs.push(FieldError::new(
                format!("block_device_mapping.{name}"),
                dev,
                "must be a device path like /dev/vdb",
            ));
        }
    }

    for (i, group) in doc.security_groups.iter().flatten().enumerate() {
        if group.is_empty() {
            errs.push(FieldError::new(
                format!("security_groups[{i}]"),
                group,
                "must not be empty",
            ));
        }
    }

    for (i, dev) in doc.devices.iter().enumerate() {
        if let super::Device::Nic { mac, .. } = dev {
            if mac.parse::<MacAddr>().is_err() {
                errs.push(FieldError::new(
                    format!("devices[{i}].mac"),
                    mac,
                    "is not a MAC address like fa:16:3e:12:34:56",
                ));
            }
        }
    }

    let created_at = doc.created_at.as_ref().and_then(|c| {
        match time::OffsetDateTime::parse(c, &time::format_description::well_known::Rfc3339) {
            Ok(t) => Some(t.unix_timestamp()),
            Err(e) => {
                errs.push(FieldError::new(
                    "created_at",
                    c,
                    format!("is not an RFC 3339 time like 2024-01-31T12:00:00Z ({e})"),
                ));
                None
            }
        }
    });

    if let Some(net) = &doc.network {
        validate_network(net, &mut errs);
    }

    if errs.is_empty() {
        Ok(Validated {
            uuid,
            hostname,
            user_data,
            files,
            created_at,
        })
    } else {
        Err(InstanceError::Invalid(errs))
    }
}

/// An injected file's path: absolute, no `..` or `.` component, no NUL, at most 4096 bytes.
pub(crate) fn check_file_path(path: &str) -> Result<String, &'static str> {
    if !path.starts_with('/') {
        return Err("must be an absolute path (start with '/')");
    }
    if path.contains('\0') {
        return Err("must not contain a NUL byte");
    }
    if path.len() > 4096 {
        return Err("is longer than 4096 bytes");
    }
    let parts: Vec<&str> = path.split('/').filter(|p| !p.is_empty()).collect();
    if parts.iter().any(|p| *p == ".." || *p == ".") {
        return Err("must not contain '.' or '..' components");
    }
    if parts.is_empty() {
        return Err("must name a file, not the root directory");
    }
    Ok(format!("/{}", parts.join("/")))
}

fn validate_files(doc: &InstanceDocument, errs: &mut Vec<FieldError>) -> Vec<InjectedFile> {
    let mut seen = HashSet::new();
    let mut files = Vec::with_capacity(doc.files.len());
    for (i, f) in doc.files.iter().enumerate() {
        match check_file_path(&f.path) {
            Err(problem) => errs.push(FieldError::new(
                format!("files[{i}].path"),
                &f.path,
                problem,
            )),
            Ok(normal) => {
                if !seen.insert(normal) {
                    errs.push(FieldError::new(
                        format!("files[{i}].path"),
                        &f.path,
                        "is given twice; each injected file needs its own path",
                    ));
                }
            }
        }
        match decode_base64(&f.contents) {
            Ok(contents) => files.push(InjectedFile {
                path: f.path.clone(),
                contents,
            }),
            Err(_) => errs.push(FieldError::new(
                format!("files[{i}].contents"),
                &f.contents,
                "is not valid base64; encode the file with `base64 -w0`",
            )),
        }
    }
    files
}

fn check_mac(field: String, value: &str, errs: &mut Vec<FieldError>) {
    if value.parse::<MacAddr>().is_err() {
        errs.push(FieldError::new(
            field,
            value,
            "is not a MAC address like fa:16:3e:12:34:56",
        ));
    }
}

fn validate_network(net: &NetworkData, errs: &mut Vec<FieldError>) {
    let mut link_ids = HashSet::new();
    for (i, link) in net.links.iter().enumerate() {
        if link.id.is_empty() || !link_ids.insert(link.id.as_str()) {
            errs.push(FieldError::new(
                format!("network.links[{i}].id"),
                &link.id,
                "must be a non-empty id unique among links",
            ));
        }
        if let Err(e) = link.mac() {
            errs.push(network_error(&format!("network.links[{i}]"), e));
        }
        if let Some(mac) = &link.vlan_mac_address {
            check_mac(format!("network.links[{i}].vlan_mac_address"), mac, errs);
        }
        if let Some(mtu) = link.mtu {
            if !(68..=65535).contains(&mtu) {
                errs.push(FieldError::new(
                    format!("network.links[{i}].mtu"),
                    mtu.to_string(),
                    "must be between 68 and 65535",
                ));
            }
        }
    }
    for (i, link) in net.links.iter().enumerate() {
        for (j, member) in link.bond_links.iter().flatten().enumerate() {
            if !link_ids.contains(member.as_str()) {
                errs.push(FieldError::new(
                    format!("network.links[{i}].bond_links[{j}]"),
                    member,
                    "names no link in network.links",
                ));
            }
        }
        if let Some(parent) = &link.vlan_link {
            if !link_ids.contains(parent.as_str()) {
                errs.push(FieldError::new(
                    format!("network.links[{i}].vlan_link"),
                    parent,
                    "names no link in network.links",
                ));
            }
        }
    }

    let mut net_ids = HashSet::new();
    for (i, n) in net.networks.iter().enumerate() {
        let item = format!("network.networks[{i}]");
        let at = |f: &str| format!("{item}.{f}");
        if n.id.is_empty() || !net_ids.insert(n.id.as_str()) {
            errs.push(FieldError::new(
                at("id"),
                &n.id,
                "must be a non-empty id unique among networks",
            ));
        }
        if !link_ids.contains(n.link.as_str()) {
            errs.push(FieldError::new(
                at("link"),
                &n.link,
                "names no link in network.links",
            ));
        }
        check_addressing(n, &item, errs);
        let routes = n.route_problems().into_iter();
        let dns = n.dns_servers().filter_map(Result::err);
        errs.extend(routes.chain(dns).map(|e| network_error(&item, e)));
    }
    for e in net.dns_servers().filter_map(Result::err) {
        errs.push(network_error("network", e));
    }
}

/// A field the network model cannot read, at `item` (`network.networks[0]`).
fn network_error(item: &str, e: NetworkError) -> FieldError {
    FieldError::new(
        format!("{item}.{}", e.field),
        &e.value,
        e.problem.to_string(),
    )
}

/// A network's `ip_address` and `netmask`, as the network model reads them (required
/// on static networks, optional on the others, of the network's family wherever
/// given); a netmask comes with its address. A DHCP network has nothing else to say:
/// `network_data.json` shows it as Nova does, without routes or services.
fn check_addressing(n: &Network, item: &str, errs: &mut Vec<FieldError>) {
    let at = |f: &str| format!("{item}.{f}");
    if let Err(e) = n.ip() {
        errs.push(network_error(item, e));
    }
    if let Err(e) = n.prefix() {
        errs.push(network_error(item, e));
    }
    if let (Some(mask), None) = (&n.netmask, &n.ip_address) {
        if !n.kind.is_static() {
            errs.push(FieldError::new(
                at("netmask"),
                mask,
                "is the netmask of ip_address; give ip_address too, or leave both out",
            ));
        }
    }
    if n.kind.is_dhcp() {
        if let Some(routes) = n.routes.as_ref().filter(|r| !r.is_empty()) {
            errs.push(FieldError::new(
                at("routes"),
                format!("{} route(s)", routes.len()),
                "a DHCP network has none in network_data.json (the guest learns its routes from DHCP, as with Nova); remove them, or make the network static",
            ));
        }
        if let Some(services) = n.services.as_ref().filter(|s| !s.is_empty()) {
            errs.push(FieldError::new(
                at("services"),
                format!("{} service(s)", services.len()),
                "a DHCP network has none in network_data.json (list DNS servers in network.services, as Nova does); remove them, or make the network static",
            ));
        }
    }
}
