//! Instance rows on PostgreSQL: insert (placement, IP and MAC allocation in one
//! transaction serialized on the network row), lookups, the light listing, state
//! and document updates, passwords and tombstones.

use super::conn::col;
use super::hosts;
use crate::records::{amount, one_of, parse_state, InstanceRow, PasswordSet, INSTANCE_COLUMNS};
use crate::{FaultChange, InstanceRecord, InstanceSummary, NewInstance, StoreError, WorkAction};
use compute::lifecycle::State;
use compute::mac::MacAddr;
use compute::netalloc::{self, Subnet};
use compute::placement::{self, HostState, Resources};
use postgres::types::ToSql;
use postgres::{Client, GenericClient, Row};
use std::collections::HashSet;
use std::net::Ipv4Addr;
use std::time::Duration;

const SUMMARY_SELECT: &str =
    "SELECT uuid, name, host, vm_state, task_state, power_state, fixed_ip, pid, project_id FROM instances";

fn instance_from_row(r: &Row) -> Result<InstanceRecord, StoreError> {
    InstanceRow {
        uuid: col(r, 0)?,
        name: col(r, 1)?,
        host: col(r, 2)?,
        flavor: col(r, 3)?,
        image_id: col(r, 4)?,
        key_name: col(r, 5)?,
        vm_state: col(r, 6)?,
        task_state: col(r, 7)?,
        power_state: col(r, 8)?,
        fixed_ip: col(r, 9)?,
        mac: col(r, 10)?,
        ssh_port: col(r, 11)?,
        pid: col(r, 12)?,
        fault: col(r, 13)?,
        document: col(r, 14)?,
        created_at: col(r, 15)?,
        updated_at: col(r, 16)?,
        rev: col(r, 17)?,
        project_id: col(r, 18)?,
        user_id: col(r, 19)?,
    }
    .into_record()
}

/// Records the instance and, when given, queues `work` for its host, in one
/// transaction.
pub(super) fn insert(
    c: &mut Client,
    subnet: Subnet,
    new: &NewInstance<'_>,
    work: Option<&WorkAction>,
) -> Result<(InstanceRecord, Option<u64>), StoreError> {
    let mut tx = c.transaction()?;
    // One insert at a time: each sees every earlier one's host usage and addresses.
    tx.query_one(
        "SELECT value FROM meta WHERE key = 'network_cidr' FOR UPDATE",
        &[],
    )?;
    // Hosts cannot be disabled (or the image deleted) until this one commits.
    tx.query("SELECT name FROM hosts ORDER BY name FOR SHARE", &[])?;
    tx.query(
        "SELECT id FROM images WHERE id = $1 FOR SHARE",
        &[&new.image_id],
    )?;
    let states: Vec<HostState> = hosts::all(&mut tx)?
        .iter()
        .map(|h| h.placement_state())
        .collect();
    let want = Resources::of_flavor(new.flavor);
    let host = placement::place(&states, &want, new.host, new.up_timeout)?
        .name
        .clone();
    let mut ips = HashSet::new();
    let mut macs = HashSet::new();
    for r in tx.query("SELECT fixed_ip, mac FROM instances", &[])? {
        if let Ok(ip) = col::<String>(&r, 0)?.parse::<Ipv4Addr>() {
            ips.insert(ip);
        }
        if let Ok(mac) = col::<String>(&r, 1)?.parse::<MacAddr>() {
            macs.insert(mac);
        }
    }
    let ip = subnet.allocate_ip(&ips)?;
    let mac = netalloc::allocate_mac(&macs, new.mac_candidates.iter().copied())?;
    let document = (new.document)(ip, mac).map_err(|problem| StoreError::DocumentRefused {
        uuid: new.uuid.to_owned(),
        problem,
    })?;
    let state = State::building();
    let flavor = serde_json::to_string(new.flavor).map_err(|e| StoreError::Corrupt {
        what: "flavor",
        key: new.flavor.name.clone(),
        problem: e.to_string(),
    })?;
    tx.execute(
        "INSERT INTO instances (uuid, name, flavor, image_id, key_name, vm_state, task_state, \
         power_state, fixed_ip, mac, document, created_at, updated_at, host, vcpus, ram_mb, disk_gb, \
         project_id, user_id) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $12, $13, $14, $15, $16, $17, $18)",
        &[
            &new.uuid,
            &new.name,
            &flavor,
            &new.image_id,
            &new.key_name,
            &state.vm.as_str(),
            &state.task.map(|t| t.as_str()),
            &state.power.as_str(),
            &ip.to_string(),
            &mac.to_string(),
            &document,
            &new.now,
            &host,
            &amount(want.vcpus),
            &amount(want.ram_mb),
            &amount(want.disk_gb),
            &new.project_id,
            &new.user_id,
        ],
    )?;
    let rec = by_uuid(&mut tx, new.uuid)?;
    let id = match work {
        Some(action) => Some(hosts::enqueue(&mut tx, &host, new.uuid, action)?),
        None => None,
    };
    tx.commit()?;
    Ok((rec, id))
}

pub(super) fn by_uuid(
    c: &mut impl GenericClient,
    uuid: &str,
) -> Result<InstanceRecord, StoreError> {
    match c.query_opt(
        &format!("SELECT {INSTANCE_COLUMNS} FROM instances WHERE uuid = $1"),
        &[&uuid],
    )? {
        Some(r) => instance_from_row(&r),
        None => Err(StoreError::NotFound {
            kind: "instance",
            key: uuid.to_owned(),
        }),
    }
}

/// An instance by uuid, or by name when exactly one has it; `lock` takes its row
/// for the rest of the transaction.
fn find_with(
    c: &mut impl GenericClient,
    key: &str,
    lock: bool,
) -> Result<InstanceRecord, StoreError> {
    let lock = if lock { "FOR UPDATE" } else { "" };
    let found: Vec<InstanceRecord> = c
        .query(
            &format!(
                "SELECT {INSTANCE_COLUMNS} FROM instances WHERE uuid = $1 OR name = $1 \
                 ORDER BY created_at {lock}"
            ),
            &[&key],
        )?
        .iter()
        .map(instance_from_row)
        .collect::<Result<_, _>>()?;
    if let Some(exact) = found.iter().find(|i| i.uuid == key) {
        return Ok(exact.clone());
    }
    one_of("instance", key, found, |i| i.uuid.clone())
}

pub(super) fn find(c: &mut Client, key: &str) -> Result<InstanceRecord, StoreError> {
    find_with(c, key, false)
}

fn summaries(
    c: &mut Client,
    sql: &str,
    params: &[&(dyn ToSql + Sync)],
) -> Result<Vec<InstanceSummary>, StoreError> {
    let mut out = Vec::new();
    for r in c.query(sql, params)? {
        let uuid: String = col(&r, 0)?;
        let (vm, task, power): (String, Option<String>, String) =
            (col(&r, 3)?, col(&r, 4)?, col(&r, 5)?);
        let state = parse_state(&vm, task.as_deref(), &power, &uuid)?;
        let pid: Option<i64> = col(&r, 7)?;
        out.push(InstanceSummary {
            name: col(&r, 1)?,
            host: col(&r, 2)?,
            state,
            fixed_ip: col(&r, 6)?,
            pid: pid.and_then(|p| i32::try_from(p).ok()),
            project_id: col(&r, 8)?,
            uuid,
        });
    }
    Ok(out)
}

pub(super) fn list(c: &mut Client) -> Result<Vec<InstanceSummary>, StoreError> {
    summaries(
        c,
        &format!("{SUMMARY_SELECT} ORDER BY created_at, uuid"),
        &[],
    )
}

/// Every instance with its document (of `project`, or all), oldest first.
pub(super) fn records(
    c: &mut Client,
    project: Option<&str>,
) -> Result<Vec<InstanceRecord>, StoreError> {
    c.query(
        &format!(
            "SELECT {INSTANCE_COLUMNS} FROM instances \
             WHERE $1::text IS NULL OR project_id = $1 ORDER BY created_at, uuid"
        ),
        &[&project],
    )?
    .iter()
    .map(instance_from_row)
    .collect()
}

/// A filter's parameters as the client binds them.
fn bound(f: &crate::query::Filter) -> Vec<&(dyn postgres::types::ToSql + Sync)> {
    f.params
        .iter()
        .map(|p| p as &(dyn postgres::types::ToSql + Sync))
        .collect()
}

pub(super) fn page(
    c: &mut Client,
    q: &crate::InstanceQuery<'_>,
) -> Result<Vec<InstanceRecord>, StoreError> {
    use crate::query::{marker_sql, page_sql, Dialect};
    // One snapshot: the marker checked is the marker paged after.
    let mut tx = c
        .build_transaction()
        .isolation_level(postgres::IsolationLevel::RepeatableRead)
        .read_only(true)
        .start()?;
    if let Some(m) = q.marker {
        let f = marker_sql(q, m, Dialect::Postgres);
        if tx.query_opt(&f.sql, &bound(&f))?.is_none() {
            return Err(StoreError::NotFound {
                kind: "marker",
                key: m.to_owned(),
            });
        }
    }
    let f = page_sql(INSTANCE_COLUMNS, q, Dialect::Postgres);
    let out = tx
        .query(&f.sql, &bound(&f))?
        .iter()
        .map(instance_from_row)
        .collect::<Result<Vec<_>, _>>()?;
    tx.commit()?;
    Ok(out)
}

pub(super) fn claiming_processes(
    c: &mut Client,
    host: &str,
) -> Result<Vec<InstanceSummary>, StoreError> {
    summaries(
        c,
        &format!(
            "{SUMMARY_SELECT} WHERE host = $1 \
             AND (pid IS NOT NULL OR task_state IS NOT NULL OR power_state != 'shutdown')"
        ),
        &[&host],
    )
}

pub(super) fn set_state(
    c: &mut Client,
    uuid: &str,
    state: State,
    fault: FaultChange<'_>,
    now: &str,
) -> Result<(), StoreError> {
    let fault_json = match fault {
        FaultChange::Keep => None,
        FaultChange::Clear => Some(None),
        FaultChange::Set(f) => Some(Some(serde_json::to_string(f).map_err(|e| {
            StoreError::Corrupt {
                what: "fault",
                key: uuid.to_owned(),
                problem: e.to_string(),
            }
        })?)),
    };
    let n = c.execute(
        "UPDATE instances SET vm_state = $2, task_state = $3, power_state = $4, updated_at = $5, \
         fault = CASE WHEN $6 THEN $7 ELSE fault END \
         WHERE uuid = $1",
        &[
            &uuid,
            &state.vm.as_str(),
            &state.task.map(|t| t.as_str()),
            &state.power.as_str(),
            &now,
            &fault_json.is_some(),
            &fault_json.flatten(),
        ],
    )?;
    super::not_found(n, "instance", uuid)
}

pub(super) fn update_document(
    c: &mut Client,
    key: &str,
    now: &str,
    change: &dyn Fn(&str) -> Result<String, crate::DocumentProblem>,
) -> Result<InstanceRecord, StoreError> {
    let mut tx = c.transaction()?;
    let rec = find_with(&mut tx, key, true)?;
    let document = change(&rec.document).map_err(|problem| StoreError::DocumentRefused {
        uuid: rec.uuid.clone(),
        problem,
    })?;
    // The update takes the revision row (its trigger), which every writer of
    // instances waits for until this transaction ends: the new row comes back with
    // it, with no further round trip before the commit.
    let row = tx.query_one(
        &format!(
            "UPDATE instances SET document = $2, updated_at = $3, name = $4 WHERE uuid = $1 \
             RETURNING {INSTANCE_COLUMNS}"
        ),
        &[
            &rec.uuid,
            &document,
            &now,
            &crate::records::document_name(&document, &rec.name),
        ],
    )?;
    let rec = instance_from_row(&row)?;
    tx.commit()?;
    Ok(rec)
}

pub(super) fn purge_tombstones(c: &mut Client, grace: Duration) -> Result<u64, StoreError> {
    let mut tx = c.transaction()?;
    let newest: Option<i64> = col(
        &tx.query_one(
            "SELECT MAX(rev) FROM tombstones WHERE deleted_at <= now() - make_interval(secs => $1)",
            &[&grace.as_secs_f64()],
        )?,
        0,
    )?;
    let Some(newest) = newest else {
        return Ok(0);
    };
    let n = tx.execute("DELETE FROM tombstones WHERE rev <= $1", &[&newest])?;
    tx.execute(
        "UPDATE revision SET purged_rev = GREATEST(purged_rev, $1)",
        &[&newest],
    )?;
    tx.commit()?;
    Ok(n)
}

fn exists(c: &mut impl GenericClient, uuid: &str) -> Result<(), StoreError> {
    match c.query_opt("SELECT 1 FROM instances WHERE uuid = $1", &[&uuid])? {
        Some(_) => Ok(()),
        None => Err(StoreError::NotFound {
            kind: "instance",
            key: uuid.to_owned(),
        }),
    }
}

pub(super) fn password(c: &mut Client, uuid: &str) -> Result<Option<String>, StoreError> {
    match c.query_opt("SELECT password FROM instances WHERE uuid = $1", &[&uuid])? {
        Some(r) => col(&r, 0),
        None => Err(StoreError::NotFound {
            kind: "instance",
            key: uuid.to_owned(),
        }),
    }
}

pub(super) fn set_password(
    c: &mut Client,
    uuid: &str,
    password: &str,
) -> Result<PasswordSet, StoreError> {
    let n = c.execute(
        "UPDATE instances SET password = $2 WHERE uuid = $1 AND password IS NULL",
        &[&uuid, &password],
    )?;
    if n == 1 {
        return Ok(PasswordSet::Set);
    }
    exists(c, uuid)?;
    Ok(PasswordSet::AlreadySet)
}

pub(super) fn clear_password(c: &mut Client, uuid: &str) -> Result<bool, StoreError> {
    let n = c.execute(
        "UPDATE instances SET password = NULL WHERE uuid = $1 AND password IS NOT NULL",
        &[&uuid],
    )?;
    if n == 1 {
        return Ok(true);
    }
    exists(c, uuid)?;
    Ok(false)
}
