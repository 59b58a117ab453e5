//! `PUT /v2/images/{id}/file`: an image's bytes, streamed to a file in the state
//! folder (never held in memory) under the size cap `Limits::max_image_bytes`,
//! hashed on the way (MD5 `checksum`, SHA-512 `os_hash_value`), then imported as
//! `compute image-import` does (the format probed with `qemu-img info`, never
//! taken from the request; `kernel_id` and `ramdisk_id` properties naming images
//! make a direct-kernel image, `os_command_line` its command line). The image is
//! `saving` meanwhile, under this process's lease in its record (renewed every
//! [`renew_every`]); a body cut short, late or not a disk image leaves it `killed`, a
//! body over the cap answers 413 and leaves it `queued` again (as Glance v2), and
//! no file behind, never half-imported. A process killed midway leaves a `saving`
//! record whose lease runs out: [`sweep`] (every API process runs it) ends it
//! (`active` if the import committed, else `killed`; see
//! [`compute_store::ImageRecord`]).
//!
//! The server hands the request here before reading its body (every other
//! request is read whole, under the small body limit).

use super::records;
use crate::{Api, ApiError, ApiResponse, Reply, Service};
use bytes::Bytes;
use compute_host::driver::images::{self, ImageImport, ImageOwner};
use compute_host::driver::layout::Layout;
use compute_store::{
    ImageRecord, ImageStatus as Status, Store, StoreError, UploadLease, Visibility,
};
use http_body_util::BodyExt;
use md5::Md5;
use sha2::{Digest, Sha512};
use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;

/// Whether a request is an upload (the Image API, `PUT /v2/images/{id}/file`).
pub fn is_upload(service: Service, method: &http::Method, path: &str) -> bool {
    let segs: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    service == Service::Image
        && *method == http::Method::PUT
        && matches!(segs.as_slice(), ["v2", "images", _, "file"])
}

/// Answers an upload.
pub async fn handle(
    api: Arc<Api>,
    parts: http::request::Parts,
    body: hyper::body::Incoming,
) -> Reply {
    let request_id = format!("req-{}", uuid::Uuid::new_v4().hyphenated());
    let host = crate::request_host(&parts.headers);
    let id = parts
        .uri
        .path()
        .split('/')
        .filter(|s| !s.is_empty())
        .nth(2)
        .unwrap_or("")
        .to_owned();
    let started = std::time::Instant::now();
    let token = parts
        .headers
        .get("x-auth-token")
        .and_then(|t| t.to_str().ok())
        .map(str::to_owned);
    let declared = parts
        .headers
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    // A task of its own: hyper drops a connection's request future when the client
    // goes away, and an upload must end as killed or active, never midway.
    let (a, i) = (api.clone(), id.clone());
    let outcome = tokio::spawn(async move { upload(&a, token, declared, &i, body).await })
        .await
        .unwrap_or_else(|e| Err(ApiError::Internal(Box::new(e))));
    let status = match &outcome {
        Ok(r) => r.status,
        Err(e) => e.status(),
    };
    if let Err(ApiError::Internal(cause)) = &outcome {
        tracing::error!(%request_id, error = %::compute::error_chain(cause.as_ref()), "upload failed");
    }
    tracing::info!(target: "access", service = "image", method = "PUT",
        path = %parts.uri.path(), status = status.as_u16(),
        micros = started.elapsed().as_micros() as u64, %request_id);
    api.reply(Service::Image, None, outcome, &request_id, host.as_deref())
}

/// How often a running upload renews its claim (`Limits::upload_lease`, how long
/// a claim holds without renewal, over six; at least a second), and how often
/// [`sweep`] runs.
pub fn renew_every(api: &Api) -> std::time::Duration {
    (api.limits.upload_lease / 6).max(std::time::Duration::from_secs(1))
}

/// This process as an uploader (`host:pid`), for operators reading a record.
fn uploader() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
    format!("{}:{}", host.trim(), std::process::id())
}

/// RFC 3339 seconds, `after` from now.
fn stamp_in(after: std::time::Duration) -> String {
    time::OffsetDateTime::now_utc()
        .checked_add(time::Duration::seconds(after.as_secs() as i64))
        .and_then(|t| t.replace_nanosecond(0).ok())
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_default()
}

fn lease(api: &Api) -> UploadLease {
    UploadLease {
        uploader: uploader(),
        until: stamp_in(api.limits.upload_lease),
    }
}

/// Marks the image's record `saving` under this process's lease (the caller's
/// to upload, queued).
async fn claim(api: &Arc<Api>, token: Option<String>, id: &str) -> Result<(), ApiError> {
    if matches!(api.auth.mode, crate::auth::AuthMode::Keystone) {
        let genuine = token
            .as_deref()
            .is_some_and(|t| api.auth.signer.verify(t, crate::auth::now_secs()).is_ok());
        if !genuine {
            return Err(ApiError::Unauthorized);
        }
    }
    let (a, id) = (api.clone(), id.to_owned());
    api.pool
        .run(move |store| {
            let caller = a.auth.authenticate(store, token.as_deref())?;
            let not_found = || ApiError::NotFound(format!("No image found with ID {id}"));
            let mut claimed = |rec: &mut ImageRecord| {
                let mine = rec.owner == caller.project_id || caller.is_admin();
                if !mine {
                    let seen = matches!(rec.visibility, Visibility::Public | Visibility::Community);
                    return Err(records::refuse(if seen {
                        ApiError::Forbidden(format!(
                            "You are not permitted to upload data to image {id}."
                        ))
                    } else {
                        not_found()
                    }));
                }
                if rec.status != Status::Queued {
                    return Err(records::refuse(ApiError::Conflict(format!(
                        "Image status transition from {} to saving is not allowed",
                        rec.status.as_str()
                    ))));
                }
                rec.status = Status::Saving;
                rec.lease = Some(lease(&a));
                rec.updated_at = compute_host::driver::now();
                Ok(())
            };
            match store.update_image_record(&id, &mut claimed) {
                Ok(_) => Ok(()),
                Err(StoreError::NotFound { .. }) => Err(not_found()),
                Err(e) => Err(e.into()),
            }
        })
        .await
}

/// Changes this process's `saving` record `id`; refused (409) once the upload is
/// no longer its own (a sweep ended it).
async fn change_own(
    api: &Arc<Api>,
    id: &str,
    change: impl FnOnce(&mut ImageRecord) + Send + 'static,
) -> Result<ImageRecord, ApiError> {
    let id = id.to_owned();
    let me = uploader();
    api.pool
        .run(move |store| {
            let mut change = Some(change);
            let mut own = |rec: &mut ImageRecord| {
                let ours = rec.status == Status::Saving
                    && rec.lease.as_ref().is_some_and(|l| l.uploader == me);
                if !ours {
                    return Err(records::refuse(ApiError::Conflict(format!(
                        "The upload of image {} ended meanwhile: it is {}.",
                        rec.id,
                        rec.status.as_str()
                    ))));
                }
                if let Some(c) = change.take() {
                    c(rec);
                }
                rec.updated_at = compute_host::driver::now();
                Ok(())
            };
            Ok(store.update_image_record(&id, &mut own)?)
        })
        .await
}

/// What the bytes were.
struct Received {
    size: u64,
    md5: String,
    sha512: String,
}

async fn upload(
    api: &Arc<Api>,
    token: Option<String>,
    declared: Option<u64>,
    id: &str,
    body: hyper::body::Incoming,
) -> Result<ApiResponse, ApiError> {
    claim(api, token, id).await?;
    // The claim is renewed while this upload lives (the task ends with it).
    let renewal = {
        let (a, i) = (api.clone(), id.to_owned());
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(renew_every(&a)).await;
                let renewed = lease(&a);
                if let Err(e) = change_own(&a, &i, move |r| r.lease = Some(renewed)).await {
                    tracing::warn!(image = i, error = %::compute::error_chain(&e), "cannot renew the upload's lease");
                }
            }
        })
    };
    let outcome = receive_and_import(api, declared, id, body).await;
    renewal.abort();
    let part = records::upload_path(&api.state_dir, id);
    let _ = std::fs::remove_file(&part);
    match outcome {
        Ok(size) => {
            tracing::info!(image = id, bytes = size, "image uploaded");
            Ok(ApiResponse::empty(http::StatusCode::NO_CONTENT))
        }
        // Glance v2 (`image_data.py`, `ImageSizeLimitExceeded`): 413, and the
        // image goes back to `queued` for a smaller upload.
        Err(e @ ApiError::TooLarge { .. }) => {
            end(api, id, Status::Queued).await;
            Err(e)
        }
        Err(e) => {
            end(api, id, Status::Killed).await;
            Err(e)
        }
    }
}

/// The bytes to `part`, their hashes to the record (still `saving`), the import,
/// then `active`: each step one transaction, so a crash anywhere leaves a
/// `saving` record [`sweep`] can end right (see [`compute_store::ImageRecord`]).
async fn receive_and_import(
    api: &Arc<Api>,
    declared: Option<u64>,
    id: &str,
    body: hyper::body::Incoming,
) -> Result<u64, ApiError> {
    let part = records::upload_path(&api.state_dir, id);
    let received = receive(api, declared, body, &part).await?;
    let (size, md5, sha512) = (received.size, received.md5, received.sha512);
    let hashed = change_own(api, id, move |r| {
        r.size = Some(size);
        r.checksum = Some(md5);
        r.os_hash_value = Some(sha512);
    })
    .await?;
    // The import reads the record as it is now (a PATCH may have renamed it).
    let (a, r, p) = (api.clone(), hashed, part.clone());
    let format = api.pool.run(move |store| import(&a, store, &r, &p)).await?;
    change_own(api, id, move |r| {
        r.status = Status::Active;
        r.disk_format = Some(format);
        r.lease = None;
    })
    .await?;
    Ok(size)
}

/// The upload failed: the image is `killed`, or `queued` again (its bytes are
/// gone already).
async fn end(api: &Arc<Api>, id: &str, status: Status) {
    let ended = change_own(api, id, move |r| {
        r.status = status;
        r.lease = None;
        r.size = None;
        r.checksum = None;
        r.os_hash_value = None;
    })
    .await;
    match ended {
        Ok(_) => tracing::info!(image = id, status = status.as_str(), "upload failed"),
        Err(e) => {
            tracing::warn!(image = id, error = %::compute::error_chain(&e), "cannot record the failed upload")
        }
    }
}

/// Moves earlier versions' record files into the store, then runs [`sweep`] now
/// and every [`renew_every`] until `stop`.
pub async fn housekeeping(api: Arc<Api>, mut stop: tokio::sync::watch::Receiver<bool>) {
    let a = api.clone();
    let moved = api
        .pool
        .run(move |store| {
            records::move_legacy(store, &a.state_dir).map_err(|e| ApiError::Internal(Box::new(e)))
        })
        .await;
    match moved {
        Ok(0) => {}
        Ok(n) => tracing::info!(
            records = n,
            "image records moved from the state folder into the store"
        ),
        Err(e) => {
            tracing::warn!(error = %::compute::error_chain(&e), "cannot move the image records into the store")
        }
    }
    loop {
        let a = api.clone();
        let swept = api
            .pool
            .run(move |store| sweep(store, &a.state_dir).map_err(ApiError::from))
            .await;
        if let Err(e) = swept {
            tracing::warn!(error = %::compute::error_chain(&e), "cannot end abandoned uploads");
        }
        tokio::select! {
            _ = tokio::time::sleep(renew_every(&api)) => {}
            _ = stop.wait_for(|s| *s) => return,
        }
    }
}

/// Ends the uploads whose uploader is gone (its lease ran out: a process killed
/// midway, on this host or another sharing the database), then removes the bytes
/// in this state folder that no upload is saving (left by a process killed
/// here). Every API process runs it at start and every [`renew_every`].
pub fn sweep(store: &dyn Store, state_dir: &std::path::Path) -> Result<(), StoreError> {
    for r in store.end_abandoned_uploads(&compute_host::driver::now())? {
        tracing::warn!(
            image = r.id,
            status = r.status.as_str(),
            "an upload's uploader went away: upload ended"
        );
    }
    let Ok(entries) = std::fs::read_dir(records::uploads_dir(state_dir)) else {
        return Ok(());
    };
    for entry in entries.filter_map(Result::ok) {
        let name = entry.file_name();
        let Some(id) = name.to_str().and_then(|n| n.strip_suffix(".part")) else {
            continue;
        };
        let saving = match store.image_record(id) {
            Ok(r) => r.status == Status::Saving,
            Err(StoreError::NotFound { .. }) => false,
            Err(e) => return Err(e),
        };
        if !saving {
            let _ = std::fs::remove_file(entry.path());
        }
    }
    Ok(())
}

/// Streams the body to `part` (a writer thread does the file and the hashes).
async fn receive(
    api: &Arc<Api>,
    declared: Option<u64>,
    mut body: hyper::body::Incoming,
    part: &std::path::Path,
) -> Result<Received, ApiError> {
    let limit = api.limits.max_image_bytes;
    if declared.is_some_and(|n| n > limit) {
        return Err(ApiError::TooLarge {
            limit: limit as usize,
        });
    }
    let (tx, rx) = std::sync::mpsc::sync_channel::<Bytes>(16);
    let path = part.to_owned();
    let writer = tokio::task::spawn_blocking(move || write_hashed(&path, rx));
    let mut total = 0u64;
    let outcome: Result<(), ApiError> = loop {
        let frame = match tokio::time::timeout(api.limits.body_read_timeout, body.frame()).await {
            Err(_) => {
                break Err(ApiError::Timeout {
                    secs: api.limits.body_read_timeout.as_secs(),
                })
            }
            Ok(None) => break Ok(()),
            Ok(Some(Err(_))) => {
                break Err(ApiError::BadRequest(
                    "The image data was cut short: the image is killed.".into(),
                ))
            }
            Ok(Some(Ok(f))) => f,
        };
        let Ok(data) = frame.into_data() else {
            continue;
        };
        total += data.len() as u64;
        if total > limit {
            break Err(ApiError::TooLarge {
                limit: limit as usize,
            });
        }
        let tx2 = tx.clone();
        // The channel is bounded: a slow disk slows the client, nothing piles up.
        let sent = tokio::task::spawn_blocking(move || tx2.send(data).is_ok()).await;
        if !matches!(sent, Ok(true)) {
            break Err(ApiError::BadRequest(
                "The image data could not be stored.".into(),
            ));
        }
    };
    drop(tx);
    let written = writer.await.map_err(|e| ApiError::Internal(Box::new(e)))?;
    outcome?;
    let received = written.map_err(|e| ApiError::Internal(Box::new(e)))?;
    if declared.is_some_and(|n| n != received.size) || received.size == 0 {
        return Err(ApiError::BadRequest(format!(
            "The image data is {} bytes, not the {} announced: the image is killed.",
            received.size,
            declared.unwrap_or(0)
        )));
    }
    Ok(received)
}

fn write_hashed(
    path: &std::path::Path,
    rx: std::sync::mpsc::Receiver<Bytes>,
) -> Result<Received, std::io::Error> {
    if let Some(d) = path.parent() {
        std::fs::create_dir_all(d)?;
    }
    let mut file = std::fs::File::create(path)?;
    let (mut md5, mut sha) = (Md5::new(), Sha512::new());
    let mut size = 0u64;
    for chunk in rx {
        md5.update(&chunk);
        sha.update(&chunk);
        file.write_all(&chunk)?;
        size += chunk.len() as u64;
    }
    file.sync_all()?;
    Ok(Received {
        size,
        md5: hex::encode(md5.finalize()),
        sha512: hex::encode(sha.finalize()),
    })
}

/// Imports the received file as `compute image-import` does; the probed format.
fn import(
    api: &Api,
    store: &mut dyn Store,
    rec: &ImageRecord,
    part: &std::path::Path,
) -> Result<String, ApiError> {
    let layout = Layout::new(&api.state_dir);
    let file_of = |key: &str, what: &str| -> Result<Option<PathBuf>, ApiError> {
        let Some(other) = rec.properties.get(key) else {
            return Ok(None);
        };
        let image = match store.image(other) {
            Ok(i)
                if i.id == *other
                    && (i.owner == rec.owner
                        || matches!(i.visibility, Visibility::Public | Visibility::Community)) =>
            {
                i
            }
            Ok(_) | Err(StoreError::NotFound { .. }) => {
                return Err(ApiError::BadRequest(format!(
                    "{key} names no active image ({}): upload the {what} first.",
                    other.chars().take(64).collect::<String>()
                )))
            }
            Err(e) => return Err(e.into()),
        };
        images::fetch(&layout, store, &image).map_err(|e| ApiError::Internal(Box::new(e)))?;
        Ok(Some(layout.image_disk(&image.id)))
    };
    let kernel = file_of("kernel_id", "kernel")?;
    let ramdisk = file_of("ramdisk_id", "ramdisk")?;
    if ramdisk.is_some() && kernel.is_none() {
        return Err(ApiError::BadRequest("ramdisk_id needs kernel_id.".into()));
    }
    let req = ImageImport {
        name: rec
            .name
            .clone()
            .filter(|n| !n.is_empty())
            .unwrap_or_else(|| rec.id.clone()),
        disk: part.to_owned(),
        kernel,
        ramdisk,
        cmdline: rec.properties.get("os_command_line").cloned(),
    };
    let owner = ImageOwner {
        project_id: rec.owner.clone(),
        visibility: rec.visibility,
    };
    match images::import_as(&layout, store, &req, &rec.id, &owner) {
        Ok(image) => Ok(image.format),
        Err(compute_host::driver::DriverError::Img(e)) => Err(ApiError::BadRequest(format!(
            "The image data is not a disk image qemu-img can read ({}): the image is killed.",
            ::compute::error_chain(&e)
        ))),
        Err(compute_host::driver::DriverError::Store(e)) => Err(e.into()),
        Err(e) => Err(ApiError::Internal(Box::new(e))),
    }
}
