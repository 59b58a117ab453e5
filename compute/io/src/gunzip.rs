//! Bounded gunzip: data that unpacks to more than the caller's limit is an error,
//! never silently cut short, so a gzip bomb costs at most `limit + 1` bytes of
//! memory and a truncated result is never mistaken for the whole.
//!
//! It decompresses bytes already in memory; reading them, and choosing the limit,
//! is the caller's.

use std::io::Read;

#[derive(Debug, thiserror::Error)]
pub enum GunzipError {
    #[error("not valid gzip data")]
    Corrupt(#[source] std::io::Error),
    #[error("gzip data unpacks to more than {limit} bytes")]
    TooLarge { limit: u64 },
}

/// True when `data` starts with gzip's magic number.
pub fn is_gzip(data: &[u8]) -> bool {
    data.starts_with(&[0x1f, 0x8b])
}

/// The first gzip member of `data`, unpacked, if it is at most `limit` bytes.
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
        e.write_all(data).expect("compress");
        e.finish().expect("finish")
    }

    #[test]
    fn unpacks_up_to_the_limit_exactly() {
        let packed = gz(b"hello world");
        assert!(is_gzip(&packed));
        assert_eq!(gunzip(&packed, 11).expect("fits"), b"hello world");
        assert_eq!(gunzip(&gz(b""), 0).expect("empty"), b"");
    }

    #[test]
    fn more_than_the_limit_fails_instead_of_truncating() {
        let bomb = gz(&vec![0u8; 1 << 20]);
        assert!(bomb.len() < 4096, "compresses well: {}", bomb.len());
        let err = gunzip(&bomb, (1 << 20) - 1).expect_err("one byte over");
        assert!(matches!(err, GunzipError::TooLarge { limit } if limit == (1 << 20) - 1));
        assert_eq!(
            err.to_string(),
            "gzip data unpacks to more than 1048575 bytes"
        );
    }

    #[test]
    fn garbage_and_cut_data_are_corrupt() {
        assert!(!is_gzip(b"#!/bin/sh"));
        assert!(matches!(
            gunzip(b"\x1f\x8bnot really", 100),
            Err(GunzipError::Corrupt(_))
        ));
        let packed = gz(b"some text that is long enough to cut");
        assert!(matches!(
            gunzip(&packed[..packed.len() - 6], 1000),
            Err(GunzipError::Corrupt(_))
        ));
    }
}
