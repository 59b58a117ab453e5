//! The Image API's side of its records, which the store keeps
//! ([`compute_store::ImageRecord`], every backend, atomically): looking one up,
//! refusing a locked change with the client's error, where an upload's bytes land,
//! and moving the JSON files earlier versions kept in `STATE/api/images/` into the
//! store once (the files go when their record is in).

use crate::ApiError;
use compute_store::{ImageRecord, RecordProblem, Store, StoreError};
use std::path::{Path, PathBuf};

/// The record of image `id`, if the Image API made it.
pub fn find(store: &dyn Store, id: &str) -> Result<Option<ImageRecord>, ApiError> {
    match store.image_record(id) {
        Ok(r) => Ok(Some(r)),
        Err(StoreError::NotFound { .. }) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// A locked change's refusal, answered to the client as `err` (see
/// [`ApiError::from_store`]).
pub fn refuse(err: ApiError) -> RecordProblem {
    Box::new(err)
}

/// The folder of an upload's bytes before they are imported.
pub fn uploads_dir(state_dir: &Path) -> PathBuf {
    state_dir.join("api").join("uploads")
}

/// Where an upload's bytes land before they are imported.
pub fn upload_path(state_dir: &Path, id: &str) -> PathBuf {
    uploads_dir(state_dir).join(format!("{id}.part"))
}

#[derive(Debug, thiserror::Error)]
pub enum LegacyError {
    #[error("cannot read the image records in {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot move the image record {path} into the store")]
    Store {
        path: PathBuf,
        #[source]
        source: StoreError,
    },
}

/// The shape of a record file of earlier versions.
#[derive(serde::Deserialize)]
struct LegacyRecord {
    id: String,
    name: Option<String>,
    disk_format: Option<String>,
    container_format: Option<String>,
    visibility: compute_store::Visibility,
    owner: String,
    min_disk: u64,
    min_ram: u64,
    protected: bool,
    tags: Vec<String>,
    properties: std::collections::BTreeMap<String, String>,
    status: compute_store::ImageStatus,
    size: Option<u64>,
    checksum: Option<String>,
    os_hash_value: Option<String>,
    created_at: String,
    updated_at: String,
}

/// Moves the record files of `STATE/api/images/` into the store (a record the
/// store has already wins); returns how many moved. A file that is not a record
/// is left where it is, with a warning.
pub fn move_legacy(store: &dyn Store, state_dir: &Path) -> Result<usize, LegacyError> {
    let dir = state_dir.join("api").join("images");
    let entries = match std::fs::read_dir(&dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(source) => return Err(LegacyError::Read { path: dir, source }),
    };
    let mut moved = 0;
    for entry in entries.filter_map(Result::ok) {
        let path = entry.path();
        let parsed = std::fs::read(&path)
            .ok()
            .and_then(|b| serde_json::from_slice::<LegacyRecord>(&b).ok());
        let Some(r) = parsed else {
            tracing::warn!(path = %path.display(), "not an image record: left alone");
            continue;
        };
        let record = ImageRecord {
            id: r.id,
            name: r.name,
            disk_format: r.disk_format,
            container_format: r.container_format,
            visibility: r.visibility,
            owner: r.owner,
            min_disk: r.min_disk,
            min_ram: r.min_ram,
            protected: r.protected,
            tags: r.tags,
            properties: r.properties,
            // An upload in flight when the old process stopped never ends now.
            status: match r.status {
                compute_store::ImageStatus::Saving => compute_store::ImageStatus::Killed,
                s => s,
            },
            size: r.size,
            checksum: r.checksum,
            os_hash_value: r.os_hash_value,
            created_at: r.created_at,
            updated_at: r.updated_at,
            lease: None,
        };
        match store.add_image_record(&record) {
            Ok(()) | Err(StoreError::Exists { .. }) => {}
            Err(source) => return Err(LegacyError::Store { path, source }),
        }
        let _ = std::fs::remove_file(&path);
        moved += 1;
    }
    let _ = std::fs::remove_dir(&dir);
    Ok(moved)
}
