//! Flavors (with Nova's ids, access and extra specs) and per-user keypairs on
//! SQLite.

use crate::records::{ExtraSpecs, FlavorRecord, KeypairRecord};
use crate::StoreError;
use compute::flavor::Flavor;
use compute::keypair::Keypair;
use rusqlite::{params, Connection, OptionalExtension, Row, Transaction, TransactionBehavior};

/// A write transaction on a shared connection (SQLite serializes writers).
fn immediate(conn: &Connection) -> Result<Transaction<'_>, StoreError> {
    Ok(Transaction::new_unchecked(
        conn,
        TransactionBehavior::Immediate,
    )?)
}
use std::collections::BTreeMap;

const FLAVOR_COLUMNS: &str =
    "name, vcpus, ram_mb, disk_gb, ephemeral_gb, swap_mb, flavorid, is_public, description";

fn flavor_from_row(r: &Row<'_>) -> rusqlite::Result<FlavorRecord> {
    Ok(FlavorRecord {
        flavor: Flavor {
            name: r.get(0)?,
            vcpus: r.get(1)?,
            ram_mb: r.get(2)?,
            disk_gb: r.get(3)?,
            ephemeral_gb: r.get(4)?,
            swap_mb: r.get(5)?,
        },
        id: r.get(6)?,
        is_public: r.get(7)?,
        description: r.get(8)?,
        extra_specs: BTreeMap::new(),
    })
}

fn specs_of(conn: &Connection, id: &str) -> Result<ExtraSpecs, StoreError> {
    let mut st = conn.prepare("SELECT key, value FROM flavor_extra_specs WHERE flavorid = ?1")?;
    let rows = st.query_map([id], |r| Ok((r.get(0)?, r.get(1)?)))?;
    Ok(rows.collect::<Result<_, _>>()?)
}

pub(super) fn flavor_records(conn: &Connection) -> Result<Vec<FlavorRecord>, StoreError> {
    let mut st = conn.prepare(&format!(
        "SELECT {FLAVOR_COLUMNS} FROM flavors ORDER BY flavorid"
    ))?;
    let mut all: Vec<FlavorRecord> = st
        .query_map([], flavor_from_row)?
        .collect::<Result<_, _>>()?;
    let mut st = conn.prepare("SELECT flavorid, key, value FROM flavor_extra_specs")?;
    let mut rows = st.query([])?;
    let mut specs: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    while let Some(r) = rows.next()? {
        specs
            .entry(r.get(0)?)
            .or_default()
            .insert(r.get(1)?, r.get(2)?);
    }
    for f in &mut all {
        if let Some(s) = specs.remove(&f.id) {
            f.extra_specs = s;
        }
    }
    Ok(all)
}

pub(super) fn flavor_record(conn: &Connection, key: &str) -> Result<FlavorRecord, StoreError> {
    let by = |column: &str| {
        conn.query_row(
            &format!("SELECT {FLAVOR_COLUMNS} FROM flavors WHERE {column} = ?1"),
            [key],
            flavor_from_row,
        )
        .optional()
    };
    let found = match by("flavorid")? {
        Some(f) => Some(f),
        None => by("name")?,
    };
    let mut f = found.ok_or_else(|| StoreError::NotFound {
        kind: "flavor",
        key: key.to_owned(),
    })?;
    f.extra_specs = specs_of(conn, &f.id)?;
    Ok(f)
}

pub(super) fn insert_flavor(
    conn: &Connection,
    rec: &FlavorRecord,
    or_ignore: bool,
) -> Result<(), StoreError> {
    let f = &rec.flavor;
    let verb = if or_ignore {
        "INSERT OR IGNORE"
    } else {
        "INSERT OR ABORT"
    };
    let res = conn.execute(
        &format!(
            "{verb} INTO flavors ({FLAVOR_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)"
        ),
        params![
            f.name,
            f.vcpus,
            f.ram_mb,
            f.disk_gb,
            f.ephemeral_gb,
            f.swap_mb,
            rec.id,
            rec.is_public,
            rec.description
        ],
    );
    match res {
        Ok(_) => {}
        Err(rusqlite::Error::SqliteFailure(e, _))
            if e.code == rusqlite::ErrorCode::ConstraintViolation =>
        {
            return Err(StoreError::Exists {
                kind: "flavor",
                key: f.name.clone(),
            })
        }
        Err(e) => return Err(e.into()),
    }
    for (k, v) in &rec.extra_specs {
        conn.execute(
            "INSERT OR REPLACE INTO flavor_extra_specs (flavorid, key, value) VALUES (?1, ?2, ?3)",
            params![rec.id, k, v],
        )?;
    }
    Ok(())
}

pub(super) fn create_flavor(conn: &Connection, rec: &FlavorRecord) -> Result<(), StoreError> {
    let tx = immediate(conn)?;
    insert_flavor(&tx, rec, false)?;
    tx.commit()?;
    Ok(())
}

/// Deletes the flavor whose `column` is `key`, and its extra specs.
pub(super) fn delete_flavor(conn: &Connection, column: &str, key: &str) -> Result<(), StoreError> {
    let tx = immediate(conn)?;
    let id: Option<String> = tx
        .query_row(
            &format!("SELECT flavorid FROM flavors WHERE {column} = ?1"),
            [key],
            |r| r.get(0),
        )
        .optional()?;
    let Some(id) = id else {
        return Err(StoreError::NotFound {
            kind: "flavor",
            key: key.to_owned(),
        });
    };
    tx.execute("DELETE FROM flavor_extra_specs WHERE flavorid = ?1", [&id])?;
    tx.execute("DELETE FROM flavors WHERE flavorid = ?1", [&id])?;
    tx.commit()?;
    Ok(())
}

pub(super) fn set_extra_specs(
    conn: &Connection,
    id: &str,
    specs: &ExtraSpecs,
) -> Result<ExtraSpecs, StoreError> {
    let tx = immediate(conn)?;
    let exists: Option<i64> = tx
        .query_row("SELECT 1 FROM flavors WHERE flavorid = ?1", [id], |r| {
            r.get(0)
        })
        .optional()?;
    if exists.is_none() {
        return Err(StoreError::NotFound {
            kind: "flavor",
            key: id.to_owned(),
        });
    }
    for (k, v) in specs {
        tx.execute(
            "INSERT OR REPLACE INTO flavor_extra_specs (flavorid, key, value) VALUES (?1, ?2, ?3)",
            params![id, k, v],
        )?;
    }
    let all = specs_of(&tx, id)?;
    tx.commit()?;
    Ok(all)
}

pub(super) fn delete_extra_spec(conn: &Connection, id: &str, key: &str) -> Result<(), StoreError> {
    let n = conn.execute(
        "DELETE FROM flavor_extra_specs WHERE flavorid = ?1 AND key = ?2",
        [id, key],
    )?;
    if n == 0 {
        return Err(StoreError::NotFound {
            kind: "extra spec",
            key: format!("{id}/{key}"),
        });
    }
    Ok(())
}

const KEYPAIR_COLUMNS: &str = "id, user_id, name, public_key, fingerprint, created_at";

fn keypair_from_row(r: &Row<'_>) -> rusqlite::Result<KeypairRecord> {
    Ok(KeypairRecord {
        id: r.get::<_, i64>(0)?.max(0) as u64,
        user_id: r.get(1)?,
        keypair: Keypair {
            name: r.get(2)?,
            public_key: r.get(3)?,
            fingerprint: r.get(4)?,
        },
        created_at: r.get(5)?,
    })
}

pub(super) fn add_keypair(
    conn: &Connection,
    user_id: &str,
    k: &Keypair,
    created_at: &str,
) -> Result<KeypairRecord, StoreError> {
    let n = conn.execute(
        "INSERT OR IGNORE INTO keypairs (user_id, name, public_key, fingerprint, created_at) \
         VALUES (?1, ?2, ?3, ?4, ?5)",
        params![user_id, k.name, k.public_key, k.fingerprint, created_at],
    )?;
    if n == 0 {
        return Err(StoreError::Exists {
            kind: "keypair",
            key: k.name.clone(),
        });
    }
    keypair(conn, user_id, &k.name)
}

pub(super) fn keypairs(conn: &Connection, user_id: &str) -> Result<Vec<KeypairRecord>, StoreError> {
    let mut st = conn.prepare(&format!(
        "SELECT {KEYPAIR_COLUMNS} FROM keypairs WHERE user_id = ?1 ORDER BY name"
    ))?;
    let rows = st.query_map([user_id], keypair_from_row)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

pub(super) fn keypair(
    conn: &Connection,
    user_id: &str,
    name: &str,
) -> Result<KeypairRecord, StoreError> {
    conn.query_row(
        &format!("SELECT {KEYPAIR_COLUMNS} FROM keypairs WHERE user_id = ?1 AND name = ?2"),
        [user_id, name],
        keypair_from_row,
    )
    .optional()?
    .ok_or_else(|| StoreError::NotFound {
        kind: "keypair",
        key: name.to_owned(),
    })
}

pub(super) fn delete_keypair(
    conn: &Connection,
    user_id: &str,
    name: &str,
) -> Result<(), StoreError> {
    match conn.execute(
        "DELETE FROM keypairs WHERE user_id = ?1 AND name = ?2",
        [user_id, name],
    )? {
        0 => Err(StoreError::NotFound {
            kind: "keypair",
            key: name.to_owned(),
        }),
        _ => Ok(()),
    }
}
