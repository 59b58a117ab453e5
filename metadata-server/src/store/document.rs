//! One instance's document as the served set keeps it: validated once, then held as
//! compact JSON (one allocation, about the size of the document itself), with what
//! identification reads on every request beside it (uuid, project, addresses).
//!
//! A parsed [`Instance`] costs several times its JSON (a few KiB of strings, maps and
//! derived fields), and a host may serve 100,000 instances whose trees are rendered
//! only when asked. So the parsed form lives only while a tree is rendered and cached
//! ([`crate::cache`]); [`Document::instance`] parses it again for that.

use compute::{Instance, InstanceError};
use std::net::{IpAddr, Ipv6Addr};
use uuid::Uuid;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Document {
    uuid: Uuid,
    project_id: Option<Box<str>>,
    fixed_ips: Box<[IpAddr]>,
    link_locals: Box<[Ipv6Addr]>,
    json: Box<[u8]>,
}

impl Document {
    /// The compact form of a validated instance.
    pub fn new(instance: &Instance) -> Self {
        // A document of strings, numbers and string-keyed maps always serialises.
        let json = serde_json::to_vec(instance.document()).unwrap_or_default();
        Document {
            uuid: instance.uuid(),
            project_id: instance.project_id().map(Into::into),
            fixed_ips: instance.fixed_ips().into(),
            link_locals: link_locals(instance).into(),
            json: json.into(),
        }
    }

    pub fn uuid(&self) -> Uuid {
        self.uuid
    }

    pub fn project_id(&self) -> Option<&str> {
        self.project_id.as_deref()
    }

    /// Every fixed IP of the instance (static, DHCP or SLAAC).
    pub fn fixed_ips(&self) -> &[IpAddr] {
        &self.fixed_ips
    }

    /// The IPv6 link-local addresses a kernel derives from the instance's MACs.
    pub fn link_locals(&self) -> &[Ipv6Addr] {
        &self.link_locals
    }

    /// The document's bytes (compact JSON).
    pub fn json(&self) -> &[u8] {
        &self.json
    }

    /// The instance, parsed and validated again from the stored bytes.
    pub fn instance(&self) -> Result<Instance, InstanceError> {
        Instance::from_json(&self.json)
    }
}

impl From<&Instance> for Document {
    fn from(i: &Instance) -> Self {
        Document::new(i)
    }
}

impl From<Instance> for Document {
    fn from(i: Instance) -> Self {
        Document::new(&i)
    }
}

/// The link-local addresses a kernel derives from the instance's MACs.
fn link_locals(instance: &Instance) -> Vec<Ipv6Addr> {
    instance
        .network()
        .into_iter()
        .flat_map(|n| n.links.iter())
        .filter_map(|l| l.ethernet_mac_address.as_deref())
        .filter_map(|m| m.parse::<compute::mac::MacAddr>().ok())
        .map(|mac| mac.eui64_link_local())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_stored_bytes_parse_back_to_the_same_instance() {
        let fixture = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../compute/tests/fixtures/multinic.json");
        let instance =
            Instance::from_json(&std::fs::read(fixture).expect("fixture")).expect("valid");
        let doc = Document::new(&instance);
        assert_eq!(doc.instance().expect("parses"), instance);
        assert_eq!(doc.uuid(), instance.uuid());
        assert_eq!(doc.fixed_ips(), instance.fixed_ips().as_slice());
        assert!(!doc.link_locals().is_empty());
        assert!(!doc.json().contains(&b'\n'), "compact");
    }
}
