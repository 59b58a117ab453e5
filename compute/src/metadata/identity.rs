//! The EC2 instance identity document (`dynamic/instance-identity/document`), in
//! AWS's layout: fixed key order, 2-space indentation and ` : ` between key and
//! value. The same instance gives the same bytes, so a client may hash them; the
//! server signs exactly these bytes.

use crate::instance::Instance;
use bytes::Bytes;

/// `pendingTime` when the document has no `created_at` (the drive builder's default
/// timestamp too).
const DEFAULT_PENDING_TIME: i64 = 1_577_836_800; // 2020-01-01T00:00:00Z

/// The identity document's version field, as AWS writes it.
const DOCUMENT_VERSION: &str = "2017-09-30";

pub(super) fn identity_document(instance: &Instance) -> Bytes {
    let private_ip = instance.local_ipv4().map(|(ip, _)| ip.to_string());
    let ami = instance.ami_id();
    let pending = instance.created_at().unwrap_or(DEFAULT_PENDING_TIME);
    let pending = time::OffsetDateTime::from_unix_timestamp(pending)
        .ok()
        .and_then(|t| {
            t.format(time::macros::format_description!(
                "[year]-[month]-[day]T[hour]:[minute]:[second]Z"
            ))
            .ok()
        })
        .unwrap_or_else(|| "2020-01-01T00:00:00Z".to_owned());
    let ec2_id = instance.ec2_id();
    let kernel = instance.kernel_id();
    let ramdisk = instance.ramdisk_id();
    let fields: [(&str, Option<&str>); 15] = [
        ("accountId", instance.project_id()),
        ("architecture", Some("x86_64")),
        ("availabilityZone", Some(instance.availability_zone())),
        ("billingProducts", None),
        ("devpayProductCodes", None),
        ("marketplaceProductCodes", None),
        ("imageId", Some(ami.as_str()).filter(|a| !a.is_empty())),
        ("instanceId", Some(ec2_id.as_str())),
        ("instanceType", Some(instance.instance_type())),
        ("kernelId", kernel.as_deref()),
        ("pendingTime", Some(pending.as_str())),
        ("privateIp", private_ip.as_deref()),
        ("ramdiskId", ramdisk.as_deref()),
        ("region", Some(instance.region())),
        ("version", Some(DOCUMENT_VERSION)),
    ];
    let mut out = String::with_capacity(512);
    out.push('{');
    for (i, (key, value)) in fields.iter().enumerate() {
        out.push_str(if i == 0 { "\n  " } else { ",\n  " });
        out.push_str(&json_string(key));
        out.push_str(" : ");
        match value {
            Some(v) => out.push_str(&json_string(v)),
            None => out.push_str("null"),
        }
    }
    out.push_str("\n}");
    Bytes::from(out)
}

fn json_string(s: &str) -> String {
    serde_json::Value::from(s).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn document_is_in_aws_layout_and_order() {
        let doc = r#"{"uuid": "d8e02d56-2648-49a3-bf97-6be8f1204f38", "name": "n",
            "availability_zone": "us-east-1a", "project_id": "p1", "image_id": "ami-00000001",
            "kernel_id": "aki-00000002", "created_at": "2026-01-15T08:30:00+01:00",
            "network": {"links": [{"id": "l", "type": "phy", "ethernet_mac_address": "fa:16:3e:00:00:01"}],
                        "networks": [{"id": "n", "type": "ipv4_dhcp", "link": "l", "ip_address": "10.0.0.5"}]}}"#;
        let i = Instance::from_json(doc.as_bytes()).expect("valid");
        let want = "{\n  \"accountId\" : \"p1\",\n  \"architecture\" : \"x86_64\",\n  \"availabilityZone\" : \"us-east-1a\",\n  \"billingProducts\" : null,\n  \"devpayProductCodes\" : null,\n  \"marketplaceProductCodes\" : null,\n  \"imageId\" : \"ami-00000001\",\n  \"instanceId\" : \"i-d8e02d56\",\n  \"instanceType\" : \"m1.small\",\n  \"kernelId\" : \"aki-00000002\",\n  \"pendingTime\" : \"2026-01-15T07:30:00Z\",\n  \"privateIp\" : \"10.0.0.5\",\n  \"ramdiskId\" : null,\n  \"region\" : \"us-east-1\",\n  \"version\" : \"2017-09-30\"\n}";
        assert_eq!(
            std::str::from_utf8(&identity_document(&i)).expect("utf8"),
            want
        );
        let parsed: serde_json::Value =
            serde_json::from_slice(&identity_document(&i)).expect("json");
        assert_eq!(parsed["instanceId"], "i-d8e02d56");

        let bare = Instance::from_json(
            br#"{"uuid": "d8e02d56-2648-49a3-bf97-6be8f1204f38", "name": "n"}"#,
        )
        .expect("valid");
        let parsed: serde_json::Value =
            serde_json::from_slice(&identity_document(&bare)).expect("json");
        assert_eq!(parsed["accountId"], serde_json::Value::Null);
        assert_eq!(parsed["privateIp"], serde_json::Value::Null);
        assert_eq!(parsed["imageId"], serde_json::Value::Null);
        assert_eq!(parsed["pendingTime"], "2020-01-01T00:00:00Z");
        assert_eq!(parsed["region"], "RegionOne");
    }
}
