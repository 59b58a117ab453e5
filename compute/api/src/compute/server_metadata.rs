//! Server metadata (`/servers/{id}/metadata`, Nova's `server_metadata.py`) and the
//! password the guest posted (`/servers/{id}/os-server-password`,
//! `server_password.py`). Metadata lives in the instance's document: a change is
//! one locked update of it through the same functions as `compute meta-set`, so
//! the metadata service shows it at once (config drives keep what they had, as in
//! Nova). The password is the one the guest posted to the metadata service: in the
//! store with a shared database, in the managed server's folder on a state folder.

use super::servers::{driver_error, metadata, visible};
use crate::{ApiError, ApiResponse, Call};
use compute::instance::InstanceDocument;
use compute_host::driver::control::{self, MetaChange};
use compute_host::driver::metaserver::posted;
use compute_store::InstanceRecord;
use http::StatusCode;
use serde_json::{json, Map, Value};

fn items(rec: &InstanceRecord) -> Map<String, Value> {
    InstanceDocument::from_json(rec.document.as_bytes())
        .map(|d| {
            d.meta
                .into_iter()
                .map(|(k, v)| (k, Value::from(v)))
                .collect()
        })
        .unwrap_or_default()
}

fn body_items(call: &Call<'_>, key: &str) -> Result<Vec<(String, String)>, ApiError> {
    let body = call.req.json_value()?;
    let v = body.get(key).ok_or_else(|| {
        ApiError::BadRequest(format!(
            "Invalid input for field/attribute {key}. '{key}' is a required property"
        ))
    })?;
    metadata(v, key)
}

/// `GET /servers/{id}/metadata`.
pub fn list(call: &mut Call<'_>) -> Result<ApiResponse, ApiError> {
    let rec = visible(call, call.segment(1))?;
    Ok(ApiResponse::ok(json!({ "metadata": items(&rec) })))
}

fn set(call: &mut Call<'_>, change: MetaChange) -> Result<ApiResponse, ApiError> {
    let rec = visible(call, call.segment(1))?;
    let new = body_items(call, "metadata")?;
    let rec = control::set_metadata(call.store, &rec.uuid, &new, change)
        .map_err(|e| driver_error(e, "update metadata", &rec.uuid))?;
    Ok(ApiResponse::ok(json!({ "metadata": items(&rec) })))
}

/// `POST /servers/{id}/metadata`: merged with what is there.
pub fn update(call: &mut Call<'_>) -> Result<ApiResponse, ApiError> {
    set(call, MetaChange::Merge)
}

/// `PUT /servers/{id}/metadata`: replaces all of it.
pub fn replace(call: &mut Call<'_>) -> Result<ApiResponse, ApiError> {
    set(call, MetaChange::Replace)
}

fn no_key(key: &str) -> ApiError {
    ApiError::NotFound(format!("Metadata item was not found: {key}"))
}

/// `GET /servers/{id}/metadata/{key}`.
pub fn show(call: &mut Call<'_>) -> Result<ApiResponse, ApiError> {
    let rec = visible(call, call.segment(1))?;
    let key = call.segment(3);
    let all = items(&rec);
    let v = all.get(key).ok_or_else(|| no_key(key))?;
    Ok(ApiResponse::ok(json!({ "meta": { key: v } })))
}

/// `PUT /servers/{id}/metadata/{key}`: `{"meta": {key: value}}`, one item whose key
/// is the path's.
pub fn put_one(call: &mut Call<'_>) -> Result<ApiResponse, ApiError> {
    let rec = visible(call, call.segment(1))?;
    let key = call.segment(3).to_owned();
    let new = body_items(call, "meta")?;
    match new.as_slice() {
        [(k, _)] if *k == key => {}
        [_] => return Err(ApiError::BadRequest("Request body and URI mismatch".into())),
        _ => {
            return Err(ApiError::BadRequest(
                "Request body contains too many items".into(),
            ))
        }
    }
    let rec = control::set_metadata(call.store, &rec.uuid, &new, MetaChange::Merge)
        .map_err(|e| driver_error(e, "update metadata", &rec.uuid))?;
    let all = items(&rec);
    Ok(ApiResponse::ok(
        json!({ "meta": { &key: all.get(&key).cloned().unwrap_or(Value::Null) } }),
    ))
}

/// `DELETE /servers/{id}/metadata/{key}`: 204.
pub fn delete(call: &mut Call<'_>) -> Result<ApiResponse, ApiError> {
    let rec = visible(call, call.segment(1))?;
    let key = call.segment(3).to_owned();
    if !items(&rec).contains_key(&key) {
        return Err(no_key(&key));
    }
    control::delete_metadata(call.store, &rec.uuid, std::slice::from_ref(&key))
        .map_err(|e| driver_error(e, "delete metadata", &rec.uuid))?;
    Ok(ApiResponse::empty(StatusCode::NO_CONTENT))
}

/// `GET /servers/{id}/os-server-password`: what the guest posted (base64 of the
/// password encrypted with its key), or `""`.
pub fn password(call: &mut Call<'_>) -> Result<ApiResponse, ApiError> {
    let rec = visible(call, call.segment(1))?;
    let posted = match &call.api.posted_passwords {
        Some(layout) => {
            posted::get(layout, &rec.uuid).map_err(|e| ApiError::Internal(Box::new(e)))?
        }
        None => call.store.password(&rec.uuid)?,
    };
    Ok(ApiResponse::ok(
        json!({ "password": posted.unwrap_or_default() }),
    ))
}

/// `DELETE /servers/{id}/os-server-password`: 204; the guest may post again.
pub fn clear_password(call: &mut Call<'_>) -> Result<ApiResponse, ApiError> {
    let rec = visible(call, call.segment(1))?;
    match &call.api.posted_passwords {
        Some(layout) => {
            posted::clear(layout, &rec.uuid).map_err(|e| ApiError::Internal(Box::new(e)))?;
        }
        None => {
            call.store.clear_password(&rec.uuid)?;
        }
    }
    Ok(ApiResponse::empty(StatusCode::NO_CONTENT))
}
