//! The Image API's records on PostgreSQL (see [`crate::image_record`]).

use super::conn::col;
use crate::image_record::{Columns, COLUMNS};
use crate::{ImageRecord, RecordChange, StoreError};
use postgres::error::SqlState;
use postgres::{Client, GenericClient, Row};

fn from_row(r: &Row) -> Result<ImageRecord, StoreError> {
    Columns {
        id: col(r, 0)?,
        name: col(r, 1)?,
        disk_format: col(r, 2)?,
        container_format: col(r, 3)?,
        visibility: col(r, 4)?,
        owner: col(r, 5)?,
        min_disk: col(r, 6)?,
        min_ram: col(r, 7)?,
        protected: col(r, 8)?,
        tags: col(r, 9)?,
        properties: col(r, 10)?,
        status: col(r, 11)?,
        size: col(r, 12)?,
        checksum: col(r, 13)?,
        os_hash_value: col(r, 14)?,
        created_at: col(r, 15)?,
        updated_at: col(r, 16)?,
        uploader: col(r, 17)?,
        lease_until: col(r, 18)?,
    }
    .into_record()
}

const VALUES: &str =
    "($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, \
     $18, $19)";

fn write(c: &mut impl GenericClient, sql: &str, rec: &ImageRecord) -> Result<u64, postgres::Error> {
    let v = Columns::of(rec);
    c.execute(
        sql,
        &[
            &v.id,
            &v.name,
            &v.disk_format,
            &v.container_format,
            &v.visibility,
            &v.owner,
            &v.min_disk,
            &v.min_ram,
            &v.protected,
            &v.tags,
            &v.properties,
            &v.status,
            &v.size,
            &v.checksum,
            &v.os_hash_value,
            &v.created_at,
            &v.updated_at,
            &v.uploader,
            &v.lease_until,
        ],
    )
}

fn exists(id: &str) -> StoreError {
    StoreError::Exists {
        kind: "image record",
        key: id.to_owned(),
    }
}

fn not_found(id: &str) -> StoreError {
    StoreError::NotFound {
        kind: "image record",
        key: id.to_owned(),
    }
}

pub(super) fn add(c: &mut Client, rec: &ImageRecord) -> Result<(), StoreError> {
    let sql = format!("INSERT INTO image_records ({COLUMNS}) VALUES {VALUES}");
    match write(c, &sql, rec) {
        Ok(_) => Ok(()),
        Err(e) if e.code() == Some(&SqlState::UNIQUE_VIOLATION) => Err(exists(&rec.id)),
        Err(e) => Err(e.into()),
    }
}

fn read(
    c: &mut impl GenericClient,
    id: &str,
    lock: &str,
) -> Result<Option<ImageRecord>, StoreError> {
    c.query_opt(
        &format!("SELECT {COLUMNS} FROM image_records WHERE id = $1 {lock}"),
        &[&id],
    )?
    .map(|r| from_row(&r))
    .transpose()
}

pub(super) fn get(c: &mut Client, id: &str) -> Result<ImageRecord, StoreError> {
    read(c, id, "")?.ok_or_else(|| not_found(id))
}

pub(super) fn all(c: &mut Client) -> Result<Vec<ImageRecord>, StoreError> {
    c.query(
        &format!("SELECT {COLUMNS} FROM image_records ORDER BY created_at, id"),
        &[],
    )?
    .iter()
    .map(from_row)
    .collect()
}

pub(super) fn update(
    c: &mut Client,
    id: &str,
    change: &mut RecordChange<'_>,
) -> Result<ImageRecord, StoreError> {
    let mut tx = c.transaction()?;
    let mut rec = read(&mut tx, id, "FOR UPDATE")?.ok_or_else(|| not_found(id))?;
    change(&mut rec).map_err(|problem| StoreError::ImageRecordRefused {
        id: id.to_owned(),
        problem,
    })?;
    rec.id = id.to_owned();
    let sql = format!("UPDATE image_records SET ({COLUMNS}) = ROW {VALUES} WHERE id = $1");
    write(&mut tx, &sql, &rec)?;
    tx.execute(
        "UPDATE images SET name = CASE WHEN $2::TEXT IS NULL OR $2 = '' THEN name ELSE $2 END, \
             visibility = $3 WHERE id = $1",
        &[&rec.id, &rec.name, &rec.visibility.as_str()],
    )?;
    tx.commit()?;
    Ok(rec)
}

pub(super) fn delete(c: &mut Client, id: &str) -> Result<bool, StoreError> {
    Ok(c.execute("DELETE FROM image_records WHERE id = $1", &[&id])? > 0)
}

pub(super) fn end_abandoned(c: &mut Client, now: &str) -> Result<Vec<ImageRecord>, StoreError> {
    c.query(
        &format!(
            "UPDATE image_records SET \
                 status = CASE WHEN EXISTS (SELECT 1 FROM images i WHERE i.id = image_records.id) \
                     THEN 'active' ELSE 'killed' END, \
                 uploader = NULL, lease_until = NULL, updated_at = $1 \
             WHERE status = 'saving' AND (lease_until IS NULL OR lease_until < $1) \
             RETURNING {COLUMNS}"
        ),
        &[&now],
    )?
    .iter()
    .map(from_row)
    .collect()
}
