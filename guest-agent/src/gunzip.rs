//! Bounded gunzip for data that comes with the instance (user data, `write_files`
//! entries): unpacks at most a limit and fails past it, never truncating silently, so
//! a gzip bomb cannot exhaust the guest. Pure: bytes in, bytes out.

use std::io::Read;

/// Unpacked user data, or one unpacked `write_files` entry, may not grow past this.
pub const MAX_UNPACKED_BYTES: u64 = 16 * 1024 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum GunzipError {
    #[error("gzip data is corrupt")]
    Corrupt(#[source] std::io::Error),
    #[error("gzip data unpacks to more than {limit} bytes")]
    TooLarge { limit: u64 },
}

/// Unpacks gzip `data`, failing when the result would exceed `limit` bytes.
pub fn gunzip(data: &[u8], limit: u64) -> Result<Vec<u8>, GunzipError> {
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(data)
        .take(limit.saturating_add(1))
        .read_to_end(&mut out)
        .map_err(GunzipError::Corrupt)?;
    if out.len() as u64 > limit {
        return Err(GunzipError::TooLarge { limit });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn gz(data: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(data).expect("in memory");
        e.finish().expect("in memory")
    }

    #[test]
    fn unpacks_up_to_the_limit_and_fails_past_it() {
        assert_eq!(gunzip(&gz(b"hello"), 5).expect("fits"), b"hello");
        assert!(matches!(
            gunzip(&gz(b"hello!"), 5),
            Err(GunzipError::TooLarge { limit: 5 })
        ));
        let mut cut = gz(b"hello hello hello");
        cut.truncate(cut.len() - 6);
        assert!(matches!(gunzip(&cut, 100), Err(GunzipError::Corrupt(_))));
        assert!(matches!(
            gunzip(b"not gzip", 100),
            Err(GunzipError::Corrupt(_))
        ));
    }
}
