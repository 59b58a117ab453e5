//! What Glance knows of an image that the store does not: an image made by
//! `POST /v2/images` before its bytes arrive (`queued`, `saving`) or after they
//! failed (`killed`), and for an uploaded one its formats, MD5 `checksum`, SHA-512
//! `os_hash_value` and extra properties. One JSON file per image under
//! `STATE/api/images/`, written atomically; the store's image record stays the
//! truth for active images (an instance boots from it, the CLI lists it).

use compute_store::Visibility;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    #[error("cannot write the image record {path}")]
    Write {
        path: PathBuf,
        #[source]
        source: compute_io::atomic::AtomicError,
    },
    #[error("cannot read the image records in {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot remove {path}")]
    Remove {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// Glance's image statuses that happen here.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Queued,
    Saving,
    Active,
    Killed,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Queued => "queued",
            Status::Saving => "saving",
            Status::Active => "active",
            Status::Killed => "killed",
        }
    }
}

/// One image as the Image API made it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ImageRecord {
    pub id: String,
    pub name: Option<String>,
    pub disk_format: Option<String>,
    pub container_format: Option<String>,
    pub visibility: Visibility,
    pub owner: String,
    pub min_disk: u64,
    pub min_ram: u64,
    pub protected: bool,
    pub tags: Vec<String>,
    /// Extra properties (top-level keys in Glance's JSON).
    pub properties: BTreeMap<String, String>,
    pub status: Status,
    pub size: Option<u64>,
    /// MD5 of the bytes, hex.
    pub checksum: Option<String>,
    /// SHA-512 of the bytes, hex.
    pub os_hash_value: Option<String>,
    pub created_at: String,
    pub updated_at: String,
}

/// The folder of the records.
pub fn dir(state_dir: &Path) -> PathBuf {
    state_dir.join("api").join("images")
}

/// Where an upload's bytes land before they are imported.
pub fn upload_path(state_dir: &Path, id: &str) -> PathBuf {
    state_dir
        .join("api")
        .join("uploads")
        .join(format!("{id}.part"))
}

fn path(state_dir: &Path, id: &str) -> PathBuf {
    dir(state_dir).join(format!("{id}.json"))
}

/// Ids are uuids: nothing else names a file here.
fn is_id(id: &str) -> bool {
    uuid::Uuid::parse_str(id).is_ok()
}

pub fn load(state_dir: &Path, id: &str) -> Option<ImageRecord> {
    if !is_id(id) {
        return None;
    }
    let bytes = std::fs::read(path(state_dir, id)).ok()?;
    serde_json::from_slice(&bytes).ok()
}

pub fn save(state_dir: &Path, rec: &ImageRecord) -> Result<(), RecordError> {
    let p = path(state_dir, &rec.id);
    let bytes = serde_json::to_vec(rec).unwrap_or_default();
    let write = || -> Result<(), compute_io::atomic::AtomicError> {
        if let Some(d) = p.parent() {
            std::fs::create_dir_all(d).map_err(|source| {
                compute_io::atomic::AtomicError::Create {
                    dir: d.to_owned(),
                    source,
                }
            })?;
        }
        compute_io::atomic::replace(&p, &bytes, 0o600)
    };
    write().map_err(|source| RecordError::Write { path: p, source })
}

pub fn remove(state_dir: &Path, id: &str) -> Result<(), RecordError> {
    if !is_id(id) {
        return Ok(());
    }
    let p = path(state_dir, id);
    match std::fs::remove_file(&p) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            Err(RecordError::Remove { path: p, source: e })
        }
        _ => Ok(()),
    }
}

/// Every record, oldest first.
pub fn all(state_dir: &Path) -> Result<Vec<ImageRecord>, RecordError> {
    let d = dir(state_dir);
    let entries = match std::fs::read_dir(&d) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => return Err(RecordError::Read { path: d, source }),
    };
    let mut out: Vec<ImageRecord> = entries
        .filter_map(|e| e.ok())
        .filter_map(|e| std::fs::read(e.path()).ok())
        .filter_map(|b| serde_json::from_slice(&b).ok())
        .collect();
    out.sort_by(|a, b| (&a.created_at, &a.id).cmp(&(&b.created_at, &b.id)));
    Ok(out)
}
