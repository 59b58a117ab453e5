//! What the Image API (Glance v2) knows of an image beyond [`crate::Image`]: an
//! image made by `POST /v2/images` before its bytes arrive (`queued`, `saving`) or
//! after they failed (`killed`), and for an uploaded one its formats, MD5
//! `checksum`, SHA-512 `os_hash_value`, visibility, protection, tags and extra
//! properties. One row per image (`image_records`) on both backends; `tags` and
//! `properties` are JSON text in their row (nothing queries inside them).
//!
//! # Uploads and crashes
//!
//! An upload claims a `queued` record (it becomes `saving`, with the uploader's
//! name and a lease), renews the lease while it runs, records the hashes once the
//! bytes are in, then imports the image (the `images` row, in its own
//! transaction) and marks the record `active`; a failure marks it `killed`. Each
//! step is one transaction, so a process killed midway leaves a `saving` record
//! whose lease runs out: [`crate::Store::end_abandoned_uploads`] (which every API
//! process runs now and then) turns it `active` when the import had committed (the
//! `images` row is there, and so are the hashes), else `killed`. Nothing is ever
//! half-written: a row is replaced whole.

use crate::records::amount;
use crate::{StoreError, Visibility};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Glance's image statuses that happen here.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ImageStatus {
    Queued,
    Saving,
    Active,
    Killed,
}

impl ImageStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ImageStatus::Queued => "queued",
            ImageStatus::Saving => "saving",
            ImageStatus::Active => "active",
            ImageStatus::Killed => "killed",
        }
    }

    pub fn parse(s: &str) -> Option<ImageStatus> {
        Some(match s {
            "queued" => ImageStatus::Queued,
            "saving" => ImageStatus::Saving,
            "active" => ImageStatus::Active,
            "killed" => ImageStatus::Killed,
            _ => return None,
        })
    }
}

/// Who is uploading a `saving` image, and until when its claim holds unless
/// renewed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UploadLease {
    /// The uploading process (`host:pid`), for operators.
    pub uploader: String,
    /// RFC 3339 UTC, seconds (`2026-01-01T00:00:00Z`): compared as text.
    pub until: String,
}

/// One image as the Image API made it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageRecord {
    pub id: String,
    pub name: Option<String>,
    pub disk_format: Option<String>,
    pub container_format: Option<String>,
    pub visibility: Visibility,
    /// The owning project.
    pub owner: String,
    pub min_disk: u64,
    pub min_ram: u64,
    pub protected: bool,
    pub tags: Vec<String>,
    /// Extra properties (top-level keys in Glance's JSON).
    pub properties: BTreeMap<String, String>,
    pub status: ImageStatus,
    pub size: Option<u64>,
    /// MD5 of the bytes, hex.
    pub checksum: Option<String>,
    /// SHA-512 of the bytes, hex.
    pub os_hash_value: Option<String>,
    pub created_at: String,
    pub updated_at: String,
    /// Set while `saving`.
    pub lease: Option<UploadLease>,
}

/// The columns of `image_records`, in the order [`Columns`] holds them.
pub(crate) const COLUMNS: &str = "id, name, disk_format, container_format, visibility, owner, \
     min_disk, min_ram, protected, tags, properties, status, size, checksum, os_hash_value, \
     created_at, updated_at, uploader, lease_until";

/// A record as its row's values, whichever the backend.
pub(crate) struct Columns {
    pub id: String,
    pub name: Option<String>,
    pub disk_format: Option<String>,
    pub container_format: Option<String>,
    pub visibility: String,
    pub owner: String,
    pub min_disk: i64,
    pub min_ram: i64,
    pub protected: bool,
    pub tags: String,
    pub properties: String,
    pub status: String,
    pub size: Option<i64>,
    pub checksum: Option<String>,
    pub os_hash_value: Option<String>,
    pub created_at: String,
    pub updated_at: String,
    pub uploader: Option<String>,
    pub lease_until: Option<String>,
}

impl Columns {
    pub fn of(r: &ImageRecord) -> Columns {
        Columns {
            id: r.id.clone(),
            name: r.name.clone(),
            disk_format: r.disk_format.clone(),
            container_format: r.container_format.clone(),
            visibility: r.visibility.as_str().to_owned(),
            owner: r.owner.clone(),
            min_disk: amount(r.min_disk),
            min_ram: amount(r.min_ram),
            protected: r.protected,
            // Lists and maps of strings always serialize.
            tags: serde_json::to_string(&r.tags).unwrap_or_else(|_| "[]".into()),
            properties: serde_json::to_string(&r.properties).unwrap_or_else(|_| "{}".into()),
            status: r.status.as_str().to_owned(),
            size: r.size.map(amount),
            checksum: r.checksum.clone(),
            os_hash_value: r.os_hash_value.clone(),
            created_at: r.created_at.clone(),
            updated_at: r.updated_at.clone(),
            uploader: r.lease.as_ref().map(|l| l.uploader.clone()),
            lease_until: r.lease.as_ref().map(|l| l.until.clone()),
        }
    }

    pub fn into_record(self) -> Result<ImageRecord, StoreError> {
        let corrupt = |what: &'static str, problem: String| StoreError::Corrupt {
            what,
            key: self.id.clone(),
            problem,
        };
        let visibility = Visibility::parse(&self.visibility)
            .ok_or_else(|| corrupt("image visibility", self.visibility.clone()))?;
        let status = ImageStatus::parse(&self.status)
            .ok_or_else(|| corrupt("image status", self.status.clone()))?;
        let tags =
            serde_json::from_str(&self.tags).map_err(|e| corrupt("image tags", e.to_string()))?;
        let properties = serde_json::from_str(&self.properties)
            .map_err(|e| corrupt("image properties", e.to_string()))?;
        let lease = match (self.uploader, self.lease_until) {
            (Some(uploader), Some(until)) => Some(UploadLease { uploader, until }),
            _ => None,
        };
        Ok(ImageRecord {
            id: self.id,
            name: self.name,
            disk_format: self.disk_format,
            container_format: self.container_format,
            visibility,
            owner: self.owner,
            min_disk: self.min_disk.max(0) as u64,
            min_ram: self.min_ram.max(0) as u64,
            protected: self.protected,
            tags,
            properties,
            status,
            size: self.size.map(|s| s.max(0) as u64),
            checksum: self.checksum,
            os_hash_value: self.os_hash_value,
            created_at: self.created_at,
            updated_at: self.updated_at,
            lease,
        })
    }
}

/// Why [`crate::Store::update_image_record`]'s change refused: the caller's own
/// error, handed back as the cause of [`StoreError::ImageRecordRefused`].
pub type RecordProblem = Box<dyn std::error::Error + Send + Sync>;

/// The change [`crate::Store::update_image_record`] applies to the current record.
pub type RecordChange<'a> = dyn FnMut(&mut ImageRecord) -> Result<(), RecordProblem> + 'a;
