//! Images (Glance v2 `/v2/images`, `glance/api/v2/images.py`): the same images
//! as `compute image-import` and snapshots make. A project sees its own images and
//! the public and community ones (an admin sees all); another project's private
//! image is a 404. List filters: `name`, `id=in:a,b`, `status`, `visibility`,
//! `limit`, `marker`. Delete is refused (409) while an instance uses the image.
//! `POST /v2/images` makes a `queued` image ([`super::records`]); its bytes come
//! with `PUT /v2/images/{id}/file` ([`super::upload`]).

use super::records;
use crate::{ApiError, ApiResponse, Call};
use compute_host::driver::images;
use compute_host::driver::layout::Layout;
use compute_store::{Image, ImageRecord, ImageStatus as Status, StoreError, Visibility};
use http::StatusCode;
use serde_json::{json, Value};

/// Glance's `limit` ceiling (`api_limit_max`).
pub const MAX_LIMIT: usize = 1000;

fn not_found(id: &str) -> ApiError {
    ApiError::NotFound(format!("No image found with ID {id}"))
}

/// Whether the caller may see `image`.
pub fn can_see(call: &Call<'_>, image: &Image) -> Result<bool, ApiError> {
    let caller = call.caller()?;
    Ok(caller.is_admin()
        || image.owner == caller.project_id
        || matches!(image.visibility, Visibility::Public | Visibility::Community))
}

/// Whether the caller may see a record not (yet) in the store.
fn can_see_record(call: &Call<'_>, rec: &ImageRecord) -> Result<bool, ApiError> {
    let caller = call.caller()?;
    Ok(caller.is_admin()
        || rec.owner == caller.project_id
        || matches!(rec.visibility, Visibility::Public | Visibility::Community))
}

/// An image as this API knows it: in the store (active), with the Image API's
/// record of it if it was uploaded, or only that record (queued, saving, killed).
pub struct Found {
    pub image: Option<Image>,
    pub record: Option<ImageRecord>,
}

impl Found {
    pub fn owner(&self) -> &str {
        match (&self.image, &self.record) {
            (Some(i), _) => &i.owner,
            (None, Some(r)) => &r.owner,
            (None, None) => "",
        }
    }
}

/// The image `id` if the caller may see it.
pub fn visible(call: &Call<'_>, id: &str) -> Result<Found, ApiError> {
    let record = records::find(call.store, id)?;
    match call.store.image(id) {
        Ok(i) if i.id == id && can_see(call, &i)? => Ok(Found {
            image: Some(i),
            record,
        }),
        Ok(_) | Err(StoreError::NotFound { .. }) => match record {
            Some(r) if r.status != Status::Active && can_see_record(call, &r)? => Ok(Found {
                image: None,
                record: Some(r),
            }),
            _ => Err(not_found(id)),
        },
        Err(e) => Err(e.into()),
    }
}

/// Glance's timestamps: seconds, `Z`.
fn stamp(t: &str) -> String {
    t.split('.')
        .next()
        .unwrap_or(t)
        .trim_end_matches('Z')
        .to_owned()
        + "Z"
}

/// An image as Glance shows it, from what is known of it.
pub fn view_found(found: &Found) -> Value {
    match (&found.image, &found.record) {
        (Some(i), None) => view(i),
        (Some(i), Some(r)) => {
            let mut v = view(i);
            // An upload's hashes; an image made here keeps its SHA-256.
            if r.os_hash_value.is_some() {
                v["checksum"] = json!(r.checksum);
                v["os_hash_algo"] = json!("sha512");
                v["os_hash_value"] = json!(r.os_hash_value);
            }
            v["container_format"] = json!(r.container_format.as_deref().unwrap_or("bare"));
            v["min_disk"] = json!(r.min_disk);
            v["min_ram"] = json!(r.min_ram);
            v["protected"] = json!(r.protected);
            v["tags"] = json!(r.tags);
            v["updated_at"] = json!(stamp(&r.updated_at));
            // The request's properties as given (kernel_id names the kernel image).
            for (k, val) in &r.properties {
                v[k] = json!(val);
            }
            v
        }
        (None, Some(r)) => record_view(r),
        (None, None) => Value::Null,
    }
}

/// An image the store does not have (yet, or any more).
fn record_view(r: &ImageRecord) -> Value {
    let mut v = json!({
        "id": r.id,
        "name": r.name,
        "status": r.status.as_str(),
        "disk_format": r.disk_format,
        "container_format": r.container_format,
        "size": r.size,
        "virtual_size": Value::Null,
        "checksum": r.checksum,
        "os_hash_algo": r.os_hash_value.as_ref().map(|_| "sha512"),
        "os_hash_value": r.os_hash_value,
        "visibility": r.visibility.as_str(),
        "protected": r.protected,
        "os_hidden": false,
        "owner": r.owner,
        "min_disk": r.min_disk,
        "min_ram": r.min_ram,
        "tags": r.tags,
        "created_at": stamp(&r.created_at),
        "updated_at": stamp(&r.updated_at),
        "self": format!("/v2/images/{}", r.id),
        "file": format!("/v2/images/{}/file", r.id),
        "schema": "/v2/schemas/image",
    });
    for (k, val) in &r.properties {
        if v.get(k).is_none() {
            v[k] = json!(val);
        }
    }
    v
}

/// An image made here (`compute image-import`, a snapshot): active once recorded;
/// its recorded hash is SHA-256 (`os_hash_algo` says so), and no MD5 was taken.
pub fn view(image: &Image) -> Value {
    let (algo, value) = if image.checksum.is_empty() {
        (Value::Null, Value::Null)
    } else {
        (json!("sha256"), json!(image.checksum))
    };
    let mut v = json!({
        "id": image.id,
        "name": image.name,
        "status": "active",
        "disk_format": image.format,
        "container_format": "bare",
        "size": image.size,
        "virtual_size": image.virtual_size,
        "checksum": Value::Null,
        "os_hash_algo": algo,
        "os_hash_value": value,
        "visibility": image.visibility.as_str(),
        "protected": false,
        "os_hidden": false,
        "owner": image.owner,
        "min_disk": 0,
        "min_ram": 0,
        "tags": [],
        "created_at": stamp(&image.created_at),
        "updated_at": stamp(&image.created_at),
        "self": format!("/v2/images/{}", image.id),
        "file": format!("/v2/images/{}/file", image.id),
        "schema": "/v2/schemas/image",
    });
    if image.has_kernel {
        v["kernel_id"] = json!(image.id);
    }
    if image.has_ramdisk {
        v["ramdisk_id"] = json!(image.id);
    }
    if let Some(c) = &image.cmdline {
        v["os_command_line"] = json!(c);
    }
    v
}

/// `GET /v2/images`.
pub fn list(call: &mut Call<'_>) -> Result<ApiResponse, ApiError> {
    let q = |k: &str| call.req.query(k).map(str::to_owned);
    let limit = match q("limit") {
        None => MAX_LIMIT,
        Some(l) => match l.parse::<usize>() {
            Ok(n) => n.min(MAX_LIMIT),
            Err(_) => {
                return Err(ApiError::BadRequest(
                    "limit param must be an integer".into(),
                ))
            }
        },
    };
    let ids: Option<Vec<String>> = match q("id") {
        None => None,
        Some(v) => match v.strip_prefix("in:") {
            Some(list) => Some(
                list.split(',')
                    .map(|s| s.trim().trim_matches('"').to_owned())
                    .collect(),
            ),
            None => Some(vec![v]),
        },
    };
    let name = q("name");
    let status = q("status");
    let visibility = q("visibility");
    let mut recs: std::collections::HashMap<String, ImageRecord> = call
        .store
        .image_records()?
        .into_iter()
        .map(|r| (r.id.clone(), r))
        .collect();
    let mut found = Vec::new();
    for i in call.store.images()? {
        if !can_see(call, &i)? {
            continue;
        }
        let record = recs.remove(&i.id);
        found.push((
            i.visibility,
            i.name.clone(),
            "active",
            i.created_at.clone(),
            Found {
                image: Some(i),
                record,
            },
        ));
    }
    for r in recs.into_values() {
        if r.status == Status::Active || !can_see_record(call, &r)? {
            continue;
        }
        found.push((
            r.visibility,
            r.name.clone().unwrap_or_default(),
            r.status.as_str(),
            r.created_at.clone(),
            Found {
                image: None,
                record: Some(r),
            },
        ));
    }
    found.sort_by(|a, b| a.3.cmp(&b.3));
    let mut items = Vec::new();
    for (vis, iname, istatus, _, f) in found {
        // Community images are listed only when asked for, as Glance.
        let wanted_visibility = match visibility.as_deref() {
            None | Some("all") => vis != Visibility::Community,
            Some(v) => vis.as_str() == v,
        };
        let id = f
            .image
            .as_ref()
            .map(|i| i.id.clone())
            .or_else(|| f.record.as_ref().map(|r| r.id.clone()))
            .unwrap_or_default();
        let keep = wanted_visibility
            && name.as_deref().is_none_or(|n| iname == n)
            && status.as_deref().is_none_or(|s| s == istatus)
            && ids.as_ref().is_none_or(|ids| ids.contains(&id));
        if keep {
            items.push((id, f));
        }
    }
    // Newest first, as Glance's default sort (created_at desc).
    items.reverse();
    let start = match q("marker") {
        None => 0,
        Some(m) => match items.iter().position(|(id, _)| *id == m) {
            Some(p) => p + 1,
            None => return Err(ApiError::BadRequest(format!("marker [{m}] not found"))),
        },
    };
    let page: Vec<&(String, Found)> = items.iter().skip(start).take(limit).collect();
    let mut body = json!({
        "images": page.iter().map(|(_, f)| view_found(f)).collect::<Vec<_>>(),
        "first": "/v2/images",
        "schema": "/v2/schemas/images",
    });
    if page.len() == limit && start + limit < items.len() {
        if let Some((last, _)) = page.last() {
            body["next"] = json!(format!("/v2/images?marker={last}&limit={limit}"));
        }
    }
    Ok(ApiResponse::ok(body))
}

/// `GET /v2/images/{id}`.
pub fn show(call: &mut Call<'_>) -> Result<ApiResponse, ApiError> {
    let found = visible(call, call.segment(1))?;
    Ok(ApiResponse::ok(view_found(&found)))
}

/// `DELETE /v2/images/{id}`: 204; the owner's (or an admin's) to delete, 409
/// while an instance uses it.
pub fn delete(call: &mut Call<'_>) -> Result<ApiResponse, ApiError> {
    let found = visible(call, call.segment(1))?;
    let caller = call.caller()?;
    let id = call.segment(1).to_owned();
    if found.owner() != caller.project_id && !caller.is_admin() {
        return Err(ApiError::Forbidden(format!(
            "You are not permitted to delete image {id}."
        )));
    }
    if found.record.as_ref().is_some_and(|r| r.protected) {
        return Err(ApiError::Forbidden(format!(
            "Image {id} is protected and cannot be deleted."
        )));
    }
    if found
        .record
        .as_ref()
        .is_some_and(|r| r.status == Status::Saving)
    {
        return Err(ApiError::Conflict(format!(
            "Image {id} is being uploaded: delete it once the upload ends."
        )));
    }
    if found.image.is_some() {
        let layout = Layout::new(&call.api.state_dir);
        match images::delete(&layout, call.store, &id) {
            Ok(_) => {}
            Err(compute_host::driver::DriverError::Store(StoreError::ImageInUse { .. })) => {
                return Err(ApiError::Conflict(format!(
                    "Image {id} could not be deleted because it is in use: an instance uses it."
                )))
            }
            Err(compute_host::driver::DriverError::Store(e)) => return Err(e.into()),
            Err(e) => return Err(ApiError::Internal(Box::new(e))),
        }
    }
    call.store.delete_image_record(&id)?;
    Ok(ApiResponse::empty(StatusCode::NO_CONTENT))
}

/// Keys of `POST /v2/images` that are not extra properties.
const CORE_KEYS: &[&str] = &[
    "id",
    "name",
    "disk_format",
    "container_format",
    "visibility",
    "min_disk",
    "min_ram",
    "protected",
    "tags",
    "os_hidden",
];

/// Keys Glance sets or reserves itself: refused in a create (403 in Glance, 400
/// here) and in a PATCH (which also refuses `id`, free to choose at create).
pub(crate) const READ_ONLY: &[&str] = &[
    "status",
    "size",
    "virtual_size",
    "checksum",
    "os_hash_algo",
    "os_hash_value",
    "owner",
    "created_at",
    "updated_at",
    "self",
    "file",
    "schema",
    "direct_url",
    "locations",
    "location",
    "deleted",
    "deleted_at",
];

/// `POST /v2/images`: 201 with the `queued` image and its `Location`.
pub fn create(call: &mut Call<'_>) -> Result<ApiResponse, ApiError> {
    let body = call.req.json_value()?;
    let obj = body
        .as_object()
        .ok_or_else(|| ApiError::BadRequest("The image is a JSON object.".into()))?;
    let caller = call.caller()?.clone();
    let text = |k: &str| -> Result<Option<String>, ApiError> {
        match obj.get(k) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) if s.len() <= 255 => Ok(Some(s.clone())),
            Some(_) => Err(ApiError::BadRequest(format!(
                "Invalid value for {k}: a string of at most 255 characters."
            ))),
        }
    };
    for k in obj.keys() {
        if READ_ONLY.contains(&k.as_str()) {
            return Err(ApiError::BadRequest(format!(
                "Attribute '{}' is read-only.",
                k.chars().take(64).collect::<String>()
            )));
        }
    }
    let disk_format = text("disk_format")?;
    if let Some(f) = &disk_format {
        if !["raw", "qcow2", "ami", "ari", "aki", "iso"].contains(&f.as_str()) {
            return Err(ApiError::BadRequest(format!(
                "Invalid value '{f}' for disk_format: this cloud takes raw, qcow2, ami, ari, aki, iso."
            )));
        }
    }
    let container_format = text("container_format")?;
    if let Some(f) = &container_format {
        if !["bare", "ami", "ari", "aki"].contains(&f.as_str()) {
            return Err(ApiError::BadRequest(format!(
                "Invalid value '{f}' for container_format: this cloud takes bare, ami, ari, aki."
            )));
        }
    }
    let visibility = match text("visibility")?.as_deref() {
        None | Some("shared") => Visibility::Shared,
        Some("private") => Visibility::Private,
        Some("public") => {
            caller.require_admin("publicize_image")?;
            Visibility::Public
        }
        Some("community") => Visibility::Community,
        Some(v) => {
            return Err(ApiError::BadRequest(format!(
                "Invalid visibility value: {}",
                v.chars().take(32).collect::<String>()
            )))
        }
    };
    let number = |k: &str| -> Result<u64, ApiError> {
        match obj.get(k) {
            None | Some(Value::Null) => Ok(0),
            Some(v) => v.as_u64().ok_or_else(|| {
                ApiError::BadRequest(format!("Invalid value for {k}: a whole number."))
            }),
        }
    };
    let protected = match obj.get("protected") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(_) => return Err(ApiError::BadRequest("protected is a boolean.".into())),
    };
    let tags = match obj.get("tags") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(a)) => a
            .iter()
            .map(|t| t.as_str().map(str::to_owned))
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| ApiError::BadRequest("tags are strings.".into()))?,
        Some(_) => return Err(ApiError::BadRequest("tags is a list.".into())),
    };
    let mut properties = std::collections::BTreeMap::new();
    for (k, v) in obj {
        if CORE_KEYS.contains(&k.as_str()) {
            continue;
        }
        match v {
            Value::String(s) if k.len() <= 255 && s.len() <= 65535 => {
                properties.insert(k.clone(), s.clone());
            }
            _ => {
                return Err(ApiError::BadRequest(format!(
                    "Property {} must be a string.",
                    k.chars().take(64).collect::<String>()
                )))
            }
        }
    }
    if properties.len() > 128 {
        return Err(ApiError::BadRequest("At most 128 properties.".into()));
    }
    let id = match text("id")? {
        Some(i) => {
            let parsed = uuid::Uuid::parse_str(&i)
                .map_err(|_| ApiError::BadRequest("id must be a UUID.".into()))?;
            let i = parsed.hyphenated().to_string();
            if call.store.image(&i).is_ok() || records::find(call.store, &i)?.is_some() {
                return Err(ApiError::Conflict(format!(
                    "Image with identifier {i} already exists!"
                )));
            }
            i
        }
        None => uuid::Uuid::new_v4().hyphenated().to_string(),
    };
    let now = compute_host::driver::now();
    let rec = ImageRecord {
        id: id.clone(),
        name: text("name")?,
        disk_format,
        container_format,
        visibility,
        owner: caller.project_id.clone(),
        min_disk: number("min_disk")?,
        min_ram: number("min_ram")?,
        protected,
        tags,
        properties,
        status: Status::Queued,
        size: None,
        checksum: None,
        os_hash_value: None,
        created_at: now.clone(),
        updated_at: now,
        lease: None,
    };
    call.store.add_image_record(&rec)?;
    Ok(
        ApiResponse::with(StatusCode::CREATED, record_view(&rec)).header(
            "location",
            format!("{}/v2/images/{id}", call.req.urls.image),
        ),
    )
}
