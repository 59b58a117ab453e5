//! Hosts (one per state folder) and the work queue. Times are the database's own
//! clock (`strftime('now')`, UTC), so that what "a heartbeat 10 s ago" means does
//! not depend on the clocks of the machines writing.

use crate::records::{
    amount, parse_work_action, validate_host_name, work_action_json, work_output, HostRecord,
    HostRow, HostSpec, Work, WorkAction, WorkOutcome, WorkState,
};
use crate::StoreError;
use compute::placement::AllocationRatios;
use rusqlite::{params, Connection, OptionalExtension, Row, TransactionBehavior};

/// The database clock, as every time column here is written.
const NOW: &str = "strftime('%Y-%m-%dT%H:%M:%fZ', 'now')";

fn host_select(filter: &str) -> String {
    format!(
        "SELECT h.name, h.vcpus, h.ram_mb, h.disk_gb, h.cpu_ratio, h.ram_ratio, h.disk_ratio, \
         h.enabled, h.disabled_reason, strftime('%Y-%m-%dT%H:%M:%SZ', h.heartbeat_at), \
         (julianday('now') - julianday(h.heartbeat_at)) * 86400.0, \
         COALESCE(SUM(i.vcpus), 0), COALESCE(SUM(i.ram_mb), 0), COALESCE(SUM(i.disk_gb), 0), \
         COUNT(i.uuid) \
         FROM hosts h LEFT JOIN instances i ON i.host = h.name {filter} \
         GROUP BY h.name ORDER BY h.name"
    )
}

fn host_from_row(r: &Row<'_>) -> rusqlite::Result<HostRecord> {
    Ok(HostRow {
        name: r.get(0)?,
        vcpus: r.get(1)?,
        ram_mb: r.get(2)?,
        disk_gb: r.get(3)?,
        cpu_ratio: r.get(4)?,
        ram_ratio: r.get(5)?,
        disk_ratio: r.get(6)?,
        enabled: r.get(7)?,
        disabled_reason: r.get(8)?,
        heartbeat_at: r.get(9)?,
        heartbeat_age_secs: r.get(10)?,
        used_vcpus: r.get(11)?,
        used_ram_mb: r.get(12)?,
        used_disk_gb: r.get(13)?,
        instances: r.get(14)?,
    }
    .into_record())
}

pub(super) fn all(conn: &Connection) -> Result<Vec<HostRecord>, StoreError> {
    let mut st = conn.prepare(&host_select(""))?;
    let rows = st.query_map([], host_from_row)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

pub(super) fn one(conn: &Connection, name: &str) -> Result<HostRecord, StoreError> {
    conn.query_row(&host_select("WHERE h.name = ?1"), [name], host_from_row)
        .optional()?
        .ok_or_else(|| StoreError::NotFound {
            kind: "host",
            key: name.to_owned(),
        })
}

/// Records the folder's host (adopting instances from before hosts existed) or
/// updates its capacity; refuses a second name.
pub(super) fn register(conn: &Connection, spec: &HostSpec) -> Result<HostRecord, StoreError> {
    validate_host_name(&spec.name)?;
    if let Some(r) = &spec.ratios {
        r.validate()?;
    }
    let tx = rusqlite::Transaction::new_unchecked(conn, TransactionBehavior::Immediate)?;
    let existing: Option<String> = tx
        .query_row("SELECT name FROM hosts LIMIT 1", [], |r| r.get(0))
        .optional()?;
    match existing {
        Some(e) if e != spec.name => {
            return Err(StoreError::OneHost {
                existing: e,
                requested: spec.name.clone(),
            })
        }
        Some(_) => {
            tx.execute(
                &format!(
                    "UPDATE hosts SET vcpus = ?2, ram_mb = ?3, disk_gb = ?4, heartbeat_at = {NOW} \
                     WHERE name = ?1"
                ),
                params![
                    spec.name,
                    amount(spec.capacity.vcpus),
                    amount(spec.capacity.ram_mb),
                    amount(spec.capacity.disk_gb)
                ],
            )?;
        }
        None => {
            let d = AllocationRatios::default();
            tx.execute(
                &format!(
                    "INSERT INTO hosts (name, vcpus, ram_mb, disk_gb, cpu_ratio, ram_ratio, \
                     disk_ratio, heartbeat_at, created_at) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, {NOW}, {NOW})"
                ),
                params![
                    spec.name,
                    amount(spec.capacity.vcpus),
                    amount(spec.capacity.ram_mb),
                    amount(spec.capacity.disk_gb),
                    d.cpu,
                    d.ram,
                    d.disk
                ],
            )?;
            tx.execute(
                "UPDATE instances SET host = ?1 WHERE host = ''",
                [&spec.name],
            )?;
        }
    }
    if let Some(r) = &spec.ratios {
        tx.execute(
            "UPDATE hosts SET cpu_ratio = ?2, ram_ratio = ?3, disk_ratio = ?4 WHERE name = ?1",
            params![spec.name, r.cpu, r.ram, r.disk],
        )?;
    }
    let rec = one(&tx, &spec.name)?;
    tx.commit()?;
    Ok(rec)
}

fn changed_one(n: usize, kind: &'static str, key: &str) -> Result<(), StoreError> {
    match n {
        0 => Err(StoreError::NotFound {
            kind,
            key: key.to_owned(),
        }),
        _ => Ok(()),
    }
}

pub(super) fn heartbeat(conn: &Connection, name: &str) -> Result<(), StoreError> {
    let n = conn.execute(
        &format!("UPDATE hosts SET heartbeat_at = {NOW} WHERE name = ?1"),
        [name],
    )?;
    changed_one(n, "host", name)
}

pub(super) fn set_enabled(
    conn: &Connection,
    name: &str,
    enabled: bool,
    reason: Option<&str>,
) -> Result<(), StoreError> {
    let reason = if enabled { None } else { reason };
    let n = conn.execute(
        "UPDATE hosts SET enabled = ?2, disabled_reason = ?3 WHERE name = ?1",
        params![name, enabled, reason],
    )?;
    changed_one(n, "host", name)
}

const WORK_COLUMNS: &str = "id, host, uuid, args, state, outcome, \
     strftime('%Y-%m-%dT%H:%M:%SZ', created_at), strftime('%Y-%m-%dT%H:%M:%SZ', started_at), \
     strftime('%Y-%m-%dT%H:%M:%SZ', finished_at)";

fn work_from_row(r: &Row<'_>) -> rusqlite::Result<Result<Work, StoreError>> {
    let id: i64 = r.get(0)?;
    let id = id as u64;
    let args: String = r.get(3)?;
    let state: String = r.get(4)?;
    let outcome: Option<String> = r.get(5)?;
    let (host, uuid, created_at, started_at, finished_at) =
        (r.get(1)?, r.get(2)?, r.get(6)?, r.get(7)?, r.get(8)?);
    Ok((|| {
        let state = WorkState::from_columns(id, &state, outcome.clone())?;
        Ok(Work {
            id,
            host,
            uuid,
            action: parse_work_action(id, &args)?,
            output: work_output(&state, outcome),
            state,
            created_at,
            started_at,
            finished_at,
        })
    })())
}

pub(super) fn enqueue(
    conn: &Connection,
    host: &str,
    uuid: &str,
    action: &WorkAction,
) -> Result<u64, StoreError> {
    validate_host_name(host)?;
    conn.execute(
        &format!(
            "INSERT INTO work (host, uuid, action, args, created_at) VALUES (?1, ?2, ?3, ?4, {NOW})"
        ),
        params![host, uuid, action.name(), work_action_json(action)],
    )?;
    Ok(conn.last_insert_rowid() as u64)
}

pub(super) fn work(conn: &Connection, id: u64) -> Result<Work, StoreError> {
    conn.query_row(
        &format!("SELECT {WORK_COLUMNS} FROM work WHERE id = ?1"),
        [amount(id)],
        work_from_row,
    )
    .optional()?
    .ok_or_else(|| StoreError::NotFound {
        kind: "work item",
        key: id.to_string(),
    })?
}

/// SQLite serializes writers: an immediate transaction is the lock.
pub(super) fn take_work(conn: &Connection, host: &str) -> Result<Option<Work>, StoreError> {
    let tx = rusqlite::Transaction::new_unchecked(conn, TransactionBehavior::Immediate)?;
    let id: Option<i64> = tx
        .query_row(
            "SELECT id FROM work WHERE host = ?1 AND state = 'queued' ORDER BY id LIMIT 1",
            [host],
            |r| r.get(0),
        )
        .optional()?;
    let Some(id) = id else {
        return Ok(None);
    };
    tx.execute(
        &format!("UPDATE work SET state = 'running', started_at = {NOW} WHERE id = ?1"),
        [id],
    )?;
    let taken = work(&tx, id as u64)?;
    tx.commit()?;
    Ok(Some(taken))
}

pub(super) fn finish_work(
    conn: &Connection,
    id: u64,
    outcome: &WorkOutcome,
) -> Result<(), StoreError> {
    let (state, message) = outcome.columns();
    let n = conn.execute(
        &format!(
            "UPDATE work SET state = ?2, outcome = ?3, finished_at = {NOW} \
             WHERE id = ?1 AND state = 'running'"
        ),
        params![amount(id), state, message],
    )?;
    if n == 0 {
        let current = work(conn, id)?;
        return Err(StoreError::WorkNotRunning {
            id,
            state: current.state.name().to_owned(),
        });
    }
    Ok(())
}

pub(super) fn queued_work(conn: &Connection, host: &str) -> Result<Vec<Work>, StoreError> {
    let mut st = conn.prepare(&format!(
        "SELECT {WORK_COLUMNS} FROM work WHERE host = ?1 AND state = 'queued' ORDER BY id"
    ))?;
    let rows = st.query_map([host], work_from_row)?;
    let mut out = Vec::new();
    for r in rows {
        out.push(r??);
    }
    Ok(out)
}

pub(super) fn requeue_running(conn: &Connection, host: &str) -> Result<u64, StoreError> {
    let n = conn.execute(
        "UPDATE work SET state = 'queued', started_at = NULL WHERE host = ?1 AND state = 'running'",
        [host],
    )?;
    Ok(n as u64)
}
