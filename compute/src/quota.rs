//! Nova's default quotas on what an instance may carry: injected files and user data.
//! Checked before anything is recorded, so a refused boot leaves no trace.

use crate::instance::MAX_USER_DATA_BASE64;

pub const MAX_INJECTED_FILES: usize = 5;
pub const MAX_INJECTED_FILE_BYTES: usize = 10240;
pub const MAX_INJECTED_FILE_PATH: usize = 255;

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
