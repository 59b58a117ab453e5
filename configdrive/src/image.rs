//! [`DiskImage`]: a built image as its non-zero chunks plus a length, so that a
//! 64 MiB VFAT drive holding a few kilobytes costs a few kilobytes of memory and
//! is written as a sparse file. [`SparseDisk`] is the in-memory block device the
//! FAT writer formats, whose unwritten and all-zero chunks take no memory.

use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::io::{self, Read, Seek, SeekFrom, Write};

/// Granularity of stored data: one page.
pub const CHUNK: usize = 4096;

/// An image: `len` bytes, zero except for the stored chunks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiskImage {
    len: u64,
    /// Non-overlapping, sorted by offset.
    extents: Vec<(u64, Vec<u8>)>,
}

impl DiskImage {
    /// An image that is exactly these bytes.
    pub fn from_vec(bytes: Vec<u8>) -> Self {
        DiskImage {
            len: bytes.len() as u64,
            extents: vec![(0, bytes)],
        }
    }

    pub fn len(&self) -> u64 {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Bytes actually stored (what the image costs in memory and on disk).
    pub fn stored_bytes(&self) -> u64 {
        self.extents.iter().map(|(_, b)| b.len() as u64).sum()
    }

    /// Stored extents: (offset, bytes), sorted.
    pub fn extents(&self) -> &[(u64, Vec<u8>)] {
        &self.extents
    }

    /// Writes the image into a fresh file: the extents at their offsets, then the
    /// length; holes are left unwritten, so the file is sparse.
    pub fn write_sparse(&self, file: &mut std::fs::File) -> io::Result<()> {
        for (at, bytes) in &self.extents {
            file.seek(SeekFrom::Start(*at))?;
            file.write_all(bytes)?;
        }
        file.set_len(self.len)
    }

    /// Writes every byte, holes as zeros, to a stream.
    pub fn write_stream<W: Write>(&self, mut out: W) -> io::Result<()> {
        self.for_each_piece(|piece| out.write_all(piece))
    }

    /// Every byte, in order.
    pub fn to_vec(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.len as usize);
        // Writing into a Vec cannot fail.
        let _ = self.write_stream(&mut out);
        out
    }

    /// SHA-256 of the whole image, holes included.
    pub fn sha256(&self) -> [u8; 32] {
        let mut h = Sha256::new();
        let _ = self.for_each_piece(|piece| {
            h.update(piece);
            Ok(())
        });
        h.finalize().into()
    }

    fn for_each_piece(&self, mut f: impl FnMut(&[u8]) -> io::Result<()>) -> io::Result<()> {
        static ZEROS: [u8; 64 * 1024] = [0; 64 * 1024];
        let mut pos = 0u64;
        let zeros = |n: u64, f: &mut dyn FnMut(&[u8]) -> io::Result<()>| -> io::Result<()> {
            let mut left = n;
            while left > 0 {
                let k = left.min(ZEROS.len() as u64) as usize;
                f(&ZEROS[..k])?;
                left -= k as u64;
            }
            Ok(())
        };
        for (at, bytes) in &self.extents {
            zeros(at - pos, &mut f)?;
            f(bytes)?;
            pos = at + bytes.len() as u64;
        }
        zeros(self.len - pos, &mut f)
    }
}

/// A block device in memory of a fixed length, storing only non-zero chunks.
#[derive(Debug)]
pub struct SparseDisk {
    len: u64,
    pos: u64,
    chunks: BTreeMap<u64, Box<[u8; CHUNK]>>,
}

impl SparseDisk {
    pub fn new(len: u64) -> Self {
        SparseDisk {
            len,
            pos: 0,
            chunks: BTreeMap::new(),
        }
    }

    /// The disk as an image; runs of adjacent chunks become one extent.
    pub fn into_image(self) -> DiskImage {
        let mut extents: Vec<(u64, Vec<u8>)> = Vec::new();
        for (idx, chunk) in self.chunks {
            if chunk.iter().all(|&b| b == 0) {
                continue;
            }
            let at = idx * CHUNK as u64;
            let end = (at + CHUNK as u64).min(self.len);
            let data = &chunk[..(end - at) as usize];
            match extents.last_mut() {
                Some((start, bytes)) if *start + bytes.len() as u64 == at => {
                    bytes.extend_from_slice(data)
                }
                _ => extents.push((at, data.to_vec())),
            }
        }
        DiskImage {
            len: self.len,
            extents,
        }
    }
}

impl Read for SparseDisk {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = (buf.len() as u64).min(self.len.saturating_sub(self.pos)) as usize;
        let mut done = 0;
        while done < n {
            let pos = self.pos + done as u64;
            let (idx, off) = (pos / CHUNK as u64, (pos % CHUNK as u64) as usize);
            let k = (CHUNK - off).min(n - done);
            match self.chunks.get(&idx) {
                Some(c) => buf[done..done + k].copy_from_slice(&c[off..off + k]),
                None => buf[done..done + k].fill(0),
            }
            done += k;
        }
        self.pos += n as u64;
        Ok(n)
    }
}

impl Write for SparseDisk {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.pos + buf.len() as u64 > self.len {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "write past the end of the disk",
            ));
        }
        let mut done = 0;
        while done < buf.len() {
            let pos = self.pos + done as u64;
            let (idx, off) = (pos / CHUNK as u64, (pos % CHUNK as u64) as usize);
            let k = (CHUNK - off).min(buf.len() - done);
            let data = &buf[done..done + k];
            match self.chunks.get_mut(&idx) {
                Some(c) => c[off..off + k].copy_from_slice(data),
                None if data.iter().all(|&b| b == 0) => {}
                None => {
                    let mut c = Box::new([0u8; CHUNK]);
                    c[off..off + k].copy_from_slice(data);
                    self.chunks.insert(idx, c);
                }
            }
            done += k;
        }
        self.pos += buf.len() as u64;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Seek for SparseDisk {
    fn seek(&mut self, to: SeekFrom) -> io::Result<u64> {
        let target = match to {
            SeekFrom::Start(p) => Some(p),
            SeekFrom::End(d) => self.len.checked_add_signed(d),
            SeekFrom::Current(d) => self.pos.checked_add_signed(d),
        };
        match target {
            Some(p) => {
                self.pos = p;
                Ok(p)
            }
            None => Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "seek before the start of the disk",
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zeros_cost_nothing_and_data_round_trips() {
        let mut d = SparseDisk::new(1 << 20);
        d.write_all(&[0u8; 8192]).unwrap();
        assert!(d.chunks.is_empty());
        d.seek(SeekFrom::Start(5000)).unwrap();
        d.write_all(b"hello").unwrap();
        d.seek(SeekFrom::Start(4998)).unwrap();
        let mut buf = [9u8; 9];
        d.read_exact(&mut buf).unwrap();
        assert_eq!(&buf, b"\0\0hello\0\0");
        assert!(d.seek(SeekFrom::End(1)).is_ok());
        assert!(d.write(b"x").is_err());
        let img = d.into_image();
        assert_eq!(img.stored_bytes(), CHUNK as u64);
        let all = img.to_vec();
        assert_eq!(all.len(), 1 << 20);
        assert_eq!(&all[5000..5005], b"hello");
        let sha: [u8; 32] = Sha256::digest(&all).into();
        assert_eq!(img.sha256(), sha);
    }
}
