//! Limits (`GET /limits`, Nova's `limits.py`): our quotas as Nova's absolute
//! limits. What compute enforces has its number (metadata items, injected files,
//! keypairs per user); what it does not limit is `-1`, Nova's "unlimited"
//! (instances, cores, RAM); server groups do not exist here (0). Usage counts the
//! project's instances. An admin may ask for another project (`tenant_id`).

use crate::microversion::deltas;
use crate::shape::Shape;
use crate::{ApiError, ApiResponse, Call};
use compute::quota;
use serde_json::json;

/// `GET /limits`.
pub fn show(call: &mut Call<'_>) -> Result<ApiResponse, ApiError> {
    let caller = call.caller()?;
    let project = match call.req.query("tenant_id") {
        Some(t) if t != caller.project_id && caller.is_admin() => t.to_owned(),
        _ => caller.project_id.clone(),
    };
    let used = call.store.project_usage(&project)?;
    let absolute = Shape::new(call.version())
        .field("maxServerMeta", quota::MAX_METADATA_ITEMS)
        .field("maxImageMeta", quota::MAX_METADATA_ITEMS)
        .until(
            deltas::LIMITS_NO_PERSONALITY,
            "maxPersonality",
            quota::MAX_INJECTED_FILES,
        )
        .until(
            deltas::LIMITS_NO_PERSONALITY,
            "maxPersonalitySize",
            quota::MAX_INJECTED_FILE_BYTES,
        )
        .field("maxTotalKeypairs", quota::MAX_KEYPAIRS)
        .field("maxTotalInstances", -1)
        .field("maxTotalCores", -1)
        .field("maxTotalRAMSize", -1)
        .field("maxServerGroups", 0)
        .field("maxServerGroupMembers", 0)
        .until(deltas::LIMITS_NO_NETWORK, "maxSecurityGroups", 0)
        .until(deltas::LIMITS_NO_NETWORK, "maxSecurityGroupRules", 0)
        .until(deltas::LIMITS_NO_NETWORK, "maxTotalFloatingIps", 0)
        .field("totalInstancesUsed", used.instances)
        .field("totalCoresUsed", used.vcpus)
        .field("totalRAMUsed", used.ram_mb)
        .field("totalServerGroupsUsed", 0)
        .until(deltas::LIMITS_NO_NETWORK, "totalSecurityGroupsUsed", 0)
        .until(deltas::LIMITS_NO_NETWORK, "totalFloatingIpsUsed", 0)
        .build();
    Ok(ApiResponse::ok(
        json!({"limits": {"rate": [], "absolute": absolute}}),
    ))
}
