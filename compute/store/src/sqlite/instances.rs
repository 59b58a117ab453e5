//! Instance rows: insert (with IP and MAC allocation in the same transaction),
//! lookups by uuid or name, the light listing, and state updates.

use super::{one_of, parse_state};
use crate::{FaultChange, InstanceRecord, InstanceSummary, NewInstance, StoreError};
use compute::lifecycle::State;
use compute::mac::MacAddr;
use compute::netalloc::{self, Subnet};
use rusqlite::{params, Connection, OptionalExtension, Row, TransactionBehavior};
use std::collections::HashSet;
use std::net::Ipv4Addr;

/// The columns every instance summary is read from, in `summaries`' order.
const SUMMARY_SELECT: &str =
    "SELECT uuid, name, vm_state, task_state, power_state, fixed_ip, pid FROM instances";

const INSTANCE_COLUMNS: &str =
    "uuid, name, flavor, image_id, key_name, vm_state, task_state, power_state, \
     fixed_ip, mac, ssh_port, pid, fault, document, created_at, updated_at";

fn instance_from_row(row: &Row<'_>) -> rusqlite::Result<Result<InstanceRecord, StoreError>> {
    let uuid: String = row.get(0)?;
    let flavor: String = row.get(2)?;
    let vm: String = row.get(5)?;
    let task: Option<String> = row.get(6)?;
    let power: String = row.get(7)?;
    let ip: String = row.get(8)?;
    let mac: String = row.get(9)?;
    let fault: Option<String> = row.get(12)?;
    let mk = || -> Result<InstanceRecord, StoreError> {
        let corrupt = |what, problem: String| StoreError::Corrupt {
            what,
            key: uuid.clone(),
            problem,
        };
        Ok(InstanceRecord {
            uuid: uuid.clone(),
            name: row.get(1)?,
            flavor: serde_json::from_str(&flavor).map_err(|e| corrupt("flavor", e.to_string()))?,
            image_id: row.get(3)?,
            key_name: row.get(4)?,
            state: parse_state(&vm, task.as_deref(), &power, &uuid)?,
            fixed_ip: ip.parse().map_err(|_| corrupt("fixed_ip", ip.clone()))?,
            mac: mac.parse().map_err(|_| corrupt("mac", mac.clone()))?,
            ssh_port: row.get(10)?,
            pid: row.get(11)?,
            fault: match fault {
                None => None,
                Some(f) => {
                    Some(serde_json::from_str(&f).map_err(|e| corrupt("fault", e.to_string()))?)
                }
            },
            document: row.get(13)?,
            created_at: row.get(14)?,
            updated_at: row.get(15)?,
        })
    };
    Ok(mk())
}

/// Records a new instance (building/spawning), allocating its fixed IP and MAC in
/// the same transaction.
pub(super) fn insert(
    conn: &mut Connection,
    subnet: Subnet,
    new: &NewInstance<'_>,
) -> Result<InstanceRecord, StoreError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
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
    let document = (new.document)(ip, mac).map_err(|problem| StoreError::Corrupt {
        what: "document",
        key: new.uuid.to_owned(),
        problem,
    })?;
    let state = State::building();
    let flavor = serde_json::to_string(new.flavor).map_err(|e| StoreError::Corrupt {
        what: "flavor",
        key: new.flavor.name.clone(),
        problem: e.to_string(),
    })?;
    tx.execute(
            &format!("INSERT INTO instances ({INSTANCE_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, NULL, NULL, NULL, ?11, ?12, ?12)"),
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
                new.now
            ],
        )?;
    tx.commit()?;
    by_uuid(conn, new.uuid)
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
    summaries(conn, &format!("{SUMMARY_SELECT} ORDER BY created_at, uuid"))
}

pub(super) fn claiming_processes(conn: &Connection) -> Result<Vec<InstanceSummary>, StoreError> {
    summaries(conn, &format!(
            "{SUMMARY_SELECT} WHERE pid IS NOT NULL OR task_state IS NOT NULL OR power_state != 'shutdown'"
        ))
}

/// The summaries a `SUMMARY_SELECT` query returns.
fn summaries(conn: &Connection, sql: &str) -> Result<Vec<InstanceSummary>, StoreError> {
    let mut st = conn.prepare(sql)?;
    let mut out = Vec::new();
    let mut rows = st.query([])?;
    while let Some(r) = rows.next()? {
        let uuid: String = r.get(0)?;
        let (vm, task, power): (String, Option<String>, String) = (r.get(2)?, r.get(3)?, r.get(4)?);
        let state = parse_state(&vm, task.as_deref(), &power, &uuid)?;
        out.push(InstanceSummary {
            uuid,
            name: r.get(1)?,
            state,
            fixed_ip: r.get(5)?,
            pid: r.get(6)?,
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

pub(super) fn delete(conn: &Connection, uuid: &str) -> Result<(), StoreError> {
    conn.execute("DELETE FROM instances WHERE uuid = ?1", [uuid])?;
    Ok(())
}
