//! `PUT /v2/images/{id}/file`: an image's bytes, streamed to a file in the state
//! folder (never held in memory) under the size cap `Limits::max_image_bytes`,
//! hashed on the way (MD5 `checksum`, SHA-512 `os_hash_value`), then imported as
//! `compute image-import` does (the format probed with `qemu-img info`, never
//! taken from the request; `kernel_id` and `ramdisk_id` properties naming images
//! make a direct-kernel image, `os_command_line` its command line). The image is
//! `saving` meanwhile; a body over the cap, cut short, late or not a disk image
//! leaves it `killed` and no file behind, never half-imported.
//!
//! The server hands the request here before reading its body (every other
//! request is read whole, under the small body limit).

use super::records::{self, ImageRecord, Status};
use crate::{Api, ApiError, ApiResponse, Reply, Service};
use bytes::Bytes;
use compute_host::driver::images::{self, ImageImport, ImageOwner};
use compute_host::driver::layout::Layout;
use compute_store::{Store, StoreError, Visibility};
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

/// The image, its record marked `saving` (the caller's to upload, queued).
async fn claim(api: &Arc<Api>, token: Option<String>, id: &str) -> Result<ImageRecord, ApiError> {
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
            let mut rec = records::load(&a.state_dir, &id).ok_or_else(not_found)?;
            let mine = rec.owner == caller.project_id || caller.is_admin();
            if !mine {
                let seen = matches!(rec.visibility, Visibility::Public | Visibility::Community);
                return Err(if seen {
                    ApiError::Forbidden(format!(
                        "You are not permitted to upload data to image {id}."
                    ))
                } else {
                    not_found()
                });
            }
            if rec.status != Status::Queued {
                return Err(ApiError::Conflict(format!(
                    "Image status transition from {} to saving is not allowed",
                    rec.status.as_str()
                )));
            }
            rec.status = Status::Saving;
            rec.updated_at = compute_host::driver::now();
            records::save(&a.state_dir, &rec).map_err(|e| ApiError::Internal(Box::new(e)))?;
            Ok(rec)
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
    let rec = claim(api, token, id).await?;
    let part = records::upload_path(&api.state_dir, id);
    let received = receive(api, declared, body, &part).await;
    let received = match received {
        Ok(r) => r,
        Err(e) => {
            kill(api, rec, &part);
            return Err(e);
        }
    };
    let (a, r, p) = (api.clone(), rec.clone(), part.clone());
    let imported = api.pool.run(move |store| import(&a, store, &r, &p)).await;
    match imported {
        Ok(format) => {
            let mut done = rec;
            done.status = Status::Active;
            done.size = Some(received.size);
            done.checksum = Some(received.md5);
            done.os_hash_value = Some(received.sha512);
            done.disk_format = Some(format);
            done.updated_at = compute_host::driver::now();
            let _ = std::fs::remove_file(&part);
            records::save(&api.state_dir, &done).map_err(|e| ApiError::Internal(Box::new(e)))?;
            tracing::info!(image = id, bytes = received.size, "image uploaded");
            Ok(ApiResponse::empty(http::StatusCode::NO_CONTENT))
        }
        Err(e) => {
            kill(api, rec, &part);
            Err(e)
        }
    }
}

/// The upload failed: the image is `killed` and its bytes are gone.
fn kill(api: &Api, mut rec: ImageRecord, part: &std::path::Path) {
    let _ = std::fs::remove_file(part);
    rec.status = Status::Killed;
    rec.updated_at = compute_host::driver::now();
    if let Err(e) = records::save(&api.state_dir, &rec) {
        tracing::warn!(image = rec.id, error = %::compute::error_chain(&e), "cannot record the killed image");
    }
    tracing::info!(image = rec.id, "upload failed: image killed");
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
