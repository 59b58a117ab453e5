//! Flavors (`/flavors`, Nova's `flavors.py`, `flavor_manage.py`,
//! `flavors_extraspecs.py`, `flavor_access.py`). Everyone sees the public flavors;
//! admins see all (`is_public=None`), create and delete them, and set their extra
//! specs. A private flavor has no access list here (no project can be granted one),
//! so only admins see it, and another caller gets 404, as from Nova.

use super::Page;
use crate::microversion::deltas;
use crate::shape::Shape;
use crate::{ApiError, ApiResponse, Call};
use compute::flavor::Flavor;
use compute_store::FlavorRecord;
use http::StatusCode;
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;

/// The most extra specs a flavor may carry.
pub const MAX_EXTRA_SPECS: usize = 256;
/// The longest extra spec key and value (Nova's 255).
pub const MAX_EXTRA_SPEC_LENGTH: usize = 255;

fn links(call: &Call<'_>, id: &str) -> Value {
    let urls = &call.req.urls;
    json!([
        {"rel": "self", "href": format!("{}/flavors/{id}", urls.compute)},
        {"rel": "bookmark", "href": format!("{}/flavors/{id}", urls.compute_root)},
    ])
}

/// The full flavor in the request's shape.
fn detail(call: &Call<'_>, f: &FlavorRecord) -> Value {
    let swap = f.flavor.swap_mb;
    Shape::new(call.version())
        .field("id", f.id.as_str())
        .field("name", f.flavor.name.as_str())
        .field("ram", f.flavor.ram_mb)
        .field("vcpus", f.flavor.vcpus)
        .field("disk", f.flavor.disk_gb)
        .field("OS-FLV-EXT-DATA:ephemeral", f.flavor.ephemeral_gb)
        .changed(
            deltas::FLAVOR_SWAP_INTEGER,
            "swap",
            if swap == 0 { json!("") } else { json!(swap) },
            swap,
        )
        .field("rxtx_factor", 1.0)
        .field("os-flavor-access:is_public", f.is_public)
        .field("OS-FLV-DISABLED:disabled", false)
        .field("links", links(call, &f.id))
        .since(
            deltas::FLAVOR_DESCRIPTION,
            "description",
            f.description.clone(),
        )
        .since(
            deltas::FLAVOR_EXTRA_SPECS,
            "extra_specs",
            json!(f.extra_specs),
        )
        .build()
}

/// The list entry (`GET /flavors`).
fn summary(call: &Call<'_>, f: &FlavorRecord) -> Value {
    Shape::new(call.version())
        .field("id", f.id.as_str())
        .field("name", f.flavor.name.as_str())
        .field("links", links(call, &f.id))
        .since(
            deltas::FLAVOR_DESCRIPTION,
            "description",
            f.description.clone(),
        )
        .build()
}

/// Nova's `is_public` filter: absent is public only, `none` all, else a boolean.
fn is_public_filter(call: &Call<'_>) -> Result<Option<bool>, ApiError> {
    if !call.caller()?.is_admin() {
        return Ok(Some(true));
    }
    match call.req.query("is_public") {
        None => Ok(Some(true)),
        Some(v) if v.eq_ignore_ascii_case("none") => Ok(None),
        Some(v) => parse_bool(v)
            .map(Some)
            .ok_or_else(|| ApiError::BadRequest(format!("Invalid is_public filter [{v}]"))),
    }
}

/// oslo's strict boolean strings.
fn parse_bool(v: &str) -> Option<bool> {
    match v.to_ascii_lowercase().as_str() {
        "1" | "t" | "true" | "on" | "y" | "yes" => Some(true),
        "0" | "f" | "false" | "off" | "n" | "no" => Some(false),
        _ => None,
    }
}

fn min_filter(call: &Call<'_>, key: &str) -> Result<Option<u32>, ApiError> {
    match call.req.query(key) {
        None => Ok(None),
        Some(v) => v
            .parse::<u32>()
            .map(Some)
            .map_err(|_| ApiError::BadRequest(format!("Invalid {key} filter [{v}]"))),
    }
}

/// The flavors this caller may list, filtered and paged as asked.
fn listed(call: &mut Call<'_>) -> Result<(Vec<FlavorRecord>, bool), ApiError> {
    let public = is_public_filter(call)?;
    let min_ram = min_filter(call, "minRam")?;
    let min_disk = min_filter(call, "minDisk")?;
    let page = Page::of(call.req)?;
    let all: Vec<FlavorRecord> = call
        .store
        .flavor_records()?
        .into_iter()
        .filter(|f| public.is_none_or(|p| f.is_public == p))
        .filter(|f| min_ram.is_none_or(|m| f.flavor.ram_mb >= m))
        .filter(|f| min_disk.is_none_or(|m| f.flavor.disk_gb >= m))
        .collect();
    let items = page.apply(all, |f| f.id.as_str())?;
    let more = page.full(items.len());
    Ok((items, more))
}

fn list_body(
    call: &Call<'_>,
    key: &str,
    items: Vec<Value>,
    more: bool,
    last: Option<&str>,
) -> Value {
    let mut body = Map::new();
    body.insert(key.to_owned(), Value::Array(items));
    if let (true, Some(last)) = (more, last) {
        let path = if key == "flavors" && call.segment(1) == "detail" {
            "flavors/detail"
        } else {
            "flavors"
        };
        body.insert(
            "flavors_links".into(),
            json!([{"rel": "next", "href": format!("{}/{path}?marker={last}", call.req.urls.compute)}]),
        );
    }
    Value::Object(body)
}

/// `GET /flavors`.
pub fn list(call: &mut Call<'_>) -> Result<ApiResponse, ApiError> {
    let (items, more) = listed(call)?;
    let last = items.last().map(|f| f.id.clone());
    let shown = items.iter().map(|f| summary(call, f)).collect();
    Ok(ApiResponse::ok(list_body(
        call,
        "flavors",
        shown,
        more,
        last.as_deref(),
    )))
}

/// `GET /flavors/detail`.
pub fn list_detail(call: &mut Call<'_>) -> Result<ApiResponse, ApiError> {
    let (items, more) = listed(call)?;
    let last = items.last().map(|f| f.id.clone());
    let shown = items.iter().map(|f| detail(call, f)).collect();
    Ok(ApiResponse::ok(list_body(
        call,
        "flavors",
        shown,
        more,
        last.as_deref(),
    )))
}

fn not_found(id: &str) -> ApiError {
    ApiError::NotFound(format!("Flavor {id} could not be found."))
}

/// The flavor with id `id` if this caller may see it.
fn visible(call: &Call<'_>, id: &str) -> Result<FlavorRecord, ApiError> {
    let f = match call.store.flavor_record(id) {
        Ok(f) => f,
        Err(compute_store::StoreError::NotFound { .. }) => return Err(not_found(id)),
        Err(e) => return Err(e.into()),
    };
    if f.id != id || (!f.is_public && !call.caller()?.is_admin()) {
        return Err(not_found(id));
    }
    Ok(f)
}

/// `GET /flavors/{id}`.
pub fn show(call: &mut Call<'_>) -> Result<ApiResponse, ApiError> {
    let f = visible(call, call.segment(1))?;
    Ok(ApiResponse::ok(json!({"flavor": detail(call, &f)})))
}

/// A whole number from a JSON number or a string of digits (Nova's
/// `flavor_param_positive`), within `min..=max`.
fn number(
    obj: &Map<String, Value>,
    key: &str,
    min: u32,
    max: u32,
) -> Result<Option<u32>, ApiError> {
    let bad = || {
        ApiError::BadRequest(format!(
            "Invalid input for field/attribute {key}. Value: {}. It must be an integer from {min} to {max}.",
            obj.get(key).map(|v| v.to_string()).unwrap_or_default().chars().take(64).collect::<String>()
        ))
    };
    let n = match obj.get(key) {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::Number(n)) => n.as_u64().ok_or_else(bad)?,
        Some(Value::String(s)) if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) => {
            s.parse::<u64>().map_err(|_| bad())?
        }
        Some(_) => return Err(bad()),
    };
    if n < u64::from(min) || n > u64::from(max) {
        return Err(bad());
    }
    Ok(Some(n as u32))
}

fn required(v: Option<u32>, key: &str) -> Result<u32, ApiError> {
    v.ok_or_else(|| {
        ApiError::BadRequest(format!(
            "Invalid input for field/attribute flavor. '{key}' is a required property"
        ))
    })
}

/// Nova's flavor id rule: letters, digits, `.`, ` `, `_`, `-`, no space at either end.
fn valid_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 255
        && !id.starts_with(' ')
        && !id.ends_with(' ')
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || ". _-".contains(c))
}

/// The flavor a create body describes.
fn parse_create(call: &Call<'_>) -> Result<FlavorRecord, ApiError> {
    let body = call.req.json_value()?;
    let obj = body
        .get("flavor")
        .and_then(Value::as_object)
        .ok_or_else(|| {
            ApiError::BadRequest(
                "Invalid input for field/attribute flavor. 'flavor' is a required property".into(),
            )
        })?;
    let mut allowed = vec![
        "name",
        "id",
        "ram",
        "vcpus",
        "disk",
        "OS-FLV-EXT-DATA:ephemeral",
        "swap",
        "rxtx_factor",
        "os-flavor-access:is_public",
    ];
    if call.version().at_least(deltas::FLAVOR_DESCRIPTION) {
        allowed.push("description");
    }
    if let Some(extra) = obj.keys().find(|k| !allowed.contains(&k.as_str())) {
        return Err(ApiError::BadRequest(format!(
            "Invalid input for field/attribute flavor. Additional properties are not allowed ('{}' was unexpected)",
            extra.chars().take(64).collect::<String>()
        )));
    }
    let name = match obj.get("name") {
        Some(Value::String(s)) if !s.trim().is_empty() && s.len() <= 255 && s.trim() == s => {
            s.clone()
        }
        Some(_) => {
            return Err(ApiError::BadRequest(
                "Invalid input for field/attribute name. It must be 1 to 255 characters with no leading or trailing spaces.".into(),
            ))
        }
        None => {
            return Err(ApiError::BadRequest(
                "Invalid input for field/attribute flavor. 'name' is a required property".into(),
            ))
        }
    };
    let id = match obj.get("id") {
        None | Some(Value::Null) => uuid::Uuid::new_v4().hyphenated().to_string(),
        Some(Value::String(s)) if valid_id(s) => s.clone(),
        Some(_) => {
            return Err(ApiError::BadRequest(
                "Invalid input for field/attribute id. It must be 1 to 255 letters, digits, '.', ' ', '_' and '-', with no space at either end.".into(),
            ))
        }
    };
    let swap = match obj.get("swap") {
        Some(Value::String(s)) if s.is_empty() => 0,
        _ => number(obj, "swap", 0, 1 << 20)?.unwrap_or(0),
    };
    if let Some(r) = obj.get("rxtx_factor") {
        if !r.as_f64().is_some_and(|f| f > 0.0 && f <= 3.4e38) {
            return Err(ApiError::BadRequest(
                "Invalid input for field/attribute rxtx_factor. It must be a number above 0."
                    .into(),
            ));
        }
    }
    let is_public = match obj.get("os-flavor-access:is_public") {
        None | Some(Value::Null) => true,
        Some(Value::Bool(b)) => *b,
        Some(Value::String(s)) => parse_bool(s).ok_or_else(|| {
            ApiError::BadRequest(
                "Invalid input for field/attribute os-flavor-access:is_public. It must be a boolean.".into(),
            )
        })?,
        Some(_) => {
            return Err(ApiError::BadRequest(
                "Invalid input for field/attribute os-flavor-access:is_public. It must be a boolean.".into(),
            ))
        }
    };
    let description = match obj.get("description") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) if s.chars().count() <= 65535 => Some(s.clone()),
        Some(_) => {
            return Err(ApiError::BadRequest(
                "Invalid input for field/attribute description. It must be text of at most 65535 characters.".into(),
            ))
        }
    };
    let flavor = Flavor {
        name,
        ram_mb: required(number(obj, "ram", 1, u32::MAX)?, "ram")?,
        vcpus: required(number(obj, "vcpus", 1, u32::MAX)?, "vcpus")?,
        disk_gb: required(number(obj, "disk", 0, u32::MAX)?, "disk")?,
        ephemeral_gb: number(obj, "OS-FLV-EXT-DATA:ephemeral", 0, u32::MAX)?.unwrap_or(0),
        swap_mb: swap,
    };
    // Nova's schema, then our own limits (QEMU's arguments and disk sizes).
    flavor
        .validate()
        .map_err(|e| ApiError::BadRequest(e.to_string()))?;
    Ok(FlavorRecord {
        id,
        flavor,
        is_public,
        description,
        extra_specs: BTreeMap::new(),
    })
}

/// `POST /flavors` (admin): 200 with the flavor.
pub fn create(call: &mut Call<'_>) -> Result<ApiResponse, ApiError> {
    call.caller()?
        .require_admin("os_compute_api:os-flavor-manage:create")?;
    let rec = parse_create(call)?;
    let taken = call.store.flavor_records()?;
    if taken.iter().any(|f| f.flavor.name == rec.flavor.name) {
        return Err(ApiError::Conflict(format!(
            "Flavor with name {} already exists.",
            rec.flavor.name
        )));
    }
    if taken.iter().any(|f| f.id == rec.id) {
        return Err(ApiError::Conflict(format!(
            "Flavor with ID {} already exists.",
            rec.id
        )));
    }
    call.store.create_flavor(&rec)?;
    tracing::info!(flavor = rec.id, name = rec.flavor.name, "flavor created");
    Ok(ApiResponse::ok(json!({"flavor": detail(call, &rec)})))
}

/// `DELETE /flavors/{id}` (admin): 202.
pub fn delete(call: &mut Call<'_>) -> Result<ApiResponse, ApiError> {
    call.caller()?
        .require_admin("os_compute_api:os-flavor-manage:delete")?;
    let id = call.segment(1).to_owned();
    match call.store.delete_flavor_by_id(&id) {
        Ok(()) => Ok(ApiResponse::empty(StatusCode::ACCEPTED)),
        Err(compute_store::StoreError::NotFound { .. }) => Err(not_found(&id)),
        Err(e) => Err(e.into()),
    }
}

/// `GET /flavors/{id}/os-flavor-access` (admin): nobody is granted a private
/// flavor here.
pub fn access_list(call: &mut Call<'_>) -> Result<ApiResponse, ApiError> {
    call.caller()?
        .require_admin("os_compute_api:os-flavor-access")?;
    let f = visible(call, call.segment(1))?;
    if f.is_public {
        return Err(ApiError::NotFound(
            "Access list not available for public flavors.".into(),
        ));
    }
    Ok(ApiResponse::ok(json!({"flavor_access": []})))
}

/// `GET /flavors/{id}/os-extra_specs`.
pub fn extra_specs_list(call: &mut Call<'_>) -> Result<ApiResponse, ApiError> {
    let f = visible(call, call.segment(1))?;
    Ok(ApiResponse::ok(json!({"extra_specs": f.extra_specs})))
}

/// An extra spec key as Nova takes it.
fn check_key(key: &str) -> Result<(), ApiError> {
    let ok = !key.is_empty()
        && key.len() <= MAX_EXTRA_SPEC_LENGTH
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_:. /".contains(c));
    if ok {
        Ok(())
    } else {
        Err(ApiError::BadRequest(format!(
            "Invalid input for field/attribute extra_specs. Key '{}' must be 1 to 255 letters, digits, '-', '_', ':', '.', ' ' and '/'.",
            key.chars().take(64).collect::<String>()
        )))
    }
}

/// An extra spec value: text, a number or a boolean, kept as text.
fn spec_value(key: &str, v: &Value) -> Result<String, ApiError> {
    let text = match v {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => if *b { "True" } else { "False" }.to_owned(),
        _ => {
            return Err(ApiError::BadRequest(format!(
                "Invalid input for field/attribute {key}. Value must be a string, a number or a boolean."
            )))
        }
    };
    if text.chars().count() > MAX_EXTRA_SPEC_LENGTH {
        return Err(ApiError::BadRequest(format!(
            "Invalid input for field/attribute {key}. Value is longer than {MAX_EXTRA_SPEC_LENGTH} characters."
        )));
    }
    Ok(text)
}

/// Checks and records `specs` on flavor `id` within the bound.
fn store_specs(
    call: &mut Call<'_>,
    id: &str,
    specs: BTreeMap<String, String>,
) -> Result<(), ApiError> {
    let current = visible(call, id)?;
    let after = current
        .extra_specs
        .keys()
        .chain(specs.keys())
        .collect::<std::collections::BTreeSet<_>>()
        .len();
    if after > MAX_EXTRA_SPECS {
        return Err(ApiError::Forbidden(format!(
            "Quota exceeded: a flavor has at most {MAX_EXTRA_SPECS} extra specs."
        )));
    }
    call.store.set_flavor_extra_specs(id, &specs)?;
    Ok(())
}

/// `POST /flavors/{id}/os-extra_specs` (admin): sets the given keys, 200 with them.
pub fn extra_specs_set(call: &mut Call<'_>) -> Result<ApiResponse, ApiError> {
    call.caller()?
        .require_admin("os_compute_api:os-flavor-extra-specs:create")?;
    let id = call.segment(1).to_owned();
    let body = call.req.json_value()?;
    let given = body
        .get("extra_specs")
        .and_then(Value::as_object)
        .ok_or_else(|| {
            ApiError::BadRequest(
                "Invalid input for field/attribute extra_specs. 'extra_specs' is a required property".into(),
            )
        })?;
    let mut specs = BTreeMap::new();
    for (k, v) in given {
        check_key(k)?;
        specs.insert(k.clone(), spec_value(k, v)?);
    }
    store_specs(call, &id, specs.clone())?;
    Ok(ApiResponse::ok(json!({"extra_specs": specs})))
}

/// `GET /flavors/{id}/os-extra_specs/{key}`.
pub fn extra_spec_show(call: &mut Call<'_>) -> Result<ApiResponse, ApiError> {
    let (id, key) = (call.segment(1).to_owned(), call.segment(3).to_owned());
    let f = visible(call, &id)?;
    match f.extra_specs.get(&key) {
        Some(v) => Ok(ApiResponse::ok(json!({ key: v }))),
        None => Err(ApiError::NotFound(format!(
            "Flavor {id} has no extra specs with key {key}."
        ))),
    }
}

/// `PUT /flavors/{id}/os-extra_specs/{key}` (admin): `{key: value}`, the same key.
pub fn extra_spec_update(call: &mut Call<'_>) -> Result<ApiResponse, ApiError> {
    call.caller()?
        .require_admin("os_compute_api:os-flavor-extra-specs:update")?;
    let (id, key) = (call.segment(1).to_owned(), call.segment(3).to_owned());
    let body = call.req.json_value()?;
    let obj = body.as_object().ok_or_else(|| {
        ApiError::BadRequest("The request body must be an object {key: value}.".into())
    })?;
    if obj.len() > 1 {
        return Err(ApiError::BadRequest(
            "Request body contains too many items".into(),
        ));
    }
    let Some(value) = obj.get(&key) else {
        return Err(ApiError::BadRequest("Request body and URI mismatch".into()));
    };
    check_key(&key)?;
    let value = spec_value(&key, value)?;
    store_specs(call, &id, [(key.clone(), value.clone())].into())?;
    Ok(ApiResponse::ok(json!({ key: value })))
}

/// `DELETE /flavors/{id}/os-extra_specs/{key}` (admin): 202.
pub fn extra_spec_delete(call: &mut Call<'_>) -> Result<ApiResponse, ApiError> {
    call.caller()?
        .require_admin("os_compute_api:os-flavor-extra-specs:delete")?;
    let (id, key) = (call.segment(1).to_owned(), call.segment(3).to_owned());
    visible(call, &id)?;
    match call.store.delete_flavor_extra_spec(&id, &key) {
        Ok(()) => Ok(ApiResponse::empty(StatusCode::ACCEPTED)),
        Err(compute_store::StoreError::NotFound { .. }) => Err(ApiError::NotFound(format!(
            "Flavor {id} has no extra specs with key {key}."
        ))),
        Err(e) => Err(e.into()),
    }
}
