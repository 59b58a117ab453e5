//! Servers (`/servers`, Nova's `servers.py`): create, list (short and detailed,
//! with `name`, `status`, `limit` and `marker`), show, update (the name) and
//! delete, scoped to the caller's project (another project's server is a 404; an
//! admin sees all, and every project's with `all_tenants`).
//!
//! Nothing here touches a guest: a create validates, places and records the
//! instance with its boot queued in one transaction
//! ([`compute_host::driver::queue_boot`]), and a delete or an action queues its
//! work after the lifecycle's check
//! ([`compute_host::driver::control::queue_action`]); the instance's host agent
//! (on a state folder, the one `compute api` runs) carries it out, as for the
//! `compute` command. The answer is 202 at once, as Nova's.

use super::server_view::{self, detail, summary};
use super::Page;
use crate::microversion::deltas;
use crate::{ApiError, ApiResponse, Call};
use base64::Engine;
use compute::lifecycle::LifecycleError;
use compute_host::driver::{control, BootRequest, DriverError};
use compute_store::{
    FlavorRecord, InstanceQuery, InstanceRecord, Owner, StoreError, Visibility, Work, WorkState,
};
use http::StatusCode;
use indexmap::IndexMap;
use serde_json::{json, Map, Value};
use std::time::{Duration, Instant};

/// The most base64 user data a server takes (Nova's).
pub const MAX_USER_DATA: usize = 65535;

fn instance_not_found(id: &str) -> ApiError {
    ApiError::NotFound(format!("Instance {id} could not be found."))
}

/// The server `id` if the caller may see it (its project's, or any for an admin).
pub fn visible(call: &Call<'_>, id: &str) -> Result<InstanceRecord, ApiError> {
    let rec = match call.store.instance_by_uuid(id) {
        Ok(r) => r,
        Err(StoreError::NotFound { .. }) => return Err(instance_not_found(id)),
        Err(e) => return Err(e.into()),
    };
    let caller = call.caller()?;
    if rec.project_id != caller.project_id && !caller.is_admin() {
        return Err(instance_not_found(id));
    }
    Ok(rec)
}

/// A driver refusal as the client sees it: the lifecycle's is Nova's 409
/// ("Cannot 'stop' instance X while it is in vm_state stopped"), a bad request's
/// 400, the store's as the store's.
pub fn driver_error(err: DriverError, action: &str, uuid: &str) -> ApiError {
    match err {
        DriverError::Lifecycle(LifecycleError::Conflict { vm, task, .. }) => {
            let (attr, state) = if task == "none" {
                ("vm_state", vm)
            } else {
                ("task_state", task)
            };
            ApiError::Conflict(format!(
                "Cannot '{action}' instance {uuid} while it is in {attr} {state}"
            ))
        }
        DriverError::Invalid(m) => ApiError::BadRequest(m),
        DriverError::Store(StoreError::DocumentRefused { problem, .. }) => {
            ApiError::BadRequest(::compute::error_chain(problem.as_ref()))
        }
        DriverError::Store(StoreError::Placement(p)) => {
            ApiError::Conflict(format!("No valid host was found. {p}"))
        }
        DriverError::Store(e) => ApiError::from_store(e),
        other => ApiError::Internal(Box::new(other)),
    }
}

/// Waits (polling the store) until work item `id` has finished, at most
/// `patience`; a failed item is a 409 with the agent's error.
pub fn wait_work(call: &Call<'_>, id: u64, patience: Duration) -> Result<Work, ApiError> {
    let deadline = Instant::now() + patience;
    let mut pause = Duration::from_millis(20);
    loop {
        let work = call.store.work(id)?;
        match &work.state {
            WorkState::Done => return Ok(work),
            WorkState::Failed(e) => {
                return Err(ApiError::Conflict(format!("The host could not do it: {e}")))
            }
            WorkState::Queued | WorkState::Running => {}
        }
        if Instant::now() >= deadline {
            return Err(ApiError::Conflict(format!(
                "The instance's host has not done it within {} s (work item {id} stays queued).",
                patience.as_secs()
            )));
        }
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(250));
    }
}

/// The flavor record an instance was made from (by name), if it is still there.
pub fn flavor_of(call: &Call<'_>, rec: &InstanceRecord) -> Option<FlavorRecord> {
    call.store.flavor_record(&rec.flavor.name).ok()
}

/// One server in the detailed shape.
pub fn shown(call: &Call<'_>, rec: &InstanceRecord, full: bool) -> Value {
    let flavor = flavor_of(call, rec);
    detail(call, rec, flavor.as_ref(), full)
}

fn text<'v>(obj: &'v Map<String, Value>, key: &str) -> Result<Option<&'v str>, ApiError> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(ApiError::BadRequest(format!(
            "Invalid input for field/attribute {key}. It must be a string."
        ))),
    }
}

/// The last path segment of a reference that may be a URL (Nova accepts both).
fn reference(r: &str) -> &str {
    r.trim_end_matches('/').rsplit('/').next().unwrap_or(r)
}

/// `metadata` of a request: string keys and values.
pub fn metadata(v: &Value, what: &str) -> Result<Vec<(String, String)>, ApiError> {
    let Some(obj) = v.as_object() else {
        return Err(ApiError::BadRequest(format!(
            "Invalid input for field/attribute {what}. It must be an object."
        )));
    };
    obj.iter()
        .map(|(k, v)| match v {
            Value::String(s) if !k.is_empty() && k.len() <= 255 && s.len() <= 255 => {
                Ok((k.clone(), s.clone()))
            }
            _ => Err(ApiError::BadRequest(format!(
                "Invalid input for field/attribute {what}. Keys and values must be strings of 1 to 255 and 0 to 255 characters."
            ))),
        })
        .collect()
}

/// The image to boot: `imageRef`, else the image block device mapping OSC adds.
/// Volumes are not served here.
fn boot_image(server: &Map<String, Value>) -> Result<String, ApiError> {
    let mut from_bdm = None;
    if let Some(bdms) = server.get("block_device_mapping_v2") {
        let list = bdms.as_array().ok_or_else(|| {
            ApiError::BadRequest("block_device_mapping_v2 must be a list.".into())
        })?;
        for b in list {
            let source = b.get("source_type").and_then(Value::as_str).unwrap_or("");
            let dest = b
                .get("destination_type")
                .and_then(Value::as_str)
                .unwrap_or("local");
            if source != "image" || dest != "local" {
                return Err(ApiError::BadRequest(format!(
                    "Block device mappings of source {source} to {dest} are not supported: \
                     this cloud has no volumes; boot from an image."
                )));
            }
            from_bdm = b.get("uuid").and_then(Value::as_str).map(str::to_owned);
        }
    }
    match text(server, "imageRef")? {
        Some(r) if !r.is_empty() => Ok(reference(r).to_owned()),
        _ => from_bdm.ok_or_else(|| {
            ApiError::BadRequest(
                "Invalid input for field/attribute imageRef: it is required.".into(),
            )
        }),
    }
}

/// Networks: `auto`, `none`, absent or an empty list mean the host's network; a
/// list naming networks or ports is refused (no Neutron here).
fn check_networks(call: &Call<'_>, server: &Map<String, Value>) -> Result<(), ApiError> {
    match server.get("networks") {
        None if call.version().at_least(deltas::SERVER_NETWORKS_REQUIRED) => Err(
            ApiError::BadRequest("Invalid input for field/attribute networks: it is required (\"auto\" or \"none\").".into()),
        ),
        None => Ok(()),
        Some(Value::String(s)) if s == "auto" || s == "none" => Ok(()),
        Some(Value::Array(a)) if a.is_empty() => Ok(()),
        Some(_) => Err(ApiError::BadRequest(
            "Requested networks are not supported: every server is on the host's network; \
             send \"networks\": \"auto\" (or \"none\")."
                .into(),
        )),
    }
}

/// `user_data`: base64 of at most [`MAX_USER_DATA`] bytes.
pub fn user_data(v: Option<&Value>) -> Result<Option<Vec<u8>>, ApiError> {
    let s = match v {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::String(s)) => s,
        Some(_) => {
            return Err(ApiError::BadRequest(
                "User data needs to be valid base 64.".into(),
            ))
        }
    };
    if s.len() > MAX_USER_DATA {
        return Err(ApiError::BadRequest(format!(
            "Invalid input for field/attribute user_data. Value: it is {} bytes of base64, more than {MAX_USER_DATA}.",
            s.len()
        )));
    }
    let clean: String = s.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    base64::engine::general_purpose::STANDARD
        .decode(clean)
        .map(Some)
        .map_err(|_| ApiError::BadRequest("User data needs to be valid base 64.".into()))
}

/// `personality` (before 2.57): files to inject.
fn personality(call: &Call<'_>, v: Option<&Value>) -> Result<Vec<(String, Vec<u8>)>, ApiError> {
    let Some(v) = v else { return Ok(Vec::new()) };
    if call.version().at_least(deltas::SERVER_NO_PERSONALITY) {
        return Err(ApiError::BadRequest(
            "Invalid input for field/attribute server. Additional properties are not allowed ('personality' was unexpected)".into(),
        ));
    }
    let bad =
        || ApiError::BadRequest("personality must be a list of {path, contents (base64)}.".into());
    v.as_array()
        .ok_or_else(bad)?
        .iter()
        .map(|f| {
            let path = f.get("path").and_then(Value::as_str).ok_or_else(bad)?;
            let contents = f.get("contents").and_then(Value::as_str).ok_or_else(bad)?;
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(contents)
                .map_err(|_| {
                    ApiError::BadRequest(format!(
                        "Personality content for {path} cannot be decoded"
                    ))
                })?;
            Ok((path.to_owned(), bytes))
        })
        .collect()
}

/// A password for the guest when the request names none (Nova hands one back).
fn generated_password() -> Result<String, ApiError> {
    const ALPHABET: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789";
    let mut raw = [0u8; 12];
    getrandom::getrandom(&mut raw).map_err(|e| ApiError::Internal(Box::new(e)))?;
    Ok(raw
        .iter()
        .map(|b| ALPHABET[usize::from(*b) % ALPHABET.len()] as char)
        .collect())
}

/// `POST /servers`: 202 with the id, links and the admin password.
pub fn create(call: &mut Call<'_>) -> Result<ApiResponse, ApiError> {
    let body = call.req.json_value()?;
    let server = body
        .get("server")
        .and_then(Value::as_object)
        .ok_or_else(|| {
            ApiError::BadRequest("Invalid input: 'server' is a required property".into())
        })?;
    let name = text(server, "name")?.ok_or_else(|| {
        ApiError::BadRequest("Invalid input for field/attribute name: it is required.".into())
    })?;
    if name.trim().is_empty() || name.chars().count() > 255 {
        return Err(ApiError::BadRequest(
            "Invalid input for field/attribute name: 1 to 255 characters, not only spaces.".into(),
        ));
    }
    let image = boot_image(server)?;
    let flavor = text(server, "flavorRef")?
        .map(reference)
        .ok_or_else(|| {
            ApiError::BadRequest(
                "Invalid input for field/attribute flavorRef: it is required.".into(),
            )
        })?
        .to_owned();
    check_networks(call, server)?;
    for count in ["min_count", "max_count"] {
        match server.get(count) {
            None | Some(Value::Null) => {}
            Some(v) if v.as_u64() == Some(1) || v.as_str() == Some("1") => {}
            Some(_) => {
                return Err(ApiError::BadRequest(format!(
                    "{count}: this cloud boots one server per request."
                )))
            }
        }
    }
    match text(server, "availability_zone")? {
        None | Some("nova") | Some("") => {}
        Some(z) => {
            return Err(ApiError::BadRequest(format!(
                "Invalid availability zone {}: the only one is nova.",
                z.chars().take(64).collect::<String>()
            )))
        }
    }
    let meta: IndexMap<String, String> = match server.get("metadata") {
        None | Some(Value::Null) => IndexMap::new(),
        Some(m) => metadata(m, "metadata")?.into_iter().collect(),
    };
    let user_data = user_data(server.get("user_data"))?;
    let files = personality(call, server.get("personality"))?;
    let key_name = text(server, "key_name")?.map(str::to_owned);
    let admin_pass = match text(server, "adminPass")? {
        Some(p) => p.to_owned(),
        None => generated_password()?,
    };
    let caller = call.caller()?.clone();
    // The image and flavor must be the caller's to use (Nova: 400 either way).
    let img = match call.store.image(&image) {
        Ok(i) if i.id == image => i,
        Ok(_) | Err(StoreError::NotFound { .. }) => {
            return Err(ApiError::BadRequest(format!(
                "Image {image} could not be found."
            )))
        }
        Err(e) => return Err(e.into()),
    };
    let usable = img.owner == caller.project_id
        || matches!(img.visibility, Visibility::Public | Visibility::Community)
        || caller.is_admin();
    if !usable {
        return Err(ApiError::BadRequest(format!(
            "Image {image} could not be found."
        )));
    }
    let f = match call.store.flavor_record(&flavor) {
        Ok(f) if f.id == flavor && (f.is_public || caller.is_admin()) => f,
        Ok(_) | Err(StoreError::NotFound { .. }) => {
            return Err(ApiError::BadRequest(format!(
                "Flavor {flavor} could not be found."
            )))
        }
        Err(e) => return Err(e.into()),
    };
    if let Some(k) = &key_name {
        if call.store.keypair(&caller.user_id, k).is_err() {
            return Err(ApiError::BadRequest("Invalid key_name provided.".into()));
        }
    }
    let req = BootRequest {
        name: name.to_owned(),
        image: img.id,
        flavor: f.id,
        key_name,
        user_data,
        files,
        meta,
        // Every guest gets a config drive (Nova's force_config_drive): it is how our
        // guests learn their network before the metadata service is reachable.
        config_drive: true,
        admin_pass: Some(admin_pass.clone()),
        host: None,
        owner: Owner {
            project_id: caller.project_id.clone(),
            user_id: caller.user_id.clone(),
        },
    };
    let (rec, _work) = compute_host::driver::queue_boot(call.store, &req)
        .map_err(|e| driver_error(e, "create", ""))?;
    call.api.wake_agent();
    let location = format!("{}/servers/{}", call.req.urls.compute, rec.uuid);
    Ok(ApiResponse::with(
        StatusCode::ACCEPTED,
        json!({"server": {
            "id": rec.uuid,
            "links": server_view::links(call, &rec.uuid),
            "OS-DCF:diskConfig": "MANUAL",
            "security_groups": [{"name": "default"}],
            "adminPass": admin_pass,
        }}),
    )
    .header("location", location))
}

/// The project a list is of (`None`: all, for an admin with `all_tenants`).
fn list_scope(call: &Call<'_>) -> Result<Option<String>, ApiError> {
    let caller = call.caller()?;
    let all_tenants = call.req.query("all_tenants").is_some_and(|v| {
        !matches!(
            v.to_ascii_lowercase().as_str(),
            "false" | "0" | "off" | "no"
        )
    });
    if !all_tenants {
        return Ok(Some(caller.project_id.clone()));
    }
    caller.require_admin("os_compute_api:servers:index:get_all_tenants")?;
    Ok(call
        .req
        .query("project_id")
        .or(call.req.query("tenant_id"))
        .map(str::to_owned))
}

/// The page the query asks for (`name` substring, `status`, `limit`, `marker`),
/// newest first (Nova's default sort), filtered and cut by the store: a page
/// reads its own rows, not the project's.
fn listed<'c>(
    call: &'c Call<'_>,
    project: Option<&str>,
) -> Result<(Vec<InstanceRecord>, Page<'c>), ApiError> {
    let page = Page::of(call.req)?;
    let states = call
        .req
        .query("status")
        .map(compute::lifecycle::State::with_status);
    let query = InstanceQuery {
        project,
        name_contains: call.req.query("name"),
        states: states.as_deref(),
        marker: page.marker,
        limit: page.limit,
    };
    match call.store.instance_page(&query) {
        Ok(items) => Ok((items, page)),
        Err(StoreError::NotFound { kind: "marker", .. }) => Err(ApiError::BadRequest(format!(
            "marker [{}] not found",
            page.marker.unwrap_or("")
        ))),
        Err(e) => Err(e.into()),
    }
}

fn next_link(
    call: &Call<'_>,
    page: &Page<'_>,
    path: &str,
    len: usize,
    last: Option<&str>,
) -> Option<Value> {
    let last = last?;
    page.full(len).then(|| {
        json!([{"rel": "next", "href": format!(
            "{}/{path}?limit={}&marker={last}", call.req.urls.compute, page.limit
        )}])
    })
}

/// `GET /servers`.
pub fn list(call: &mut Call<'_>) -> Result<ApiResponse, ApiError> {
    let project = list_scope(call)?;
    let (items, page) = listed(call, project.as_deref())?;
    let shown: Vec<Value> = items
        .iter()
        .map(|s| summary(call, &s.uuid, &s.name))
        .collect();
    let mut body = json!({ "servers": shown });
    let last = items.last().map(|s| s.uuid.as_str());
    if let Some(l) = next_link(call, &page, "servers", items.len(), last) {
        body["servers_links"] = l;
    }
    Ok(ApiResponse::ok(body))
}

/// `GET /servers/detail`: the page's records in one read.
pub fn list_detail(call: &mut Call<'_>) -> Result<ApiResponse, ApiError> {
    let project = list_scope(call)?;
    let (items, page) = listed(call, project.as_deref())?;
    let flavors = call.store.flavor_records()?;
    let shown: Vec<Value> = items
        .iter()
        .map(|rec| {
            let flavor = flavors.iter().find(|f| f.flavor.name == rec.flavor.name);
            detail(call, rec, flavor, false)
        })
        .collect();
    let mut body = json!({ "servers": shown });
    let last = items.last().map(|r| r.uuid.as_str());
    if let Some(l) = next_link(call, &page, "servers/detail", items.len(), last) {
        body["servers_links"] = l;
    }
    Ok(ApiResponse::ok(body))
}

/// `GET /servers/{id}`.
pub fn show(call: &mut Call<'_>) -> Result<ApiResponse, ApiError> {
    let rec = visible(call, call.segment(1))?;
    Ok(ApiResponse::ok(json!({"server": shown(call, &rec, true)})))
}

/// `PUT /servers/{id}`: the name (description and hostname are not kept here).
pub fn update(call: &mut Call<'_>) -> Result<ApiResponse, ApiError> {
    let rec = visible(call, call.segment(1))?;
    let body = call.req.json_value()?;
    let server = body
        .get("server")
        .and_then(Value::as_object)
        .ok_or_else(|| {
            ApiError::BadRequest("Invalid input: 'server' is a required property".into())
        })?;
    for key in server.keys() {
        if !matches!(
            key.as_str(),
            "name" | "description" | "accessIPv4" | "accessIPv6" | "OS-DCF:diskConfig" | "hostname"
        ) {
            return Err(ApiError::BadRequest(format!(
                "Invalid input for field/attribute server. Additional properties are not allowed ('{}' was unexpected)",
                key.chars().take(64).collect::<String>()
            )));
        }
    }
    let rec = match text(server, "name")? {
        Some(n) if n.trim().is_empty() || n.chars().count() > 255 => {
            return Err(ApiError::BadRequest(
                "Invalid input for field/attribute name: 1 to 255 characters, not only spaces."
                    .into(),
            ))
        }
        Some(n) => control::rename(call.store, &rec.uuid, n)
            .map_err(|e| driver_error(e, "update", &rec.uuid))?,
        None => rec,
    };
    Ok(ApiResponse::ok(json!({"server": shown(call, &rec, true)})))
}

/// `DELETE /servers/{id}`: 204; the host's agent ends the guest and forgets it.
pub fn delete(call: &mut Call<'_>) -> Result<ApiResponse, ApiError> {
    let rec = visible(call, call.segment(1))?;
    control::queue_action(call.store, &rec.uuid, &compute_store::WorkAction::Delete)
        .map_err(|e| driver_error(e, "delete", &rec.uuid))?;
    call.api.wake_agent();
    Ok(ApiResponse::empty(StatusCode::NO_CONTENT))
}
