//! Where instance data comes from: a config drive or the metadata service.
//!
//! A [`Provider`] hands out the raw documents of one instance, as the medium holds
//! them; every method defaults to "nothing here", so a provider implements only what
//! its medium has. Parsing into typed documents happens once, in [`crate::view`],
//! with `compute`'s own types. Providers bound every size and wait; none of them
//! writes anything. The drive's filesystems are read by `compute::media`.

mod drive;
mod http;
mod scan;

pub use compute::media::{
    Device, FatFs, IsoFs, MediaError, MediaKind, NameSet, DEFAULT_READ_BUDGET,
};
pub use drive::{ConfigDriveSource, CONFIG_DRIVE_LABEL};
pub use http::{MetadataSource, Polled, RetryPolicy, DEFAULT_METADATA_URL};
pub use scan::BlockScan;

use std::time::Duration;

/// Largest JSON document or user data accepted from any source.
pub const MAX_DOCUMENT_BYTES: u64 = 1024 * 1024;
/// Largest injected file accepted.
pub const MAX_CONTENT_BYTES: u64 = 1024 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("{path}")]
    Media {
        path: String,
        #[source]
        source: MediaError,
    },
    #[error("cannot open {path}")]
    Open {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{path} is neither ISO9660 nor FAT")]
    UnknownFilesystem { path: String },
    #[error("{path} is labelled `{label}`, not `config-2`")]
    WrongLabel { path: String, label: String },
    #[error("no block device labelled config-2 appeared within {waited:?} ({scanned} devices looked at)")]
    NoDrive { waited: Duration, scanned: usize },
    #[error("{path} is larger than the {limit} bytes allowed")]
    TooLarge { path: String, limit: u64 },
    #[error("{url} answered HTTP {status}")]
    Status { url: String, status: u16 },
    #[error("{url} cannot be asked")]
    Request {
        url: String,
        #[source]
        source: Box<ureq::Error>,
    },
    #[error("{url}: no answer within the deadline of {deadline:?}")]
    Deadline {
        url: String,
        deadline: Duration,
        #[source]
        last: LastAttempt,
    },
    #[error("cannot encode the meta_data.json read from the EC2 tree")]
    Ec2MetaData(#[source] serde_json::Error),
    #[error("content_path `{0}` is not of the form /content/NNNN")]
    BadContentPath(String),
    #[error("{0} is not possible with this source")]
    Unsupported(&'static str),
}

/// How the last try before a deadline ended.
#[derive(Debug, thiserror::Error)]
pub enum LastAttempt {
    #[error("no request could be made in time")]
    None,
    #[error("the last answer was HTTP {0}")]
    Status(u16),
    #[error("the last request failed")]
    Failed(#[source] Box<ureq::Error>),
}

/// The file a `content_path` of `meta_data.json` names, relative to `openstack/`:
/// `/content/NNNN` (digits, as Nova and `compute` write it) gives `content/NNNN`. Both
/// providers read through this one check, so nothing else can be asked for.
pub fn content_file(content_path: &str) -> Result<&str, SourceError> {
    let name = content_path.trim_start_matches('/');
    let digits = name.strip_prefix("content/");
    if digits.is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit())) {
        Ok(name)
    } else {
        Err(SourceError::BadContentPath(content_path.into()))
    }
}

/// What the password endpoint said to a POST.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PasswordPost {
    Stored,
    /// A password was already stored (HTTP 409); it is kept.
    AlreadySet,
}

/// The raw documents of one instance, from one medium.
pub trait Provider {
    /// Where the data comes from, for the report (`/dev/sr0 (iso9660)`).
    fn describe(&self) -> String;

    /// `openstack/<version>/meta_data.json`.
    fn meta_data(&mut self) -> Result<Option<Vec<u8>>, SourceError> {
        Ok(None)
    }

    fn network_data(&mut self) -> Result<Option<Vec<u8>>, SourceError> {
        Ok(None)
    }

    fn vendor_data(&mut self) -> Result<Option<Vec<u8>>, SourceError> {
        Ok(None)
    }

    fn user_data(&mut self) -> Result<Option<Vec<u8>>, SourceError> {
        Ok(None)
    }

    /// An injected file's bytes by the `content_path` of `meta_data.json` (`/content/0000`).
    fn content(&mut self, _content_path: &str) -> Result<Option<Vec<u8>>, SourceError> {
        Ok(None)
    }

    /// Posts an encrypted password (base64) to the password endpoint.
    fn post_password(&mut self, _blob: &str) -> Result<PasswordPost, SourceError> {
        Err(SourceError::Unsupported("posting a password"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_numbered_content_files_can_be_asked_for() {
        assert_eq!(content_file("/content/0000").ok(), Some("content/0000"));
        for bad in [
            "/content/",
            "/content/../meta_data.json",
            "/content/0000/x",
            "/latest/meta_data.json",
            "content/abc",
        ] {
            assert!(
                matches!(content_file(bad), Err(SourceError::BadContentPath(p)) if p == bad),
                "{bad}"
            );
        }
    }
}
