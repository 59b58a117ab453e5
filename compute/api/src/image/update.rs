//! Changing an image's metadata: `PATCH /v2/images/{id}` (Glance's JSON-patch,
//! [`super::patch`]) and `PUT`/`DELETE /v2/images/{id}/tags/{tag}`. Each change is
//! one locked rewrite of the image's record in the store
//! ([`compute_store::Store::update_image_record`]); an image made here without a
//! record (`compute image-import`, a snapshot) gets one first. Only the owner (or
//! an admin) changes an image: another project that sees it gets 403.

use super::images::{view_found, visible, Found};
use super::{patch, records};
use crate::{ApiError, ApiResponse, Call};
use compute_store::{ImageRecord, ImageStatus, StoreError};
use http::StatusCode;

/// The image's record, made from the store's image when it has none; refused
/// (403) unless the caller owns the image or is an admin.
fn owned_record(call: &mut Call<'_>, id: &str) -> Result<(), ApiError> {
    let found = visible(call, id)?;
    let caller = call.caller()?;
    if found.owner() != caller.project_id && !caller.is_admin() {
        return Err(ApiError::Forbidden(format!(
            "You are not permitted to modify image {id}."
        )));
    }
    if found.record.is_some() {
        return Ok(());
    }
    let Some(i) = found.image else {
        return Err(ApiError::NotFound(format!("No image found with ID {id}")));
    };
    let rec = ImageRecord {
        id: i.id.clone(),
        name: Some(i.name.clone()),
        disk_format: Some(i.format.clone()),
        container_format: Some("bare".into()),
        visibility: i.visibility,
        owner: i.owner.clone(),
        min_disk: 0,
        min_ram: 0,
        protected: false,
        tags: Vec::new(),
        properties: Default::default(),
        status: ImageStatus::Active,
        size: Some(i.size),
        checksum: None,
        os_hash_value: None,
        created_at: i.created_at.clone(),
        updated_at: i.created_at.clone(),
        lease: None,
    };
    match call.store.add_image_record(&rec) {
        // Another request made it meanwhile.
        Ok(()) | Err(StoreError::Exists { .. }) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// Applies `change` to image `id`'s record under its lock; the image as it is
/// then.
fn change(
    call: &mut Call<'_>,
    id: &str,
    change: &mut dyn FnMut(&mut ImageRecord) -> Result<(), ApiError>,
) -> Result<Found, ApiError> {
    owned_record(call, id)?;
    call.store.update_image_record(id, &mut |r| {
        change(r).map_err(records::refuse)?;
        r.updated_at = compute_host::driver::now();
        Ok(())
    })?;
    visible(call, id)
}

/// `PATCH /v2/images/{id}`: 200 with the image.
pub fn patch(call: &mut Call<'_>) -> Result<ApiResponse, ApiError> {
    let ct = call
        .req
        .headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if ct.split(';').next().map(str::trim) != Some(patch::MEDIA_TYPE) {
        return Err(ApiError::MediaType(format!(
            "{} (a PATCH takes {})",
            ct.chars().take(64).collect::<String>(),
            patch::MEDIA_TYPE
        )));
    }
    let changes = patch::parse(&call.req.json_value()?)?;
    let admin = call.caller()?.is_admin();
    let id = call.segment(1).to_owned();
    let found = change(call, &id, &mut |r| patch::apply(r, &changes, admin))?;
    Ok(ApiResponse::ok(view_found(&found)))
}

fn tag_of(call: &Call<'_>) -> Result<String, ApiError> {
    let t = call.segment(3);
    if t.is_empty() || t.chars().count() > 255 {
        return Err(ApiError::BadRequest("A tag is 1 to 255 characters.".into()));
    }
    Ok(t.to_owned())
}

/// `PUT /v2/images/{id}/tags/{tag}`: 204 (a tag it has already changes nothing).
pub fn add_tag(call: &mut Call<'_>) -> Result<ApiResponse, ApiError> {
    let (id, t) = (call.segment(1).to_owned(), tag_of(call)?);
    change(call, &id, &mut |r| {
        if !r.tags.contains(&t) {
            if r.tags.len() >= patch::MAX_TAGS {
                return Err(ApiError::BadRequest(format!(
                    "An image has at most {} tags.",
                    patch::MAX_TAGS
                )));
            }
            r.tags.push(t.clone());
        }
        Ok(())
    })?;
    Ok(ApiResponse::empty(StatusCode::NO_CONTENT))
}

/// `DELETE /v2/images/{id}/tags/{tag}`: 204, or 404 when it has no such tag.
pub fn delete_tag(call: &mut Call<'_>) -> Result<ApiResponse, ApiError> {
    let (id, t) = (call.segment(1).to_owned(), tag_of(call)?);
    change(call, &id, &mut |r| {
        let before = r.tags.len();
        r.tags.retain(|x| *x != t);
        if r.tags.len() == before {
            return Err(ApiError::NotFound(format!(
                "Tag {} not found on image {}.",
                t.chars().take(64).collect::<String>(),
                r.id
            )));
        }
        Ok(())
    })?;
    Ok(ApiResponse::empty(StatusCode::NO_CONTENT))
}
