//! Image files in a PostgreSQL database: every host of a shared database fetches
//! what it boots from here. Each file is a row (`image_files`: size, SHA-256) and its
//! bytes are rows of [`CHUNK`] bytes (`image_chunks`), written with the image row in
//! one transaction (an image is recorded with all its bytes or not at all) and read
//! back in order, streamed, never held whole in memory.

use super::conn::col;
use crate::records::{ImageFile, ImagePart};
use crate::{Image, StoreError};
use postgres::fallible_iterator::FallibleIterator;
use postgres::types::ToSql;
use postgres::{Client, IsolationLevel};
use sha2::{Digest, Sha256};
use std::io::{Read, Write};

/// The bytes of one chunk row.
pub const CHUNK: usize = 1 << 20;

/// Reads until `buf` is full or the input ends; returns how much it holds.
fn fill(input: &mut dyn Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match input.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

pub(super) fn add_with_files(
    c: &mut Client,
    image: &Image,
    files: &mut [(ImagePart, &mut dyn Read)],
) -> Result<Image, StoreError> {
    let mut tx = c.transaction()?;
    super::insert_image(&mut tx, image)?;
    let chunk = tx
        .prepare("INSERT INTO image_chunks (image_id, part, seq, bytes) VALUES ($1, $2, $3, $4)")?;
    let mut recorded = image.clone();
    let mut buf = vec![0u8; CHUNK];
    for (part, input) in files.iter_mut() {
        let name = part.name();
        tx.execute(
            "INSERT INTO image_files (image_id, part, size, sha256) VALUES ($1, $2, 0, '')",
            &[&image.id, &name],
        )?;
        let mut hasher = Sha256::new();
        let mut size = 0u64;
        let mut seq = 0i64;
        loop {
            let n = fill(*input, &mut buf).map_err(|source| StoreError::ImageIo {
                id: image.id.clone(),
                part: name,
                source,
            })?;
            if n == 0 {
                break;
            }
            hasher.update(&buf[..n]);
            let bytes: &[u8] = &buf[..n];
            tx.execute(&chunk, &[&image.id, &name, &seq, &bytes])?;
            size += n as u64;
            seq += 1;
        }
        let sha256 = hex::encode(hasher.finalize());
        tx.execute(
            "UPDATE image_files SET size = $3, sha256 = $4 WHERE image_id = $1 AND part = $2",
            &[&image.id, &name, &crate::records::amount(size), &sha256],
        )?;
        if *part == ImagePart::Disk {
            recorded.size = size;
            recorded.checksum = sha256;
        }
    }
    tx.execute(
        "UPDATE images SET size = $2, checksum = $3 WHERE id = $1",
        &[
            &image.id,
            &crate::records::amount(recorded.size),
            &recorded.checksum,
        ],
    )?;
    tx.commit()?;
    Ok(recorded)
}

pub(super) fn read_file(
    c: &mut Client,
    id: &str,
    part: ImagePart,
    out: &mut dyn Write,
) -> Result<ImageFile, StoreError> {
    let name = part.name();
    // One snapshot: the chunks read are those of the recorded checksum.
    let mut tx = c
        .build_transaction()
        .isolation_level(IsolationLevel::RepeatableRead)
        .read_only(true)
        .start()?;
    let row = tx
        .query_opt(
            "SELECT size, sha256 FROM image_files WHERE image_id = $1 AND part = $2",
            &[&id, &name],
        )?
        .ok_or_else(|| StoreError::NotFound {
            kind: "image file",
            key: format!("{id}/{name}"),
        })?;
    let file = ImageFile {
        part,
        size: col::<i64>(&row, 0)?.max(0) as u64,
        sha256: col(&row, 1)?,
    };
    let params: [&(dyn ToSql + Sync); 2] = [&id, &name];
    let mut rows = tx.query_raw(
        "SELECT bytes FROM image_chunks WHERE image_id = $1 AND part = $2 ORDER BY seq",
        params,
    )?;
    while let Some(r) = rows.next()? {
        let bytes: &[u8] = col(&r, 0)?;
        out.write_all(bytes).map_err(|source| StoreError::ImageIo {
            id: id.to_owned(),
            part: name,
            source,
        })?;
    }
    drop(rows);
    tx.commit()?;
    Ok(file)
}
