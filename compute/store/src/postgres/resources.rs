//! Flavors (with Nova's ids, access and extra specs) and per-user keypairs on
//! PostgreSQL.

use super::conn::col;
use crate::records::{ExtraSpecs, FlavorRecord, KeypairRecord};
use crate::StoreError;
use compute::flavor::Flavor;
use compute::keypair::Keypair;
use postgres::error::SqlState;
use postgres::{Client, GenericClient, Row};
use std::collections::BTreeMap;

const FLAVOR_COLUMNS: &str =
    "name, vcpus, ram_mb, disk_gb, ephemeral_gb, swap_mb, flavorid, is_public, description";

fn flavor_from_row(r: &Row) -> Result<FlavorRecord, StoreError> {
    let n = |i| -> Result<u32, StoreError> {
        let v: i64 = col(r, i)?;
        u32::try_from(v).map_err(|_| StoreError::Corrupt {
            what: "flavor",
            key: r.try_get::<_, String>(0).unwrap_or_default(),
            problem: format!("column {i} is {v}"),
        })
    };
    Ok(FlavorRecord {
        flavor: Flavor {
            name: col(r, 0)?,
            vcpus: n(1)?,
            ram_mb: n(2)?,
            disk_gb: n(3)?,
            ephemeral_gb: n(4)?,
            swap_mb: n(5)?,
        },
        id: col(r, 6)?,
        is_public: col(r, 7)?,
        description: col(r, 8)?,
        extra_specs: BTreeMap::new(),
    })
}

fn specs_of(c: &mut impl GenericClient, id: &str) -> Result<ExtraSpecs, StoreError> {
    c.query(
        "SELECT key, value FROM flavor_extra_specs WHERE flavorid = $1",
        &[&id],
    )?
    .iter()
    .map(|r| Ok((col(r, 0)?, col(r, 1)?)))
    .collect()
}

pub(super) fn flavor_records(c: &mut Client) -> Result<Vec<FlavorRecord>, StoreError> {
    let mut all: Vec<FlavorRecord> = c
        .query(
            &format!("SELECT {FLAVOR_COLUMNS} FROM flavors ORDER BY flavorid"),
            &[],
        )?
        .iter()
        .map(flavor_from_row)
        .collect::<Result<_, _>>()?;
    let mut specs: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    for r in c.query("SELECT flavorid, key, value FROM flavor_extra_specs", &[])? {
        specs
            .entry(col(&r, 0)?)
            .or_default()
            .insert(col(&r, 1)?, col(&r, 2)?);
    }
    for f in &mut all {
        if let Some(s) = specs.remove(&f.id) {
            f.extra_specs = s;
        }
    }
    Ok(all)
}

pub(super) fn flavor_record(c: &mut Client, key: &str) -> Result<FlavorRecord, StoreError> {
    let row = c.query_opt(
        &format!(
            "SELECT {FLAVOR_COLUMNS} FROM flavors WHERE flavorid = $1 OR name = $1 \
             ORDER BY flavorid = $1 DESC LIMIT 1"
        ),
        &[&key],
    )?;
    let mut f = match row {
        Some(r) => flavor_from_row(&r)?,
        None => {
            return Err(StoreError::NotFound {
                kind: "flavor",
                key: key.to_owned(),
            })
        }
    };
    f.extra_specs = specs_of(c, &f.id)?;
    Ok(f)
}

pub(super) fn insert_flavor(
    c: &mut impl GenericClient,
    rec: &FlavorRecord,
    or_ignore: bool,
) -> Result<(), StoreError> {
    let f = &rec.flavor;
    let conflict = if or_ignore {
        "ON CONFLICT DO NOTHING"
    } else {
        ""
    };
    let res = c.execute(
        &format!(
            "INSERT INTO flavors ({FLAVOR_COLUMNS}) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) {conflict}"
        ),
        &[
            &f.name,
            &i64::from(f.vcpus),
            &i64::from(f.ram_mb),
            &i64::from(f.disk_gb),
            &i64::from(f.ephemeral_gb),
            &i64::from(f.swap_mb),
            &rec.id,
            &rec.is_public,
            &rec.description,
        ],
    );
    match res {
        Ok(_) => {}
        Err(e) if e.code() == Some(&SqlState::UNIQUE_VIOLATION) => {
            return Err(StoreError::Exists {
                kind: "flavor",
                key: f.name.clone(),
            })
        }
        Err(e) => return Err(e.into()),
    }
    for (k, v) in &rec.extra_specs {
        upsert_spec(c, &rec.id, k, v)?;
    }
    Ok(())
}

fn upsert_spec(
    c: &mut impl GenericClient,
    id: &str,
    key: &str,
    value: &str,
) -> Result<(), StoreError> {
    c.execute(
        "INSERT INTO flavor_extra_specs (flavorid, key, value) VALUES ($1, $2, $3) \
         ON CONFLICT (flavorid, key) DO UPDATE SET value = EXCLUDED.value",
        &[&id, &key, &value],
    )?;
    Ok(())
}

pub(super) fn create_flavor(c: &mut Client, rec: &FlavorRecord) -> Result<(), StoreError> {
    let mut tx = c.transaction()?;
    insert_flavor(&mut tx, rec, false)?;
    tx.commit()?;
    Ok(())
}

/// Deletes the flavor whose `column` is `key`, and its extra specs.
pub(super) fn delete_flavor(c: &mut Client, column: &str, key: &str) -> Result<(), StoreError> {
    let mut tx = c.transaction()?;
    let row = tx.query_opt(
        &format!("DELETE FROM flavors WHERE {column} = $1 RETURNING flavorid"),
        &[&key],
    )?;
    let Some(row) = row else {
        return Err(StoreError::NotFound {
            kind: "flavor",
            key: key.to_owned(),
        });
    };
    let id: String = col(&row, 0)?;
    tx.execute("DELETE FROM flavor_extra_specs WHERE flavorid = $1", &[&id])?;
    tx.commit()?;
    Ok(())
}

pub(super) fn set_extra_specs(
    c: &mut Client,
    id: &str,
    specs: &ExtraSpecs,
) -> Result<ExtraSpecs, StoreError> {
    let mut tx = c.transaction()?;
    // The flavor row locked: a deletion cannot slip between the check and the writes.
    if tx
        .query_opt(
            "SELECT 1 FROM flavors WHERE flavorid = $1 FOR UPDATE",
            &[&id],
        )?
        .is_none()
    {
        return Err(StoreError::NotFound {
            kind: "flavor",
            key: id.to_owned(),
        });
    }
    for (k, v) in specs {
        upsert_spec(&mut tx, id, k, v)?;
    }
    let all = specs_of(&mut tx, id)?;
    tx.commit()?;
    Ok(all)
}

pub(super) fn delete_extra_spec(c: &mut Client, id: &str, key: &str) -> Result<(), StoreError> {
    let n = c.execute(
        "DELETE FROM flavor_extra_specs WHERE flavorid = $1 AND key = $2",
        &[&id, &key],
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

fn keypair_from_row(r: &Row) -> Result<KeypairRecord, StoreError> {
    Ok(KeypairRecord {
        id: col::<i64>(r, 0)?.max(0) as u64,
        user_id: col(r, 1)?,
        keypair: Keypair {
            name: col(r, 2)?,
            public_key: col(r, 3)?,
            fingerprint: col(r, 4)?,
        },
        created_at: col(r, 5)?,
    })
}

pub(super) fn add_keypair(
    c: &mut Client,
    user_id: &str,
    k: &Keypair,
    created_at: &str,
) -> Result<KeypairRecord, StoreError> {
    let row = c.query_opt(
        &format!(
            "INSERT INTO keypairs (user_id, name, public_key, fingerprint, created_at) \
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT (user_id, name) DO NOTHING \
             RETURNING {KEYPAIR_COLUMNS}"
        ),
        &[
            &user_id,
            &k.name,
            &k.public_key,
            &k.fingerprint,
            &created_at,
        ],
    )?;
    match row {
        Some(r) => keypair_from_row(&r),
        None => Err(StoreError::Exists {
            kind: "keypair",
            key: k.name.clone(),
        }),
    }
}

pub(super) fn keypairs(c: &mut Client, user_id: &str) -> Result<Vec<KeypairRecord>, StoreError> {
    c.query(
        &format!("SELECT {KEYPAIR_COLUMNS} FROM keypairs WHERE user_id = $1 ORDER BY name"),
        &[&user_id],
    )?
    .iter()
    .map(keypair_from_row)
    .collect()
}

pub(super) fn keypair(
    c: &mut Client,
    user_id: &str,
    name: &str,
) -> Result<KeypairRecord, StoreError> {
    match c.query_opt(
        &format!("SELECT {KEYPAIR_COLUMNS} FROM keypairs WHERE user_id = $1 AND name = $2"),
        &[&user_id, &name],
    )? {
        Some(r) => keypair_from_row(&r),
        None => Err(StoreError::NotFound {
            kind: "keypair",
            key: name.to_owned(),
        }),
    }
}

pub(super) fn delete_keypair(c: &mut Client, user_id: &str, name: &str) -> Result<(), StoreError> {
    let n = c.execute(
        "DELETE FROM keypairs WHERE user_id = $1 AND name = $2",
        &[&user_id, &name],
    )?;
    match n {
        0 => Err(StoreError::NotFound {
            kind: "keypair",
            key: name.to_owned(),
        }),
        _ => Ok(()),
    }
}
