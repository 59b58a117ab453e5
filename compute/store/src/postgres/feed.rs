//! The change feed on PostgreSQL: snapshots and catch-ups read in one
//! `REPEATABLE READ` transaction (the revision and the rows agree), and waiting with
//! `LISTEN compute_changes` (the trigger's `NOTIFY`, delivered at commit). A
//! notification only wakes the waiter; it always catches up by revision, so one lost
//! in a reconnection loses nothing: after every (re)connection the revision is
//! compared before waiting.

use super::conn::{col, Conn};
use super::{instances, schema};
use crate::records::{merge_changes, rev_from, rev_to, DocumentRow, DOCUMENT_COLUMNS};
use crate::{Catchup, Change, DocumentFeed, PasswordSet, Rev, Snapshot, StoreError};
use postgres::fallible_iterator::FallibleIterator;
use postgres::{Client, GenericClient, IsolationLevel, Row, Transaction};
use std::time::{Duration, Instant};

/// A PostgreSQL database's change feed (and its passwords).
pub struct PgFeed {
    conn: Conn,
}

fn document_from_row(r: &Row) -> Result<crate::StoredDocument, StoreError> {
    DocumentRow {
        uuid: col(r, 0)?,
        host: col(r, 1)?,
        rev: col(r, 2)?,
        fixed_ip: col(r, 3)?,
        ssh_port: col(r, 4)?,
        vm_state: col(r, 5)?,
        document: col(r, 6)?,
        password: col(r, 7)?,
    }
    .into_document()
}

fn revision(c: &mut impl GenericClient) -> Result<(Rev, Rev), StoreError> {
    let row = c.query_one("SELECT rev, purged_rev FROM revision", &[])?;
    Ok((rev_from(col(&row, 0)?), rev_from(col(&row, 1)?)))
}

fn read_only(c: &mut Client) -> Result<Transaction<'_>, StoreError> {
    Ok(c.build_transaction()
        .isolation_level(IsolationLevel::RepeatableRead)
        .read_only(true)
        .start()?)
}

/// Whether a notification's payload (`REV HOST`) concerns `host`; an unreadable one
/// does, to be safe.
fn concerns(payload: &str, host: Option<&str>) -> bool {
    match (host, payload.split_once(' ')) {
        (None, _) | (_, None) => true,
        (Some(h), Some((_, of))) => of == h,
    }
}

impl PgFeed {
    /// Connects to the database at `url`, which must be at this binary's schema
    /// version (a feed never migrates: compute does).
    pub fn connect(url: &str) -> Result<PgFeed, StoreError> {
        let mut conn = Conn::connect(url)?;
        let location = conn.location().to_owned();
        let found = conn.run(|c| Ok(schema::version(c)?))?;
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
        Ok(PgFeed { conn })
    }
}

impl DocumentFeed for PgFeed {
    fn location(&self) -> String {
        self.conn.location().to_owned()
    }

    fn rev(&mut self) -> Result<Rev, StoreError> {
        self.conn.run(|c| Ok(revision(c)?.0))
    }

    fn snapshot(&mut self, host: Option<&str>) -> Result<Snapshot, StoreError> {
        self.conn.run(|c| {
            let mut tx = read_only(c)?;
            let (rev, _) = revision(&mut tx)?;
            let rows = match host {
                None => tx.query(
                    &format!("SELECT {DOCUMENT_COLUMNS} FROM instances ORDER BY uuid"),
                    &[],
                )?,
                Some(h) => tx.query(
                    &format!(
                        "SELECT {DOCUMENT_COLUMNS} FROM instances WHERE host = $1 ORDER BY uuid"
                    ),
                    &[&h],
                )?,
            };
            let documents = rows
                .iter()
                .map(document_from_row)
                .collect::<Result<_, _>>()?;
            tx.commit()?;
            Ok(Snapshot { rev, documents })
        })
    }

    fn changes_since(&mut self, since: Rev, host: Option<&str>) -> Result<Catchup, StoreError> {
        self.conn.run(|c| {
            let mut tx = read_only(c)?;
            let (rev, purged) = revision(&mut tx)?;
            if since < purged {
                return Ok(Catchup::SnapshotNeeded {
                    purged_through: purged,
                });
            }
            let since = rev_to(since);
            let (upserts, deletes) = match host {
                None => (
                    tx.query(
                        &format!("SELECT {DOCUMENT_COLUMNS} FROM instances WHERE rev > $1"),
                        &[&since],
                    )?,
                    tx.query(
                        "SELECT uuid, host, rev FROM tombstones WHERE rev > $1",
                        &[&since],
                    )?,
                ),
                Some(h) => (
                    tx.query(
                        &format!(
                            "SELECT {DOCUMENT_COLUMNS} FROM instances WHERE rev > $1 AND host = $2"
                        ),
                        &[&since, &h],
                    )?,
                    tx.query(
                        "SELECT uuid, host, rev FROM tombstones WHERE rev > $1 AND host = $2",
                        &[&since, &h],
                    )?,
                ),
            };
            let mut changes = Vec::with_capacity(upserts.len() + deletes.len());
            for r in &upserts {
                changes.push(Change::Upsert(document_from_row(r)?));
            }
            for r in &deletes {
                changes.push(Change::Delete {
                    uuid: col(r, 0)?,
                    host: col(r, 1)?,
                    rev: rev_from(col(r, 2)?),
                });
            }
            tx.commit()?;
            Ok(Catchup::Changes {
                rev,
                changes: merge_changes(changes),
            })
        })
    }

    fn wait_for_change(
        &mut self,
        after: Rev,
        host: Option<&str>,
        timeout: Duration,
    ) -> Result<bool, StoreError> {
        let deadline = Instant::now() + timeout;
        self.conn.listen(crate::CHANGES_CHANNEL)?;
        self.conn.run(|c| {
            // What arrived before this call is older than the revision read next.
            {
                let mut pending = c.notifications();
                let mut stale = pending.iter();
                while stale.next()?.is_some() {}
            }
            if revision(c)?.0 > after {
                return Ok(true);
            }
            loop {
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    return Ok(false);
                }
                let mut notifications = c.notifications();
                let mut next = notifications.timeout_iter(left);
                match next.next()? {
                    None => return Ok(false),
                    Some(n) if concerns(n.payload(), host) => return Ok(true),
                    Some(_) => {}
                }
            }
        })
    }

    fn password(&mut self, uuid: &str) -> Result<Option<String>, StoreError> {
        self.conn.run(|c| instances::password(c, uuid))
    }

    fn set_password(&mut self, uuid: &str, password: &str) -> Result<PasswordSet, StoreError> {
        self.conn
            .run(|c| instances::set_password(c, uuid, password))
    }

    fn clear_password(&mut self, uuid: &str) -> Result<bool, StoreError> {
        self.conn.run(|c| instances::clear_password(c, uuid))
    }
}

#[cfg(test)]
mod tests {
    use super::concerns;

    #[test]
    fn a_notification_concerns_its_host_or_everyone() {
        assert!(concerns("7 a", Some("a")));
        assert!(!concerns("7 b", Some("a")));
        assert!(concerns("7 b", None));
        assert!(concerns("garbage", Some("a")));
    }
}
