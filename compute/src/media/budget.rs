//! A medium opened read-only, with a budget on how much may be read from it.
//!
//! Every filesystem reader in [`crate::media`] goes through [`Device`]: a corrupt
//! image (a loop in a FAT cluster chain, a directory that claims gigabytes) runs out
//! of budget and fails with a clear error instead of spinning. Writes are refused, so
//! a reader that tries to touch the medium (FAT's dirty flag) cannot change it.

use std::io::{self, Read, Seek, SeekFrom, Write};

/// Bytes one config drive may hand a reader in one run: far above a real drive.
pub const DEFAULT_READ_BUDGET: u64 = 64 * 1024 * 1024;

/// A read-only, budgeted view of a drive image or block device.
#[derive(Debug)]
pub struct Device<R> {
    inner: R,
    remaining: u64,
    budget: u64,
}

impl<R: Read + Seek> Device<R> {
    pub fn new(inner: R, budget: u64) -> Self {
        Device {
            inner,
            remaining: budget,
            budget,
        }
    }

    /// Reads exactly `buf.len()` bytes at `offset`, naming a short read as truncation.
    pub fn read_exact_at(&mut self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        self.seek(SeekFrom::Start(offset))?;
        self.read_exact(buf).map_err(|e| {
            if e.kind() == io::ErrorKind::UnexpectedEof {
                io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    format!(
                        "the drive ends before byte {} (truncated image?)",
                        offset.saturating_add(buf.len() as u64)
                    ),
                )
            } else {
                e
            }
        })
    }
}

impl<R: Read> Read for Device<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.remaining == 0 && !buf.is_empty() {
            return Err(io::Error::other(format!(
                "read more than {} bytes from the drive: corrupt filesystem (a loop?)",
                self.budget
            )));
        }
        let want = buf
            .len()
            .min(usize::try_from(self.remaining).unwrap_or(usize::MAX));
        let n = self.inner.read(&mut buf[..want])?;
        self.remaining -= n as u64;
        Ok(n)
    }
}

impl<R: Seek> Seek for Device<R> {
    fn seek(&mut self, pos: SeekFrom) -> io::Result<u64> {
        self.inner.seek(pos)
    }
}

impl<R> Write for Device<R> {
    fn write(&mut self, _buf: &[u8]) -> io::Result<usize> {
        Err(io::Error::new(
            io::ErrorKind::PermissionDenied,
            "the config drive is opened read-only",
        ))
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    #[test]
    fn budget_and_truncation_are_errors() {
        let mut d = Device::new(Cursor::new(vec![7u8; 100]), 50);
        let mut buf = [0u8; 40];
        d.read_exact_at(0, &mut buf).expect("within budget");
        let err = d.read_exact_at(0, &mut buf).expect_err("over budget");
        assert!(err.to_string().contains("more than 50 bytes"), "{err}");
        let mut d = Device::new(Cursor::new(vec![7u8; 10]), 1000);
        let err = d.read_exact_at(5, &mut buf).expect_err("short");
        assert!(err.to_string().contains("truncated"), "{err}");
        assert!(d.write(b"x").is_err());
    }
}
