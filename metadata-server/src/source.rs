//! Where instance documents come from when they are files, behind a small trait so
//! the server does not care: a JSON file or a folder of them. (Compute's database is
//! followed through its change feed instead: [`crate::feed`].)
//!
//! A source answers two questions: "what is your fingerprint now?" (cheap, polled to
//! notice changes) and "give me every instance" (validated). Both block: call them
//! off the async runtime.

use crate::store::Document;
use compute::{Instance, InstanceError};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

/// Bound on one document file, far above any valid instance (user data is < 64 KiB).
pub const MAX_FILE_BYTES: u64 = 16 << 20;
/// Bound on the number of files read from a folder.
pub const MAX_FILES: usize = 1_000_000;

#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("cannot read {path}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} is larger than {MAX_FILE_BYTES} bytes")]
    TooLarge { path: PathBuf },
    #[error("{path}: not JSON: {message}")]
    Json { path: PathBuf, message: String },
    #[error("{path}: instance #{index}")]
    Instance {
        path: PathBuf,
        index: usize,
        source: InstanceError,
    },
    #[error("{path}")]
    Database {
        path: PathBuf,
        source: compute_store::StoreError,
    },
    #[error("{path} holds more than {MAX_FILES} files")]
    TooManyFiles { path: PathBuf },
}

/// Something that changes whenever the source's content may have changed.
pub type Fingerprint = Vec<(PathBuf, Option<SystemTime>, u64)>;

pub trait InstanceSource: Send + Sync + 'static {
    /// A short description for logs (`file /etc/instances.json`).
    fn describe(&self) -> String;
    /// Cheap probe: equal fingerprints mean nothing changed.
    fn fingerprint(&self) -> Result<Fingerprint, SourceError>;
    /// Every instance, validated; any bad document fails the whole load.
    fn load(&self) -> Result<Vec<Document>, SourceError>;
}

/// `--instances FILE|DIR`: a JSON array of documents (or one document), or a folder
/// of `*.json` files each holding one of those.
#[derive(Debug, Clone)]
pub struct FileSource {
    path: PathBuf,
}

impl FileSource {
    pub fn new(path: PathBuf) -> Self {
        FileSource { path }
    }

    fn files(&self) -> Result<Vec<PathBuf>, SourceError> {
        let io = |source| SourceError::Io {
            path: self.path.clone(),
            source,
        };
        let meta = std::fs::metadata(&self.path).map_err(io)?;
        if !meta.is_dir() {
            return Ok(vec![self.path.clone()]);
        }
        let mut files = Vec::new();
        for entry in std::fs::read_dir(&self.path).map_err(io)? {
            let p = entry.map_err(io)?.path();
            if p.extension().is_some_and(|e| e == "json") {
                files.push(p);
                if files.len() > MAX_FILES {
                    return Err(SourceError::TooManyFiles {
                        path: self.path.clone(),
                    });
                }
            }
        }
        files.sort();
        Ok(files)
    }
}

fn read_bounded(path: &Path) -> Result<Vec<u8>, SourceError> {
    use std::io::Read;
    let io = |source| SourceError::Io {
        path: path.to_owned(),
        source,
    };
    let f = std::fs::File::open(path).map_err(io)?;
    let mut buf = Vec::new();
    f.take(MAX_FILE_BYTES + 1)
        .read_to_end(&mut buf)
        .map_err(io)?;
    if buf.len() as u64 > MAX_FILE_BYTES {
        return Err(SourceError::TooLarge {
            path: path.to_owned(),
        });
    }
    Ok(buf)
}

/// Parses a file holding one document or an array of them.
pub fn parse_documents(path: &Path, bytes: &[u8]) -> Result<Vec<Instance>, SourceError> {
    let value: serde_json::Value =
        serde_json::from_slice(bytes).map_err(|e| SourceError::Json {
            path: path.to_owned(),
            message: e.to_string(),
        })?;
    let docs = match value {
        serde_json::Value::Array(items) => items,
        other => vec![other],
    };
    docs.into_iter()
        .enumerate()
        .map(|(index, doc)| {
            let doc = serde_json::to_vec(&doc).map_err(|e| SourceError::Json {
                path: path.to_owned(),
                message: e.to_string(),
            })?;
            Instance::from_json(&doc).map_err(|source| SourceError::Instance {
                path: path.to_owned(),
                index,
                source,
            })
        })
        .collect()
}

impl InstanceSource for FileSource {
    fn describe(&self) -> String {
        format!("file {}", self.path.display())
    }

    fn fingerprint(&self) -> Result<Fingerprint, SourceError> {
        let mut out = Vec::new();
        for p in self.files()? {
            let meta = std::fs::metadata(&p).map_err(|source| SourceError::Io {
                path: p.clone(),
                source,
            })?;
            out.push((p, meta.modified().ok(), meta.len()));
        }
        Ok(out)
    }

    /// Each file's instances become compact documents before the next file is
    /// read: the parsed form of 100,000 instances never exists at once.
    fn load(&self) -> Result<Vec<Document>, SourceError> {
        let mut all = Vec::new();
        for p in self.files()? {
            let bytes = read_bounded(&p)?;
            all.extend(parse_documents(&p, &bytes)?.iter().map(Document::new));
        }
        Ok(all)
    }
}
