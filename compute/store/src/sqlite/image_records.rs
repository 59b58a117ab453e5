//! The Image API's records on SQLite (see [`crate::image_record`]).

use crate::image_record::{Columns, COLUMNS};
use crate::{ImageRecord, RecordChange, StoreError};
use rusqlite::{params, Connection, OptionalExtension, Row, Transaction, TransactionBehavior};

/// A write transaction on a shared connection (SQLite serializes writers).
fn immediate(conn: &Connection) -> Result<Transaction<'_>, StoreError> {
    Ok(Transaction::new_unchecked(
        conn,
        TransactionBehavior::Immediate,
    )?)
}

fn from_row(r: &Row<'_>) -> rusqlite::Result<Columns> {
    Ok(Columns {
        id: r.get(0)?,
        name: r.get(1)?,
        disk_format: r.get(2)?,
        container_format: r.get(3)?,
        visibility: r.get(4)?,
        owner: r.get(5)?,
        min_disk: r.get(6)?,
        min_ram: r.get(7)?,
        protected: r.get(8)?,
        tags: r.get(9)?,
        properties: r.get(10)?,
        status: r.get(11)?,
        size: r.get(12)?,
        checksum: r.get(13)?,
        os_hash_value: r.get(14)?,
        created_at: r.get(15)?,
        updated_at: r.get(16)?,
        uploader: r.get(17)?,
        lease_until: r.get(18)?,
    })
}

fn write(conn: &Connection, verb: &str, rec: &ImageRecord) -> rusqlite::Result<usize> {
    let c = Columns::of(rec);
    conn.execute(
        &format!(
            "{verb} INTO image_records ({COLUMNS}) VALUES \
             (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19)"
        ),
        params![
            c.id,
            c.name,
            c.disk_format,
            c.container_format,
            c.visibility,
            c.owner,
            c.min_disk,
            c.min_ram,
            c.protected,
            c.tags,
            c.properties,
            c.status,
            c.size,
            c.checksum,
            c.os_hash_value,
            c.created_at,
            c.updated_at,
            c.uploader,
            c.lease_until
        ],
    )
}

fn exists(kind: &'static str, id: &str) -> StoreError {
    StoreError::Exists {
        kind,
        key: id.to_owned(),
    }
}

fn not_found(id: &str) -> StoreError {
    StoreError::NotFound {
        kind: "image record",
        key: id.to_owned(),
    }
}

pub(super) fn add(conn: &Connection, rec: &ImageRecord) -> Result<(), StoreError> {
    match write(conn, "INSERT", rec) {
        Ok(_) => Ok(()),
        Err(rusqlite::Error::SqliteFailure(e, _))
            if e.code == rusqlite::ErrorCode::ConstraintViolation =>
        {
            Err(exists("image record", &rec.id))
        }
        Err(e) => Err(e.into()),
    }
}

fn read(conn: &Connection, id: &str) -> Result<Option<ImageRecord>, StoreError> {
    conn.query_row(
        &format!("SELECT {COLUMNS} FROM image_records WHERE id = ?1"),
        [id],
        from_row,
    )
    .optional()?
    .map(Columns::into_record)
    .transpose()
}

pub(super) fn get(conn: &Connection, id: &str) -> Result<ImageRecord, StoreError> {
    read(conn, id)?.ok_or_else(|| not_found(id))
}

pub(super) fn all(conn: &Connection) -> Result<Vec<ImageRecord>, StoreError> {
    let mut st = conn.prepare(&format!(
        "SELECT {COLUMNS} FROM image_records ORDER BY created_at, id"
    ))?;
    let rows = st.query_map([], from_row)?;
    rows.map(|r| r?.into_record()).collect()
}

pub(super) fn update(
    conn: &Connection,
    id: &str,
    change: &mut RecordChange<'_>,
) -> Result<ImageRecord, StoreError> {
    let tx = immediate(conn)?;
    let mut rec = read(&tx, id)?.ok_or_else(|| not_found(id))?;
    change(&mut rec).map_err(|problem| StoreError::ImageRecordRefused {
        id: id.to_owned(),
        problem,
    })?;
    // The id is the row's: a change cannot move it.
    rec.id = id.to_owned();
    write(&tx, "REPLACE", &rec)?;
    tx.execute(
        "UPDATE images SET name = CASE WHEN ?2 IS NULL OR ?2 = '' THEN name ELSE ?2 END, \
             visibility = ?3 WHERE id = ?1",
        params![rec.id, rec.name, rec.visibility.as_str()],
    )?;
    tx.commit()?;
    Ok(rec)
}

pub(super) fn delete(conn: &Connection, id: &str) -> Result<bool, StoreError> {
    Ok(conn.execute("DELETE FROM image_records WHERE id = ?1", [id])? > 0)
}

pub(super) fn end_abandoned(conn: &Connection, now: &str) -> Result<Vec<ImageRecord>, StoreError> {
    let tx = immediate(conn)?;
    let ids: Vec<String> = {
        let mut st = tx.prepare(
            "UPDATE image_records SET \
                 status = CASE WHEN EXISTS (SELECT 1 FROM images i WHERE i.id = image_records.id) \
                     THEN 'active' ELSE 'killed' END, \
                 uploader = NULL, lease_until = NULL, updated_at = ?1 \
             WHERE status = 'saving' AND (lease_until IS NULL OR lease_until < ?1) \
             RETURNING id",
        )?;
        let rows = st.query_map([now], |r| r.get(0))?;
        rows.collect::<Result<_, _>>()?
    };
    let ended = ids
        .iter()
        .map(|id| get(&tx, id))
        .collect::<Result<Vec<_>, _>>()?;
    tx.commit()?;
    Ok(ended)
}
