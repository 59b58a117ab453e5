//! Nova's default quotas on what an instance may carry: injected files, user data and
//! metadata items.
//! Checked before anything is recorded, so a refused boot leaves no trace.

use crate::instance::MAX_USER_DATA_BASE64;

pub const MAX_INJECTED_FILES: usize = 5;
pub const MAX_INJECTED_FILE_BYTES: usize = 10240;
pub const MAX_INJECTED_FILE_PATH: usize = 255;
/// Nova's `metadata_items` quota.
pub const MAX_METADATA_ITEMS: usize = 128;
/// Nova's `key_pairs` quota: keypairs per user.
pub const MAX_KEYPAIRS: usize = 100;
/// Nova's limit on a metadata key and on a value, in characters.
pub const MAX_METADATA_LENGTH: usize = 255;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QuotaError {
    #[error("too many injected files: {count}, the quota is {MAX_INJECTED_FILES}")]
    FileCount { count: usize },
    #[error("injected file {path} is {size} bytes, the quota is {MAX_INJECTED_FILE_BYTES}")]
    FileSize { path: String, size: usize },
    #[error(
        "injected file path {path:?} is {len} bytes long, the quota is {MAX_INJECTED_FILE_PATH}"
    )]
    PathLength { path: String, len: usize },
    #[error("user data is {len} bytes of base64, the limit is {MAX_USER_DATA_BASE64}")]
    UserData { len: usize },
    #[error("too many metadata items: {count}, the quota is {MAX_METADATA_ITEMS}")]
    MetadataCount { count: usize },
    #[error("metadata key {key:?} must be 1 to {MAX_METADATA_LENGTH} characters")]
    MetadataKey { key: String },
    #[error("metadata value of {key:?} is {len} characters, the limit is {MAX_METADATA_LENGTH}")]
    MetadataValue { key: String, len: usize },
}

/// Checks an instance's metadata (`--meta`, `meta-set`) as Nova does.
pub fn check_metadata<'a>(
    items: impl ExactSizeIterator<Item = (&'a String, &'a String)>,
) -> Result<(), QuotaError> {
    if items.len() > MAX_METADATA_ITEMS {
        return Err(QuotaError::MetadataCount { count: items.len() });
    }
    for (key, value) in items {
        let n = key.chars().count();
        if n == 0 || n > MAX_METADATA_LENGTH {
            return Err(QuotaError::MetadataKey { key: key.clone() });
        }
        let len = value.chars().count();
        if len > MAX_METADATA_LENGTH {
            return Err(QuotaError::MetadataValue {
                key: key.clone(),
                len,
            });
        }
    }
    Ok(())
}

/// Checks files (`path`, decoded contents) and the base64 length of user data.
pub fn check(files: &[(String, Vec<u8>)], user_data_b64_len: usize) -> Result<(), QuotaError> {
    if files.len() > MAX_INJECTED_FILES {
        return Err(QuotaError::FileCount { count: files.len() });
    }
    for (path, contents) in files {
        if path.len() > MAX_INJECTED_FILE_PATH {
            return Err(QuotaError::PathLength {
                path: path.clone(),
                len: path.len(),
            });
        }
        if contents.len() > MAX_INJECTED_FILE_BYTES {
            return Err(QuotaError::FileSize {
                path: path.clone(),
                size: contents.len(),
            });
        }
    }
    if user_data_b64_len > MAX_USER_DATA_BASE64 {
        return Err(QuotaError::UserData {
            len: user_data_b64_len,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata_follows_novas_limits() {
        let ok: indexmap::IndexMap<String, String> = [("role".to_owned(), "web".to_owned())].into();
        assert!(check_metadata(ok.iter()).is_ok());
        let empty: indexmap::IndexMap<String, String> = [(String::new(), "x".to_owned())].into();
        assert!(matches!(
            check_metadata(empty.iter()),
            Err(QuotaError::MetadataKey { .. })
        ));
        let long: indexmap::IndexMap<String, String> = [("k".to_owned(), "v".repeat(256))].into();
        assert!(matches!(
            check_metadata(long.iter()),
            Err(QuotaError::MetadataValue { len: 256, .. })
        ));
        let many: indexmap::IndexMap<String, String> =
            (0..129).map(|i| (format!("k{i}"), String::new())).collect();
        assert!(matches!(
            check_metadata(many.iter()),
            Err(QuotaError::MetadataCount { count: 129 })
        ));
    }

    #[test]
    fn novas_limits() {
        let f = |n: usize, size: usize| {
            (0..n)
                .map(|i| (format!("/f{i}"), vec![0; size]))
                .collect::<Vec<_>>()
        };
        assert!(check(&f(5, 10240), 65535).is_ok());
        assert_eq!(check(&f(6, 1), 0), Err(QuotaError::FileCount { count: 6 }));
        assert!(matches!(
            check(&f(1, 10241), 0),
            Err(QuotaError::FileSize { .. })
        ));
        assert!(matches!(
            check(&[("/".repeat(256), vec![])], 0),
            Err(QuotaError::PathLength { .. })
        ));
        assert_eq!(check(&[], 65536), Err(QuotaError::UserData { len: 65536 }));
    }
}
