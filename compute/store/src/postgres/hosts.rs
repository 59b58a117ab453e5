//! Hosts and the work queue on PostgreSQL. Heartbeats and ages use the server's
//! clock (`now()`), so that hosts' clocks do not matter; work is taken with
//! `FOR UPDATE SKIP LOCKED`, so concurrent takers never get the same item and never
//! wait on each other.

use super::conn::col;
use crate::records::{
    amount, parse_work_action, validate_host_name, work_action_json, work_output, HostRecord,
    HostRow, HostSpec, Work, WorkAction, WorkOutcome, WorkState,
};
use crate::StoreError;
use compute::placement::AllocationRatios;
use postgres::{Client, GenericClient, Row};

/// A TIMESTAMPTZ column as RFC 3339 UTC text.
fn utc(column: &str) -> String {
    format!("to_char({column} AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')")
}

fn host_select(filter: &str) -> String {
    format!(
        "SELECT h.name, h.vcpus, h.ram_mb, h.disk_gb, h.cpu_ratio, h.ram_ratio, h.disk_ratio, \
         h.enabled, h.disabled_reason, {}, \
         EXTRACT(EPOCH FROM (now() - h.heartbeat_at))::DOUBLE PRECISION, \
         COALESCE(SUM(i.vcpus), 0)::BIGINT, COALESCE(SUM(i.ram_mb), 0)::BIGINT, \
         COALESCE(SUM(i.disk_gb), 0)::BIGINT, COUNT(i.uuid) \
         FROM hosts h LEFT JOIN instances i ON i.host = h.name {filter} \
         GROUP BY h.name ORDER BY h.name",
        utc("h.heartbeat_at")
    )
}

fn host_from_row(r: &Row) -> Result<HostRecord, StoreError> {
    Ok(HostRow {
        name: col(r, 0)?,
        vcpus: col(r, 1)?,
        ram_mb: col(r, 2)?,
        disk_gb: col(r, 3)?,
        cpu_ratio: col(r, 4)?,
        ram_ratio: col(r, 5)?,
        disk_ratio: col(r, 6)?,
        enabled: col(r, 7)?,
        disabled_reason: col(r, 8)?,
        heartbeat_at: col(r, 9)?,
        heartbeat_age_secs: col(r, 10)?,
        used_vcpus: col(r, 11)?,
        used_ram_mb: col(r, 12)?,
        used_disk_gb: col(r, 13)?,
        instances: col(r, 14)?,
    }
    .into_record())
}

pub(super) fn all(c: &mut impl GenericClient) -> Result<Vec<HostRecord>, StoreError> {
    c.query(&host_select(""), &[])?
        .iter()
        .map(host_from_row)
        .collect()
}

pub(super) fn one(c: &mut impl GenericClient, name: &str) -> Result<HostRecord, StoreError> {
    match c.query_opt(&host_select("WHERE h.name = $1"), &[&name])? {
        Some(r) => host_from_row(&r),
        None => Err(StoreError::NotFound {
            kind: "host",
            key: name.to_owned(),
        }),
    }
}

pub(super) fn register(c: &mut Client, spec: &HostSpec) -> Result<HostRecord, StoreError> {
    validate_host_name(&spec.name)?;
    if let Some(r) = &spec.ratios {
        r.validate()?;
    }
    let d = AllocationRatios::default();
    let mut tx = c.transaction()?;
    tx.execute(
        "INSERT INTO hosts (name, vcpus, ram_mb, disk_gb, cpu_ratio, ram_ratio, disk_ratio, heartbeat_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, now()) \
         ON CONFLICT (name) DO UPDATE SET vcpus = EXCLUDED.vcpus, ram_mb = EXCLUDED.ram_mb, \
         disk_gb = EXCLUDED.disk_gb, heartbeat_at = now()",
        &[
            &spec.name,
            &amount(spec.capacity.vcpus),
            &amount(spec.capacity.ram_mb),
            &amount(spec.capacity.disk_gb),
            &d.cpu,
            &d.ram,
            &d.disk,
        ],
    )?;
    if let Some(r) = &spec.ratios {
        tx.execute(
            "UPDATE hosts SET cpu_ratio = $2, ram_ratio = $3, disk_ratio = $4 WHERE name = $1",
            &[&spec.name, &r.cpu, &r.ram, &r.disk],
        )?;
    }
    let rec = one(&mut tx, &spec.name)?;
    tx.commit()?;
    Ok(rec)
}

pub(super) fn heartbeat(c: &mut Client, name: &str) -> Result<(), StoreError> {
    let n = c.execute(
        "UPDATE hosts SET heartbeat_at = now() WHERE name = $1",
        &[&name],
    )?;
    super::not_found(n, "host", name)
}

pub(super) fn set_enabled(
    c: &mut Client,
    name: &str,
    enabled: bool,
    reason: Option<&str>,
) -> Result<(), StoreError> {
    let reason = if enabled { None } else { reason };
    let n = c.execute(
        "UPDATE hosts SET enabled = $2, disabled_reason = $3 WHERE name = $1",
        &[&name, &enabled, &reason],
    )?;
    super::not_found(n, "host", name)
}

fn work_columns() -> String {
    format!(
        "id, host, uuid, args, state, outcome, {}, {}, {}",
        utc("created_at"),
        utc("started_at"),
        utc("finished_at")
    )
}

fn work_from_row(r: &Row) -> Result<Work, StoreError> {
    let id = col::<i64>(r, 0)?.max(0) as u64;
    let args: String = col(r, 3)?;
    let state: String = col(r, 4)?;
    let outcome: Option<String> = col(r, 5)?;
    let state = WorkState::from_columns(id, &state, outcome.clone())?;
    Ok(Work {
        id,
        host: col(r, 1)?,
        uuid: col(r, 2)?,
        action: parse_work_action(id, &args)?,
        output: work_output(&state, outcome),
        state,
        created_at: col(r, 6)?,
        started_at: col(r, 7)?,
        finished_at: col(r, 8)?,
    })
}

pub(super) fn enqueue(
    c: &mut impl GenericClient,
    host: &str,
    uuid: &str,
    action: &WorkAction,
) -> Result<u64, StoreError> {
    validate_host_name(host)?;
    let row = c.query_one(
        "INSERT INTO work (host, uuid, action, args) VALUES ($1, $2, $3, $4) RETURNING id",
        &[&host, &uuid, &action.name(), &work_action_json(action)],
    )?;
    Ok(col::<i64>(&row, 0)?.max(0) as u64)
}

pub(super) fn work(c: &mut Client, id: u64) -> Result<Work, StoreError> {
    match c.query_opt(
        &format!("SELECT {} FROM work WHERE id = $1", work_columns()),
        &[&amount(id)],
    )? {
        Some(r) => work_from_row(&r),
        None => Err(StoreError::NotFound {
            kind: "work item",
            key: id.to_string(),
        }),
    }
}

pub(super) fn take_work(c: &mut Client, host: &str) -> Result<Option<Work>, StoreError> {
    let row = c.query_opt(
        &format!(
            "UPDATE work SET state = 'running', started_at = now() WHERE id = ( \
                 SELECT id FROM work WHERE host = $1 AND state = 'queued' \
                 ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED) \
             RETURNING {}",
            work_columns()
        ),
        &[&host],
    )?;
    row.map(|r| work_from_row(&r)).transpose()
}

pub(super) fn finish_work(
    c: &mut Client,
    id: u64,
    outcome: &WorkOutcome,
) -> Result<(), StoreError> {
    let (state, message) = outcome.columns();
    let n = c.execute(
        "UPDATE work SET state = $2, outcome = $3, finished_at = now() \
         WHERE id = $1 AND state = 'running'",
        &[&amount(id), &state, &message],
    )?;
    if n == 0 {
        let current = work(c, id)?;
        return Err(StoreError::WorkNotRunning {
            id,
            state: current.state.name().to_owned(),
        });
    }
    Ok(())
}

pub(super) fn queued_work(c: &mut Client, host: &str) -> Result<Vec<Work>, StoreError> {
    c.query(
        &format!(
            "SELECT {} FROM work WHERE host = $1 AND state = 'queued' ORDER BY id",
            work_columns()
        ),
        &[&host],
    )?
    .iter()
    .map(work_from_row)
    .collect()
}

pub(super) fn requeue_running(c: &mut Client, host: &str) -> Result<u64, StoreError> {
    Ok(c.execute(
        "UPDATE work SET state = 'queued', started_at = NULL WHERE host = $1 AND state = 'running'",
        &[&host],
    )?)
}
