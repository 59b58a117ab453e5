//! Instance rows: insert (placement, IP and MAC allocation in the same
//! transaction), lookups by uuid or name, the light listing, state and document
//! updates, passwords and tombstones.

use super::hosts;
use crate::records::{amount, one_of, parse_state, InstanceRow, PasswordSet, INSTANCE_COLUMNS};
use crate::{FaultChange, InstanceRecord, InstanceSummary, NewInstance, StoreError, WorkAction};
use compute::lifecycle::State;
use compute::mac::MacAddr;
use compute::netalloc::{self, Subnet};
use compute::placement::{self, HostState, Resources};
use rusqlite::{params, Connection, OptionalExtension, Row, TransactionBehavior};
use std::collections::HashSet;
use std::net::Ipv4Addr;
use std::time::Duration;

/// The columns every instance summary is read from, in `summaries`' order.
const SUMMARY_SELECT: &str =
    "SELECT uuid, name, host, vm_state, task_state, power_state, fixed_ip, pid, project_id FROM instances";

fn instance_from_row(row: &Row<'_>) -> rusqlite::Result<Result<InstanceRecord, StoreError>> {
    let raw = InstanceRow {
        uuid: row.get(0)?,
        name: row.get(1)?,
        host: row.get(2)?,
        flavor: row.get(3)?,
        image_id: row.get(4)?,
        key_name: row.get(5)?,
        vm_state: row.get(6)?,
        task_state: row.get(7)?,
        power_state: row.get(8)?,
        fixed_ip: row.get(9)?,
        mac: row.get(10)?,
        ssh_port: row.get(11)?,
        pid: row.get(12)?,
        fault: row.get(13)?,
        document: row.get(14)?,
        created_at: row.get(15)?,
        updated_at: row.get(16)?,
        rev: row.get(17)?,
        project_id: row.get(18)?,
        user_id: row.get(19)?,
    };
    Ok(raw.into_record())
}

/// Records a new instance (building/spawning), allocating its fixed IP and MAC in
/// the same transaction, and queues `work` for its host when given.
pub(super) fn insert(
    conn: &mut Connection,
    subnet: Subnet,
    new: &NewInstance<'_>,
    work: Option<&WorkAction>,
) -> Result<(InstanceRecord, Option<u64>), StoreError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let states: Vec<HostState> = hosts::all(&tx)?
        .iter()
        .map(|h| h.placement_state())
        .collect();
    let want = Resources::of_flavor(new.flavor);
    let host = placement::place(&states, &want, new.host, new.up_timeout)?
        .name
        .clone();
    let (ips, macs) = {
        let mut st = tx.prepare("SELECT fixed_ip, mac FROM instances")?;
        let mut ips = HashSet::new();
        let mut macs = HashSet::new();
        let mut rows = st.query([])?;
        while let Some(r) = rows.next()? {
            if let Ok(ip) = r.get::<_, String>(0)?.parse::<Ipv4Addr>() {
                ips.insert(ip);
            }
            if let Ok(mac) = r.get::<_, String>(1)?.parse::<MacAddr>() {
                macs.insert(mac);
            }
        }
        (ips, macs)
    };
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
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?12, ?13, ?14, ?15, ?16, ?17, ?18)",
            params![
                new.uuid,
                new.name,
                flavor,
                new.image_id,
                new.key_name,
                state.vm.as_str(),
                state.task.map(|t| t.as_str()),
                state.power.as_str(),
                ip.to_string(),
                mac.to_string(),
                document,
                new.now,
                host,
                amount(want.vcpus),
                amount(want.ram_mb),
                amount(want.disk_gb),
                new.project_id,
                new.user_id
            ],
        )?;
    let id = match work {
        Some(action) => Some(hosts::enqueue(&tx, &host, new.uuid, action)?),
        None => None,
    };
    tx.commit()?;
    Ok((by_uuid(conn, new.uuid)?, id))
}

pub(super) fn by_uuid(conn: &Connection, uuid: &str) -> Result<InstanceRecord, StoreError> {
    conn.query_row(
        &format!("SELECT {INSTANCE_COLUMNS} FROM instances WHERE uuid = ?1"),
        [uuid],
        instance_from_row,
    )
    .optional()?
    .ok_or_else(|| StoreError::NotFound {
        kind: "instance",
        key: uuid.to_owned(),
    })?
}

/// An instance by uuid, or by name when exactly one has it (as `nova` resolves).
pub(super) fn find(conn: &Connection, key: &str) -> Result<InstanceRecord, StoreError> {
    let mut st = conn.prepare(&format!(
        "SELECT {INSTANCE_COLUMNS} FROM instances WHERE uuid = ?1 OR name = ?1 ORDER BY created_at"
    ))?;
    let found: Vec<InstanceRecord> = st
        .query_map([key], instance_from_row)?
        .collect::<Result<Result<Vec<_>, _>, _>>()??;
    if let Some(exact) = found.iter().find(|i| i.uuid == key) {
        return Ok(exact.clone());
    }
    one_of("instance", key, found, |i| i.uuid.clone())
}

pub(super) fn list(conn: &Connection) -> Result<Vec<InstanceSummary>, StoreError> {
    summaries(
        conn,
        &format!("{SUMMARY_SELECT} ORDER BY created_at, uuid"),
        [],
    )
}

/// Every instance with its document (of `project`, or all), oldest first.
pub(super) fn records(
    conn: &Connection,
    project: Option<&str>,
) -> Result<Vec<InstanceRecord>, StoreError> {
    let mut st = conn.prepare(&format!(
        "SELECT {INSTANCE_COLUMNS} FROM instances \
         WHERE ?1 IS NULL OR project_id = ?1 ORDER BY created_at, uuid"
    ))?;
    let rows = st.query_map([project], instance_from_row)?;
    let mut out = Vec::new();
    for r in rows {
        out.push(r??);
    }
    Ok(out)
}

pub(super) fn page(
    conn: &Connection,
    q: &crate::InstanceQuery<'_>,
) -> Result<Vec<InstanceRecord>, StoreError> {
    use crate::query::{marker_sql, page_sql, Dialect};
    // One read snapshot: the marker checked is the marker paged after.
    let tx = rusqlite::Transaction::new_unchecked(conn, rusqlite::TransactionBehavior::Deferred)?;
    if let Some(m) = q.marker {
        let f = marker_sql(q, m, Dialect::Sqlite);
        let found = tx
            .query_row(&f.sql, rusqlite::params_from_iter(&f.params), |_| Ok(()))
            .optional()?;
        if found.is_none() {
            return Err(StoreError::NotFound {
                kind: "marker",
                key: m.to_owned(),
            });
        }
    }
    let f = page_sql(INSTANCE_COLUMNS, q, Dialect::Sqlite);
    let mut out = Vec::new();
    {
        let mut st = tx.prepare(&f.sql)?;
        let rows = st.query_map(rusqlite::params_from_iter(&f.params), instance_from_row)?;
        for r in rows {
            out.push(r??);
        }
    }
    tx.commit()?;
    Ok(out)
}

pub(super) fn claiming_processes(
    conn: &Connection,
    host: &str,
) -> Result<Vec<InstanceSummary>, StoreError> {
    let sql = format!(
        "{SUMMARY_SELECT} WHERE host = ?1 \
         AND (pid IS NOT NULL OR task_state IS NOT NULL OR power_state != 'shutdown')"
    );
    summaries(conn, &sql, [host])
}

/// The summaries a `SUMMARY_SELECT` query returns.
fn summaries(
    conn: &Connection,
    sql: &str,
    params: impl rusqlite::Params,
) -> Result<Vec<InstanceSummary>, StoreError> {
    let mut st = conn.prepare(sql)?;
    let mut out = Vec::new();
    let mut rows = st.query(params)?;
    while let Some(r) = rows.next()? {
        let uuid: String = r.get(0)?;
        let (vm, task, power): (String, Option<String>, String) = (r.get(3)?, r.get(4)?, r.get(5)?);
        let state = parse_state(&vm, task.as_deref(), &power, &uuid)?;
        out.push(InstanceSummary {
            uuid,
            name: r.get(1)?,
            host: r.get(2)?,
            state,
            fixed_ip: r.get(6)?,
            pid: r.get(7)?,
            project_id: r.get(8)?,
        });
    }
    Ok(out)
}

pub(super) fn set_state(
    conn: &Connection,
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
    let n = conn.execute(
        "UPDATE instances SET vm_state = ?2, task_state = ?3, power_state = ?4, updated_at = ?5,
                 fault = CASE WHEN ?6 THEN ?7 ELSE fault END
             WHERE uuid = ?1",
        params![
            uuid,
            state.vm.as_str(),
            state.task.map(|t| t.as_str()),
            state.power.as_str(),
            now,
            fault_json.is_some(),
            fault_json.flatten()
        ],
    )?;
    match n {
        0 => Err(StoreError::NotFound {
            kind: "instance",
            key: uuid.to_owned(),
        }),
        _ => Ok(()),
    }
}

pub(super) fn set_runtime(
    conn: &Connection,
    uuid: &str,
    pid: Option<i32>,
    ssh_port: Option<u16>,
) -> Result<(), StoreError> {
    conn.execute(
        "UPDATE instances SET pid = ?2, ssh_port = ?3 WHERE uuid = ?1",
        params![uuid, pid, ssh_port],
    )?;
    Ok(())
}

pub(super) fn set_document(
    conn: &Connection,
    uuid: &str,
    image_id: &str,
    document: &str,
) -> Result<(), StoreError> {
    conn.execute(
        "UPDATE instances SET image_id = ?2, document = ?3 WHERE uuid = ?1",
        params![uuid, image_id, document],
    )?;
    Ok(())
}

pub(super) fn update_document(
    conn: &mut Connection,
    key: &str,
    now: &str,
    change: &dyn Fn(&str) -> Result<String, crate::DocumentProblem>,
) -> Result<InstanceRecord, StoreError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let rec = find(&tx, key)?;
    let document = change(&rec.document).map_err(|problem| StoreError::DocumentRefused {
        uuid: rec.uuid.clone(),
        problem,
    })?;
    tx.execute(
        "UPDATE instances SET document = ?2, updated_at = ?3, name = ?4 WHERE uuid = ?1",
        params![
            rec.uuid,
            document,
            now,
            crate::records::document_name(&document, &rec.name)
        ],
    )?;
    let rec = by_uuid(&tx, &rec.uuid)?;
    tx.commit()?;
    Ok(rec)
}

pub(super) fn delete(conn: &Connection, uuid: &str) -> Result<(), StoreError> {
    conn.execute("DELETE FROM instances WHERE uuid = ?1", [uuid])?;
    Ok(())
}

pub(super) fn purge_tombstones(conn: &Connection, grace: Duration) -> Result<u64, StoreError> {
    let cutoff = format!("-{:.3} seconds", grace.as_secs_f64());
    let tx = rusqlite::Transaction::new_unchecked(conn, TransactionBehavior::Immediate)?;
    let newest: Option<i64> = tx.query_row(
        "SELECT MAX(rev) FROM tombstones \
         WHERE deleted_at <= strftime('%Y-%m-%dT%H:%M:%fZ', 'now', ?1)",
        [&cutoff],
        |r| r.get(0),
    )?;
    let Some(newest) = newest else {
        return Ok(0);
    };
    let n = tx.execute("DELETE FROM tombstones WHERE rev <= ?1", [newest])?;
    tx.execute(
        "UPDATE revision SET purged_rev = MAX(purged_rev, ?1)",
        [newest],
    )?;
    tx.commit()?;
    Ok(n as u64)
}

fn exists(conn: &Connection, uuid: &str) -> Result<(), StoreError> {
    conn.query_row(
        "SELECT 1 FROM instances WHERE uuid = ?1",
        [uuid],
        |_| Ok(()),
    )
    .optional()?
    .ok_or_else(|| StoreError::NotFound {
        kind: "instance",
        key: uuid.to_owned(),
    })
}

pub(super) fn password(conn: &Connection, uuid: &str) -> Result<Option<String>, StoreError> {
    conn.query_row(
        "SELECT password FROM instances WHERE uuid = ?1",
        [uuid],
        |r| r.get(0),
    )
    .optional()?
    .ok_or_else(|| StoreError::NotFound {
        kind: "instance",
        key: uuid.to_owned(),
    })
}

pub(super) fn set_password(
    conn: &Connection,
    uuid: &str,
    password: &str,
) -> Result<PasswordSet, StoreError> {
    let n = conn.execute(
        "UPDATE instances SET password = ?2 WHERE uuid = ?1 AND password IS NULL",
        params![uuid, password],
    )?;
    if n == 1 {
        return Ok(PasswordSet::Set);
    }
    exists(conn, uuid)?;
    Ok(PasswordSet::AlreadySet)
}

pub(super) fn clear_password(conn: &Connection, uuid: &str) -> Result<bool, StoreError> {
    let n = conn.execute(
        "UPDATE instances SET password = NULL WHERE uuid = ?1 AND password IS NOT NULL",
        [uuid],
    )?;
    if n == 1 {
        return Ok(true);
    }
    exists(conn, uuid)?;
    Ok(false)
}
