//! How a server looks (Nova's `views/servers.py`): the detailed shape per
//! microversion, the short list shape, and Nova's status words and `OS-EXT-STS:*`
//! values from the lifecycle's state (the core's [`State::status`]). Pure: a
//! record and what the caller may see in, JSON out.

use crate::microversion::deltas;
use crate::shape::Shape;
use crate::Call;
use compute::lifecycle::{State, VmState};
use compute_store::{FlavorRecord, InstanceRecord};
use serde_json::{json, Value};
use sha2::Digest;

/// What a view reads of the stored document (it was validated when written; the
/// rest of it is the guest's business).
#[derive(serde::Deserialize)]
struct Peek {
    #[serde(default)]
    meta: indexmap::IndexMap<String, String>,
    #[serde(default)]
    hostname: Option<String>,
}

/// The network every guest is on, as addresses name it (no Neutron here).
pub const NETWORK_NAME: &str = "private";

/// `self` and `bookmark` links of a server.
pub fn links(call: &Call<'_>, id: &str) -> Value {
    json!([
        {"rel": "self", "href": format!("{}/servers/{id}", call.req.urls.compute)},
        {"rel": "bookmark", "href": format!("{}/servers/{id}", call.req.urls.compute_root)},
    ])
}

/// Nova's timestamps without the zone and with microseconds
/// (`2026-01-01T00:00:09.000000`), for the `OS-SRV-USG` fields.
fn usage_time(t: &str) -> String {
    format!("{}.000000", t.trim_end_matches('Z'))
}

/// Whether Nova shows `progress` in this status.
fn has_progress(status: &str) -> bool {
    matches!(
        status,
        "ACTIVE" | "BUILD" | "REBUILD" | "RESIZE" | "VERIFY_RESIZE" | "MIGRATING"
    )
}

/// The `OS-EXT-STS:*` values of a state.
pub fn sts(state: &State) -> (&'static str, Value, u8) {
    (
        state.vm.as_str(),
        state.task.map_or(Value::Null, |t| Value::from(t.as_str())),
        state.power.code(),
    )
}

/// The short shape (`GET /servers`).
pub fn summary(call: &Call<'_>, id: &str, name: &str) -> Value {
    json!({"id": id, "name": name, "links": links(call, id)})
}

/// The detailed shape (`GET /servers/{id}`, `/servers/detail`); `flavor` is the
/// flavor record of the same name when one is left (its id before 2.47),
/// `full` adds what only show, update and rebuild carry (`server_groups`).
pub fn detail(
    call: &Call<'_>,
    rec: &InstanceRecord,
    flavor: Option<&FlavorRecord>,
    full: bool,
) -> Value {
    let v = call.version();
    let admin = call.caller().map(|c| c.is_admin()).unwrap_or(false);
    let doc = serde_json::from_str::<Peek>(&rec.document).ok();
    let metadata = doc.as_ref().map_or_else(
        || json!({}),
        |d| Value::Object(d.meta.iter().map(|(k, v)| (k.clone(), json!(v))).collect()),
    );
    // The document's, else derived from the name as the core does (the stored
    // document was validated when written: no need to validate it again).
    let hostname = doc
        .as_ref()
        .and_then(|d| d.hostname.clone())
        .unwrap_or_else(|| compute::instance::sanitize_hostname(&rec.name, &rec.uuid));
    let status = rec.state.status();
    let (vm, task, power) = sts(&rec.state);
    let addresses = if rec.state.vm == VmState::Building {
        json!({})
    } else {
        json!({ NETWORK_NAME: [{
            "addr": rec.fixed_ip.to_string(),
            "version": 4,
            "OS-EXT-IPS:type": "fixed",
            "OS-EXT-IPS-MAC:mac_addr": rec.mac.to_string(),
        }]})
    };
    let host_id = hex::encode(sha2::Sha224::digest(
        format!("{}{}", rec.project_id, rec.host).as_bytes(),
    ));
    let flavor_id = flavor.map_or_else(|| rec.flavor.name.clone(), |f| f.id.clone());
    let flavor_view = if v.at_least(deltas::SERVER_FLAVOR_EMBEDDED) {
        let f = &rec.flavor;
        json!({
            "vcpus": f.vcpus, "ram": f.ram_mb, "disk": f.disk_gb,
            "ephemeral": f.ephemeral_gb, "swap": f.swap_mb,
            "original_name": f.name,
            "extra_specs": flavor.map_or_else(|| json!({}), |r| json!(r.extra_specs)),
        })
    } else {
        json!({"id": flavor_id, "links": [{"rel": "bookmark",
            "href": format!("{}/flavors/{flavor_id}", call.req.urls.compute_root)}]})
    };
    let launched = match rec.state.vm {
        VmState::Building => Value::Null,
        _ => Value::from(usage_time(&rec.created_at)),
    };
    let mut s = Shape::new(v)
        .field("id", rec.uuid.as_str())
        .field("name", rec.name.as_str())
        .field("status", status)
        .field("tenant_id", rec.project_id.as_str())
        .field("user_id", rec.user_id.as_str())
        .field("created", rec.created_at.as_str())
        .field("updated", rec.updated_at.as_str())
        .field("hostId", host_id)
        .field("addresses", addresses)
        .field(
            "image",
            json!({"id": rec.image_id, "links": [{"rel": "bookmark",
                "href": format!("{}/images/{}", call.req.urls.compute_root, rec.image_id)}]}),
        )
        .field("flavor", flavor_view)
        .field(
            "key_name",
            rec.key_name.clone().map_or(Value::Null, Value::from),
        )
        .field("metadata", metadata)
        .field("accessIPv4", "")
        .field("accessIPv6", "")
        .field("config_drive", "True")
        .field("OS-DCF:diskConfig", "MANUAL")
        .field("OS-EXT-AZ:availability_zone", "nova")
        .field("OS-EXT-STS:vm_state", vm)
        .field("OS-EXT-STS:task_state", task)
        .field("OS-EXT-STS:power_state", power)
        .field("OS-SRV-USG:launched_at", launched)
        .field("OS-SRV-USG:terminated_at", Value::Null)
        .field("os-extended-volumes:volumes_attached", json!([]))
        .field("security_groups", json!([{"name": "default"}]))
        .field("links", links(call, &rec.uuid))
        .since(deltas::SERVER_LOCKED, "locked", false)
        .since(deltas::SERVER_DESCRIPTION, "description", Value::Null)
        .since(deltas::SERVER_TAGS, "tags", json!([]))
        .since(
            deltas::SERVER_TRUSTED_CERTS,
            "trusted_image_certificates",
            Value::Null,
        )
        .since(deltas::SERVER_LOCKED_REASON, "locked_reason", Value::Null)
        .since(
            deltas::SERVER_PINNED_AZ,
            "pinned_availability_zone",
            Value::Null,
        );
    if has_progress(status) {
        s = s.field("progress", 0);
    }
    if full {
        s = s.since(deltas::SERVER_GROUPS, "server_groups", json!([]));
    }
    if admin || v.at_least(deltas::SERVER_HOSTNAME) {
        s = s.field("OS-EXT-SRV-ATTR:hostname", hostname);
    }
    if admin {
        s = s
            .field("OS-EXT-SRV-ATTR:host", rec.host.as_str())
            .field("OS-EXT-SRV-ATTR:hypervisor_hostname", rec.host.as_str())
            .field(
                "OS-EXT-SRV-ATTR:instance_name",
                format!("instance-{}", &rec.uuid[..8.min(rec.uuid.len())]),
            );
    }
    if matches!(rec.state.vm, VmState::Error | VmState::Deleted) {
        if let Some(f) = &rec.fault {
            s = s.field(
                "fault",
                json!({"code": f.code, "created": rec.updated_at, "message": f.message}),
            );
        }
    }
    s.build()
}
