//! The change feed of a state folder's database, for other processes (the metadata
//! server): read-only, never blocking compute's writers (WAL).
//!
//! The revision counter is one row that the database's triggers bump in the same
//! transaction as every change to an instance (SQLite serializes writers, so
//! revisions commit in order); waiting for a change polls that row, one indexed read
//! every [`POLL_INTERVAL`]. Passwords are the one thing a feed writes: a second,
//! read-write connection is opened for them when first needed.

use super::{schema, BUSY_TIMEOUT, DB_FILE};
use crate::records::{merge_changes, rev_from, rev_to, DocumentRow, DOCUMENT_COLUMNS};
use crate::{Catchup, Change, DocumentFeed, PasswordSet, Rev, Snapshot, StoreError};
use rusqlite::{Connection, OpenFlags, Row};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// How often [`SqliteFeed::wait_for_change`] reads the revision.
pub const POLL_INTERVAL: Duration = Duration::from_millis(20);

pub struct SqliteFeed {
    path: PathBuf,
    conn: Connection,
    writer: Option<Connection>,
}

fn document_from_row(r: &Row<'_>) -> rusqlite::Result<DocumentRow> {
    Ok(DocumentRow {
        uuid: r.get(0)?,
        host: r.get(1)?,
        rev: r.get(2)?,
        fixed_ip: r.get(3)?,
        ssh_port: r.get(4)?,
        vm_state: r.get(5)?,
        document: r.get(6)?,
        password: r.get(7)?,
    })
}

/// The rows a query returns, as documents.
fn documents(
    conn: &Connection,
    sql: &str,
    params: impl rusqlite::Params,
) -> Result<Vec<crate::StoredDocument>, StoreError> {
    let mut st = conn.prepare(sql)?;
    let rows = st.query_map(params, document_from_row)?;
    let mut out = Vec::new();
    for r in rows {
        out.push(r?.into_document()?);
    }
    Ok(out)
}

fn revision(conn: &Connection) -> Result<(Rev, Rev), StoreError> {
    let (rev, purged): (i64, i64) =
        conn.query_row("SELECT rev, purged_rev FROM revision", [], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })?;
    Ok((rev_from(rev), rev_from(purged)))
}

impl SqliteFeed {
    /// Opens `<state_dir>/compute.db` read-only (it must exist at this binary's
    /// schema version: compute creates and migrates it).
    pub fn open(state_dir: &Path) -> Result<SqliteFeed, StoreError> {
        let path = state_dir.join(DB_FILE);
        let conn = open_conn(&path, OpenFlags::SQLITE_OPEN_READ_ONLY)?;
        let location = path.display().to_string();
        let found = schema::version(&conn).map_err(|source| StoreError::Open {
            location: location.clone(),
            source: Box::new(source),
        })?;
        let known = crate::SCHEMA_VERSION;
        if found > known {
            return Err(StoreError::SchemaTooNew {
                location,
                found,
                known,
            });
        }
        if found < known {
            return Err(StoreError::SchemaTooOld {
                location,
                found,
                known,
            });
        }
        Ok(SqliteFeed {
            path,
            conn,
            writer: None,
        })
    }

    fn writer(&mut self) -> Result<&Connection, StoreError> {
        let conn = match self.writer.take() {
            Some(c) => c,
            None => open_conn(&self.path, OpenFlags::SQLITE_OPEN_READ_WRITE)?,
        };
        Ok(self.writer.insert(conn))
    }
}

fn open_conn(path: &Path, mode: OpenFlags) -> Result<Connection, StoreError> {
    let open_err = |source: rusqlite::Error| StoreError::Open {
        location: path.display().to_string(),
        source: Box::new(source),
    };
    let conn = Connection::open_with_flags(path, mode | OpenFlags::SQLITE_OPEN_NO_MUTEX)
        .map_err(open_err)?;
    conn.busy_timeout(BUSY_TIMEOUT).map_err(open_err)?;
    Ok(conn)
}

const DOCUMENT_SELECT: &str = "FROM instances";

impl DocumentFeed for SqliteFeed {
    fn location(&self) -> String {
        self.path.display().to_string()
    }

    fn rev(&mut self) -> Result<Rev, StoreError> {
        Ok(revision(&self.conn)?.0)
    }

    fn snapshot(&mut self, host: Option<&str>) -> Result<Snapshot, StoreError> {
        let tx = self.conn.transaction()?;
        let (rev, _) = revision(&tx)?;
        let documents = match host {
            None => documents(
                &tx,
                &format!("SELECT {DOCUMENT_COLUMNS} {DOCUMENT_SELECT} ORDER BY uuid"),
                [],
            )?,
            Some(h) => documents(
                &tx,
                &format!(
                    "SELECT {DOCUMENT_COLUMNS} {DOCUMENT_SELECT} WHERE host = ?1 ORDER BY uuid"
                ),
                [h],
            )?,
        };
        tx.finish()?;
        Ok(Snapshot { rev, documents })
    }

    fn changes_since(&mut self, since: Rev, host: Option<&str>) -> Result<Catchup, StoreError> {
        let tx = self.conn.transaction()?;
        let (rev, purged) = revision(&tx)?;
        if since < purged {
            return Ok(Catchup::SnapshotNeeded {
                purged_through: purged,
            });
        }
        let since = rev_to(since);
        let host_filter = if host.is_some() { "AND host = ?2" } else { "" };
        let upserts = documents(
            &tx,
            &format!("SELECT {DOCUMENT_COLUMNS} {DOCUMENT_SELECT} WHERE rev > ?1 {host_filter}"),
            rusqlite::params_from_iter(
                [rusqlite::types::Value::from(since)]
                    .into_iter()
                    .chain(host.map(|h| rusqlite::types::Value::from(h.to_owned()))),
            ),
        )?;
        let mut changes: Vec<Change> = upserts.into_iter().map(Change::Upsert).collect();
        {
            let mut st = tx.prepare(&format!(
                "SELECT uuid, host, rev FROM tombstones WHERE rev > ?1 {host_filter}"
            ))?;
            let rows = st.query_map(
                rusqlite::params_from_iter(
                    [rusqlite::types::Value::from(since)]
                        .into_iter()
                        .chain(host.map(|h| rusqlite::types::Value::from(h.to_owned()))),
                ),
                |r| {
                    Ok(Change::Delete {
                        uuid: r.get(0)?,
                        host: r.get(1)?,
                        rev: rev_from(r.get(2)?),
                    })
                },
            )?;
            for c in rows {
                changes.push(c?);
            }
        }
        tx.finish()?;
        Ok(Catchup::Changes {
            rev,
            changes: merge_changes(changes),
        })
    }

    fn wait_for_change(
        &mut self,
        after: Rev,
        _host: Option<&str>,
        timeout: Duration,
    ) -> Result<bool, StoreError> {
        let deadline = Instant::now() + timeout;
        loop {
            if revision(&self.conn)?.0 > after {
                return Ok(true);
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Ok(false);
            }
            std::thread::sleep(left.min(POLL_INTERVAL));
        }
    }

    fn password(&mut self, uuid: &str) -> Result<Option<String>, StoreError> {
        super::instances::password(&self.conn, uuid)
    }

    fn set_password(&mut self, uuid: &str, password: &str) -> Result<PasswordSet, StoreError> {
        super::instances::set_password(self.writer()?, uuid, password)
    }

    fn clear_password(&mut self, uuid: &str) -> Result<bool, StoreError> {
        super::instances::clear_password(self.writer()?, uuid)
    }
}
