//! Glance's JSON-patch of an image (`PATCH /v2/images/{id}` with
//! `application/openstack-images-v2.1-json-patch`, `glance/api/v2/images.py`
//! `RequestDeserializer.update` and `ImagesController._do_add/_do_replace/
//! _do_remove`): parsing the operations, then applying them to a record. Pure: no
//! store, no caller beyond whether it is an admin.
//!
//! What it takes: `add`, `replace` and `remove` of `/name`, `/visibility` (`public`
//! for admins only), `/protected`, `/min_disk`, `/min_ram`, `/tags` (the whole
//! list, or `/tags/N` and `/tags/-` one at a time), `/disk_format` and
//! `/container_format` while the image is `queued`, and extra string properties
//! (`kernel_id`, `ramdisk_id` and `os_command_line` only while `queued`: the
//! image is made from them at upload). As Glance's 2.1 media type: `add` of an
//! existing property replaces it; `replace` or `remove` of a missing extra
//! property is 409; removing a core property or touching a read-only one is 403.

use crate::ApiError;
use compute_store::{ImageRecord, ImageStatus, Visibility};
use serde_json::Value;

/// The media type a PATCH must carry.
pub const MEDIA_TYPE: &str = "application/openstack-images-v2.1-json-patch";

/// At most this many tags and extra properties (Glance's `image_tag_quota`,
/// `image_property_quota`).
pub const MAX_TAGS: usize = 128;
pub const MAX_PROPERTIES: usize = 128;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Add,
    Replace,
    Remove,
}

/// One operation: its path as decoded JSON-pointer segments.
#[derive(Debug, Clone, PartialEq)]
pub struct Change {
    pub op: Op,
    pub path: Vec<String>,
    pub value: Option<Value>,
}

/// Core keys: never removed, never extra properties.
const CORE: &[&str] = &[
    "name",
    "visibility",
    "protected",
    "min_disk",
    "min_ram",
    "tags",
    "disk_format",
    "container_format",
    "os_hidden",
];

/// Properties the upload makes the image from.
const FIXED_AT_UPLOAD: &[&str] = &["kernel_id", "ramdisk_id", "os_command_line"];

fn bad(msg: impl Into<String>) -> ApiError {
    ApiError::BadRequest(msg.into())
}

fn short(s: &str) -> String {
    s.chars().take(64).collect()
}

/// `~1` is `/` and `~0` is `~` (RFC 6901).
fn decode_pointer(path: &str) -> Result<Vec<String>, ApiError> {
    let invalid = || {
        bad(format!(
            "Invalid JSON pointer for this resource: '{}'",
            short(path)
        ))
    };
    let rest = path.strip_prefix('/').ok_or_else(invalid)?;
    rest.split('/')
        .map(|seg| {
            if seg.is_empty() {
                return Err(invalid());
            }
            let mut out = String::new();
            let mut chars = seg.chars();
            while let Some(c) = chars.next() {
                match c {
                    '~' => match chars.next() {
                        Some('0') => out.push('~'),
                        Some('1') => out.push('/'),
                        _ => return Err(invalid()),
                    },
                    c => out.push(c),
                }
            }
            Ok(out)
        })
        .collect()
}

/// The operations of a PATCH body (a JSON list).
pub fn parse(body: &Value) -> Result<Vec<Change>, ApiError> {
    let list = body
        .as_array()
        .ok_or_else(|| bad("Request body must be a JSON array of operation objects."))?;
    list.iter()
        .map(|item| {
            let obj = item
                .as_object()
                .ok_or_else(|| bad("Operations must be JSON objects."))?;
            let op = match obj.get("op").and_then(Value::as_str) {
                Some("add") => Op::Add,
                Some("replace") => Op::Replace,
                Some("remove") => Op::Remove,
                Some(other) => {
                    return Err(bad(format!(
                        "Invalid operation: `{}`: It must be one of the following: add, remove, replace.",
                        short(other)
                    )))
                }
                None => return Err(bad("Unable to find `op` in JSON Schema change")),
            };
            let path = obj
                .get("path")
                .and_then(Value::as_str)
                .ok_or_else(|| bad("Unable to find `path` in JSON Schema change"))?;
            let path = decode_pointer(path)?;
            let depth_ok = match path[0].as_str() {
                "tags" => path.len() <= 2,
                _ => path.len() == 1,
            };
            if !depth_ok {
                return Err(bad(format!(
                    "Invalid JSON pointer for this resource: '/{}'",
                    short(&path.join("/"))
                )));
            }
            let value = match op {
                Op::Remove => None,
                _ => Some(obj.get("value").cloned().ok_or_else(|| {
                    bad("Operation \"add\" and \"replace\" require a member named \"value\".")
                })?),
            };
            Ok(Change { op, path, value })
        })
        .collect()
}

fn text(key: &str, v: &Value, max: usize) -> Result<String, ApiError> {
    match v {
        Value::String(s) if s.chars().count() <= max => Ok(s.clone()),
        _ => Err(bad(format!(
            "Invalid value for {}: a string of at most {max} characters.",
            short(key)
        ))),
    }
}

fn tag(v: &Value) -> Result<String, ApiError> {
    text("tags", v, 255)
}

fn count(key: &str, v: &Value) -> Result<u64, ApiError> {
    v.as_u64()
        .filter(|n| *n <= i32::MAX as u64)
        .ok_or_else(|| bad(format!("Invalid value for {key}: a whole number from 0.")))
}

/// Applies `changes` to `rec` in order; the first refusal stops them all (the
/// caller writes nothing then).
pub fn apply(rec: &mut ImageRecord, changes: &[Change], admin: bool) -> Result<(), ApiError> {
    for c in changes {
        apply_one(rec, c, admin)?;
    }
    if rec.tags.len() > MAX_TAGS {
        return Err(bad(format!("An image has at most {MAX_TAGS} tags.")));
    }
    if rec.properties.len() > MAX_PROPERTIES {
        return Err(bad(format!(
            "An image has at most {MAX_PROPERTIES} extra properties."
        )));
    }
    Ok(())
}

fn apply_one(rec: &mut ImageRecord, c: &Change, admin: bool) -> Result<(), ApiError> {
    let key = c.path[0].as_str();
    if key == "id" || super::images::READ_ONLY.contains(&key) || key.starts_with("os_glance") {
        return Err(ApiError::Forbidden(format!(
            "Attribute '{}' is read-only.",
            short(key)
        )));
    }
    if c.path.len() == 2 {
        return tags_item(rec, c);
    }
    let value = c.value.as_ref();
    if CORE.contains(&key) {
        let Some(v) = value else {
            return Err(ApiError::Forbidden(format!(
                "Property {key} may not be removed."
            )));
        };
        return core(rec, key, v, admin);
    }
    if FIXED_AT_UPLOAD.contains(&key) && rec.status != ImageStatus::Queued {
        return Err(ApiError::Forbidden(format!(
            "Property {key} is fixed once the image's data is uploaded: upload a new image."
        )));
    }
    if key.chars().count() > 255 {
        return Err(bad("A property name is at most 255 characters."));
    }
    let present = rec.properties.contains_key(key);
    match (c.op, value) {
        (Op::Replace | Op::Remove, _) if !present => Err(ApiError::Conflict(format!(
            "Property {} does not exist.",
            short(key)
        ))),
        (Op::Remove, _) => {
            rec.properties.remove(key);
            Ok(())
        }
        (_, Some(v)) => {
            let v = text(key, v, 65535)
                .map_err(|_| bad(format!("Property {} must be a string.", short(key))))?;
            rec.properties.insert(key.to_owned(), v);
            Ok(())
        }
        (_, None) => Err(bad("A value is needed.")),
    }
}

fn core(rec: &mut ImageRecord, key: &str, v: &Value, admin: bool) -> Result<(), ApiError> {
    match key {
        "name" => {
            rec.name = match v {
                Value::Null => None,
                v => Some(text(key, v, 255)?),
            }
        }
        "visibility" => {
            let vis = v.as_str().and_then(Visibility::parse).ok_or_else(|| {
                bad("Invalid visibility value: public, private, shared or community.")
            })?;
            if vis == Visibility::Public && !admin {
                return Err(ApiError::Forbidden(
                    "You are not authorized to complete publicize_image action.".into(),
                ));
            }
            rec.visibility = vis;
        }
        "protected" => {
            rec.protected = v
                .as_bool()
                .ok_or_else(|| bad("Invalid value for protected: true or false."))?
        }
        "min_disk" => rec.min_disk = count(key, v)?,
        "min_ram" => rec.min_ram = count(key, v)?,
        "tags" => {
            let list = v
                .as_array()
                .ok_or_else(|| bad("Invalid value for tags: a list of strings."))?;
            let mut tags = Vec::new();
            for t in list {
                let t = tag(t)?;
                if !tags.contains(&t) {
                    tags.push(t);
                }
            }
            rec.tags = tags;
        }
        "disk_format" | "container_format" => {
            if rec.status != ImageStatus::Queued {
                return Err(ApiError::Forbidden(format!(
                    "Attribute {key} can be only replaced for a queued image."
                )));
            }
            let s = text(key, v, 32)?;
            let allowed: &[&str] = if key == "disk_format" {
                &["raw", "qcow2", "ami", "ari", "aki", "iso"]
            } else {
                &["bare", "ami", "ari", "aki"]
            };
            if !allowed.contains(&s.as_str()) {
                return Err(bad(format!(
                    "Invalid value '{}' for {key}: this cloud takes {}.",
                    short(&s),
                    allowed.join(", ")
                )));
            }
            if key == "disk_format" {
                rec.disk_format = Some(s);
            } else {
                rec.container_format = Some(s);
            }
        }
        _ => return Err(bad(format!("{key} cannot be changed on this cloud."))),
    }
    Ok(())
}

/// `/tags/N` or `/tags/-`: one tag at a time.
fn tags_item(rec: &mut ImageRecord, c: &Change) -> Result<(), ApiError> {
    let at = c.path[1].as_str();
    let index = |len: usize, end_ok: bool| -> Result<usize, ApiError> {
        if at == "-" && end_ok {
            return Ok(len);
        }
        match at.parse::<usize>() {
            Ok(i) if i < len || (end_ok && i == len) => Ok(i),
            _ => Err(ApiError::Conflict(format!(
                "No tag at position {} of image {}.",
                short(at),
                rec.id
            ))),
        }
    };
    match c.op {
        Op::Add => {
            let t = tag(c.value.as_ref().unwrap_or(&Value::Null))?;
            let i = index(rec.tags.len(), true)?;
            if !rec.tags.contains(&t) {
                rec.tags.insert(i, t);
            }
        }
        Op::Replace => {
            let t = tag(c.value.as_ref().unwrap_or(&Value::Null))?;
            let i = index(rec.tags.len(), false)?;
            rec.tags[i] = t;
            let mut seen = Vec::new();
            rec.tags.retain(|t| {
                let new = !seen.contains(t);
                seen.push(t.clone());
                new
            });
        }
        Op::Remove => {
            let i = index(rec.tags.len(), false)?;
            rec.tags.remove(i);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn rec(status: ImageStatus) -> ImageRecord {
        ImageRecord {
            id: "i1".into(),
            name: Some("n".into()),
            disk_format: Some("raw".into()),
            container_format: Some("bare".into()),
            visibility: Visibility::Shared,
            owner: "p".into(),
            min_disk: 0,
            min_ram: 0,
            protected: false,
            tags: vec![],
            properties: Default::default(),
            status,
            size: None,
            checksum: None,
            os_hash_value: None,
            created_at: "t".into(),
            updated_at: "t".into(),
            lease: None,
        }
    }

    fn run(r: &mut ImageRecord, body: Value, admin: bool) -> Result<(), ApiError> {
        apply(r, &parse(&body)?, admin)
    }

    #[test]
    fn what_openstack_image_set_sends_lands() {
        let mut r = rec(ImageStatus::Active);
        run(
            &mut r,
            json!([
                {"op": "add", "path": "/name", "value": "N"},
                {"op": "add", "path": "/protected", "value": true},
                {"op": "add", "path": "/k", "value": "v"},
                {"op": "add", "path": "/tags", "value": ["a", "b", "a"]},
                {"op": "replace", "path": "/min_ram", "value": 512},
                {"op": "add", "path": "/visibility", "value": "private"},
                {"op": "add", "path": "/a~1b", "value": "slash"},
            ]),
            false,
        )
        .expect("applied");
        assert_eq!(r.name.as_deref(), Some("N"));
        assert!(r.protected);
        assert_eq!(r.tags, ["a", "b"]);
        assert_eq!(r.min_ram, 512);
        assert_eq!(r.visibility, Visibility::Private);
        assert_eq!(r.properties["k"], "v");
        assert_eq!(r.properties["a/b"], "slash");
        run(
            &mut r,
            json!([{"op": "add", "path": "/k", "value": "w"}]),
            false,
        )
        .expect("add replaces");
        assert_eq!(r.properties["k"], "w");
        run(&mut r, json!([{"op": "remove", "path": "/k"}]), false).expect("removed");
        assert!(!r.properties.contains_key("k"));
        run(
            &mut r,
            json!([{"op": "add", "path": "/tags/-", "value": "c"},
                   {"op": "add", "path": "/tags/0", "value": "z"},
                   {"op": "remove", "path": "/tags/1"}]),
            false,
        )
        .expect("tags one at a time");
        assert_eq!(r.tags, ["z", "b", "c"]);
    }

    #[test]
    fn refusals_are_glances() {
        let mut r = rec(ImageStatus::Active);
        let status = |r: &mut ImageRecord, body: Value, admin| {
            run(r, body, admin).expect_err("refused").status().as_u16()
        };
        assert_eq!(
            status(
                &mut r,
                json!([{"op": "add", "path": "/visibility", "value": "public"}]),
                false
            ),
            403
        );
        assert_eq!(
            status(
                &mut r,
                json!([{"op": "replace", "path": "/status", "value": "active"}]),
                true
            ),
            403
        );
        assert_eq!(
            status(&mut r, json!([{"op": "remove", "path": "/name"}]), true),
            403
        );
        assert_eq!(
            status(&mut r, json!([{"op": "remove", "path": "/nope"}]), true),
            409
        );
        assert_eq!(
            status(
                &mut r,
                json!([{"op": "replace", "path": "/nope", "value": "x"}]),
                true
            ),
            409
        );
        assert_eq!(
            status(
                &mut r,
                json!([{"op": "add", "path": "/kernel_id", "value": "x"}]),
                true
            ),
            403,
            "fixed once uploaded"
        );
        assert_eq!(
            status(
                &mut r,
                json!([{"op": "add", "path": "/disk_format", "value": "raw"}]),
                true
            ),
            403
        );
        assert_eq!(
            status(
                &mut r,
                json!([{"op": "move", "path": "/a", "from": "/b"}]),
                true
            ),
            400
        );
        assert_eq!(
            status(
                &mut r,
                json!([{"op": "add", "path": "/k", "value": 3}]),
                true
            ),
            400
        );
        assert_eq!(
            status(
                &mut r,
                json!([{"op": "add", "path": "/a/b", "value": "x"}]),
                true
            ),
            400
        );
        assert_eq!(
            status(
                &mut r,
                json!([{"op": "add", "path": "name", "value": "x"}]),
                true
            ),
            400
        );
        assert_eq!(status(&mut r, json!({"op": "add"}), true), 400);
        assert_eq!(
            status(
                &mut r,
                json!([{"op": "add", "path": "/min_disk", "value": -1}]),
                true
            ),
            400
        );
        let mut q = rec(ImageStatus::Queued);
        run(
            &mut q,
            json!([{"op": "replace", "path": "/disk_format", "value": "qcow2"},
                           {"op": "add", "path": "/kernel_id", "value": "k"}]),
            false,
        )
        .expect("queued");
        assert_eq!(
            q.disk_format.as_deref(),
            Some("qcow2"),
            "queued images take formats"
        );
    }
}
