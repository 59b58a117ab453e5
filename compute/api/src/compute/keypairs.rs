//! Keypairs (`/os-keypairs`, Nova's `keypairs.py`): per user, as in Nova. Import
//! with `public_key`; below 2.92 the server generates one when none is given (the
//! private key is in the answer only). Fingerprints are Nova's (MD5 of the key
//! blob). An admin may act for another user with `user_id` (2.10). A user has at
//! most [`compute::quota::MAX_KEYPAIRS`] keypairs.

use super::Page;
use crate::microversion::deltas;
use crate::shape::Shape;
use crate::{ApiError, ApiResponse, Call};
use compute::keypair::{Keypair, KeypairError};
use compute_store::{KeypairRecord, StoreError};
use http::StatusCode;
use serde::Deserialize;
use serde_json::{json, Value};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateBody {
    keypair: NewKeypair,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct NewKeypair {
    name: String,
    #[serde(default)]
    public_key: Option<String>,
    #[serde(default, rename = "type")]
    kind: Option<String>,
    #[serde(default)]
    user_id: Option<String>,
}

/// The user whose keypairs a request is about: the caller, or (2.10, admin) the
/// `user_id` it names.
fn target_user(call: &Call<'_>, asked: Option<&str>) -> Result<String, ApiError> {
    let caller = call.caller()?;
    match asked {
        Some(u) if u != caller.user_id && call.version().at_least(deltas::KEYPAIR_USER_ID) => {
            caller.require_admin("os_compute_api:os-keypairs:index")?;
            Ok(u.to_owned())
        }
        _ => Ok(caller.user_id.clone()),
    }
}

fn not_found(name: &str, user: &str) -> ApiError {
    ApiError::NotFound(format!("Keypair {name} not found for user {user}"))
}

/// The keypair in the create/show shape.
fn view(call: &Call<'_>, k: &KeypairRecord) -> Shape {
    Shape::new(call.version())
        .field("name", k.keypair.name.as_str())
        .field("public_key", k.keypair.public_key.as_str())
        .field("fingerprint", k.keypair.fingerprint.as_str())
        .field("user_id", k.user_id.as_str())
        .since(deltas::KEYPAIR_TYPE, "type", "ssh")
}

/// `POST /os-keypairs`: 200 (2.1) or 201 (2.2).
pub fn create(call: &mut Call<'_>) -> Result<ApiResponse, ApiError> {
    let body: CreateBody = call.req.json()?;
    let new = body.keypair;
    let user = target_user(call, new.user_id.as_deref())?;
    if let Some(kind) = &new.kind {
        if !call.version().at_least(deltas::KEYPAIR_TYPE) {
            return Err(ApiError::BadRequest(
                "Invalid input for field/attribute keypair. Additional properties are not allowed ('type' was unexpected)".into(),
            ));
        }
        match kind.as_str() {
            "ssh" => {}
            "x509" => return Err(ApiError::BadRequest(
                "x509 keypairs are not supported here: import an OpenSSH public key (type ssh)."
                    .into(),
            )),
            other => {
                return Err(ApiError::BadRequest(format!(
                "Invalid input for field/attribute type. Value: {}. It must be one of ssh, x509.",
                other.chars().take(32).collect::<String>()
            )))
            }
        }
    }
    let count = call.store.keypairs(&user)?.len();
    if count >= compute::quota::MAX_KEYPAIRS {
        return Err(ApiError::Forbidden(
            "Quota exceeded, too many key pairs.".into(),
        ));
    }
    let (public, private) = match new.public_key {
        Some(p) => (p, None),
        None if call.version().at_least(deltas::KEYPAIR_NO_GENERATION) => {
            return Err(ApiError::BadRequest(
                "Invalid input for field/attribute keypair. 'public_key' is a required property"
                    .into(),
            ))
        }
        None => {
            let generated = compute_host::keygen::generate(&new.name)
                .map_err(|e| ApiError::Internal(Box::new(e)))?;
            (generated.public, Some(generated.private))
        }
    };
    let keypair = Keypair::new(&new.name, &public).map_err(|e| match e {
        KeypairError::Name(_) => ApiError::BadRequest(format!("Keypair data is invalid: {e}")),
        KeypairError::Key { .. } => ApiError::BadRequest(format!("Keypair data is invalid: {e}")),
    })?;
    let rec = match call
        .store
        .add_keypair(&user, &keypair, &compute_host::driver::now())
    {
        Ok(r) => r,
        Err(StoreError::Exists { .. }) => {
            return Err(ApiError::Conflict(format!(
                "Key pair '{}' already exists.",
                keypair.name
            )))
        }
        Err(e) => return Err(e.into()),
    };
    let mut shape = view(call, &rec);
    if let Some(p) = private {
        shape = shape.field("private_key", p);
    }
    let status = if call.version().at_least(deltas::KEYPAIR_TYPE) {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok(ApiResponse::with(status, json!({"keypair": shape.build()})))
}

/// `GET /os-keypairs`.
pub fn list(call: &mut Call<'_>) -> Result<ApiResponse, ApiError> {
    let user = target_user(call, call.req.query("user_id"))?;
    let all = call.store.keypairs(&user)?;
    let paging = call.version().at_least(deltas::KEYPAIR_PAGING);
    let page = if paging {
        Some(Page::of(call.req)?)
    } else {
        None
    };
    let items = match &page {
        Some(p) => p.apply(all, |k| k.keypair.name.as_str())?,
        None => all,
    };
    let shown: Vec<Value> = items
        .iter()
        .map(|k| {
            json!({"keypair": Shape::new(call.version())
                .field("name", k.keypair.name.as_str())
                .field("public_key", k.keypair.public_key.as_str())
                .field("fingerprint", k.keypair.fingerprint.as_str())
                .since(deltas::KEYPAIR_TYPE, "type", "ssh")
                .build()})
        })
        .collect();
    let mut body = json!({ "keypairs": shown });
    if let (Some(p), Some(last)) = (&page, items.last()) {
        if p.full(items.len()) {
            body["keypairs_links"] = json!([{"rel": "next", "href": format!(
                "{}/os-keypairs?limit={}&marker={}", call.req.urls.compute, p.limit, last.keypair.name
            )}]);
        }
    }
    Ok(ApiResponse::ok(body))
}

/// `GET /os-keypairs/{name}`.
pub fn show(call: &mut Call<'_>) -> Result<ApiResponse, ApiError> {
    let user = target_user(call, call.req.query("user_id"))?;
    let name = call.segment(1).to_owned();
    let k = match call.store.keypair(&user, &name) {
        Ok(k) => k,
        Err(StoreError::NotFound { .. }) => return Err(not_found(&name, &user)),
        Err(e) => return Err(e.into()),
    };
    let body = view(call, &k)
        .field("id", k.id)
        .field(
            "created_at",
            k.created_at.trim_end_matches('Z').to_owned() + ".000000",
        )
        .field("updated_at", Value::Null)
        .field("deleted", false)
        .field("deleted_at", Value::Null)
        .build();
    Ok(ApiResponse::ok(json!({ "keypair": body })))
}

/// `DELETE /os-keypairs/{name}`: 202 (2.1) or 204 (2.2).
pub fn delete(call: &mut Call<'_>) -> Result<ApiResponse, ApiError> {
    let user = target_user(call, call.req.query("user_id"))?;
    let name = call.segment(1).to_owned();
    match call.store.delete_keypair(&user, &name) {
        Ok(()) => Ok(ApiResponse::empty(
            if call.version().at_least(deltas::KEYPAIR_TYPE) {
                StatusCode::NO_CONTENT
            } else {
                StatusCode::ACCEPTED
            },
        )),
        Err(StoreError::NotFound { .. }) => Err(not_found(&name, &user)),
        Err(e) => Err(e.into()),
    }
}
