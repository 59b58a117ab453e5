//! What a host agent needs of PostgreSQL besides the [`Store`](crate::Store): a
//! lease on its host name, and a wake-up when work is queued.
//!
//! [`PgHostLease`] is one session holding a session-level advisory lock named after
//! the host (`compute-host-agent:NAME`): while it is held no other agent can take
//! the name, and it goes with the session, so an agent that dies (or loses its
//! connection) releases it without anyone cleaning up. The host's heartbeat is
//! written on that same session, after checking the lock is still held: a host is
//! never shown alive by an agent that does not hold its name.
//!
//! [`PgWorkWatch`] LISTENs on [`WORK_CHANNEL`](crate::WORK_CHANNEL). A notification
//! only wakes: the waiter always reads the queue itself, so one lost in a
//! reconnection costs a poll interval, never a work item.

use super::conn::{col, Conn};
use crate::StoreError;
use postgres::fallible_iterator::FallibleIterator;
use std::time::{Duration, Instant};

/// The name of `host`'s advisory lock, as errors show it (its key is PostgreSQL's
/// 64-bit `hashtextextended` of this name).
pub fn lease_name(host: &str) -> String {
    format!("compute-host-agent:{host}")
}

/// The session holding `host`'s name; see the module documentation.
pub struct PgHostLease {
    conn: Conn,
    host: String,
}

/// Whether this session holds the lock (`$1` is its name): PostgreSQL shows a
/// 64-bit advisory key as its high (`classid`) and low (`objid`) halves.
const HELD: &str = "SELECT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' \
     AND pid = pg_backend_pid() AND granted AND objsubid = 1 \
     AND classid = ((hashtextextended($1, 0) >> 32) & 4294967295)::oid \
     AND objid = (hashtextextended($1, 0) & 4294967295)::oid)";

/// Who holds the lock `$1` in this database (advisory locks are per database):
/// pid, application, client address and since when.
const HOLDER: &str = "SELECT a.pid, COALESCE(a.application_name, ''), \
     COALESCE(host(a.client_addr), 'local socket'), \
     COALESCE(to_char(a.backend_start AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'), '') \
     FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid \
     WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1 \
     AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database()) \
     AND l.classid = ((hashtextextended($1, 0) >> 32) & 4294967295)::oid \
     AND l.objid = (hashtextextended($1, 0) & 4294967295)::oid";

impl PgHostLease {
    /// Connects and takes `host`'s lock, or says who holds it
    /// ([`StoreError::HostAgentRunning`]).
    pub fn acquire(url: &str, host: &str) -> Result<PgHostLease, StoreError> {
        crate::validate_host_name(host)?;
        let conn = Conn::connect_as(url, &format!("compute host-agent {host}"))?;
        let mut lease = PgHostLease {
            conn,
            host: host.to_owned(),
        };
        lease.ensure_held()?;
        Ok(lease)
    }

    pub fn host(&self) -> &str {
        &self.host
    }

    /// Takes the lock unless this session holds it (a new session after a lost
    /// connection does not).
    fn ensure_held(&mut self) -> Result<(), StoreError> {
        let name = lease_name(&self.host);
        let location = self.conn.location().to_owned();
        let host = self.host.clone();
        self.conn.run(|c| {
            let held: bool = col(&c.query_one(HELD, &[&name])?, 0)?;
            if held {
                return Ok(());
            }
            let got: bool = col(
                &c.query_one(
                    "SELECT pg_try_advisory_lock(hashtextextended($1, 0))",
                    &[&name],
                )?,
                0,
            )?;
            if got {
                tracing::info!(host, lock = name, "took the host's lease");
                return Ok(());
            }
            let holder = match c.query(HOLDER, &[&name])?.first() {
                Some(r) => {
                    let pid: i32 = col(r, 0)?;
                    let app: String = col(r, 1)?;
                    let from: String = col(r, 2)?;
                    let since: String = col(r, 3)?;
                    format!("held by session {pid}, `{app}`, from {from}, since {since}")
                }
                None => "its holder just left: try again".to_owned(),
            };
            Err(StoreError::HostAgentRunning {
                host,
                lock: name,
                location,
                holder,
            })
        })
    }

    /// "This host is alive", written on the lease's session once it holds the lock
    /// (taken again after a reconnection; refused when another agent took it).
    pub fn heartbeat(&mut self) -> Result<(), StoreError> {
        self.ensure_held()?;
        let host = self.host.clone();
        self.conn.run(|c| {
            let n = c.execute(
                "UPDATE hosts SET heartbeat_at = now() WHERE name = $1",
                &[&host],
            )?;
            match n {
                0 => Err(StoreError::NotFound {
                    kind: "host",
                    key: host.clone(),
                }),
                _ => Ok(()),
            }
        })
    }
}

/// One `compute_work` notification: `ID HOST STATE`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkNotice {
    pub id: u64,
    pub host: String,
    pub state: String,
}

impl WorkNotice {
    /// Parses a payload; `None` for one that is not ours.
    pub fn parse(payload: &str) -> Option<WorkNotice> {
        let mut words = payload.split(' ');
        let id = words.next()?.parse().ok()?;
        let host = words.next()?.to_owned();
        let state = words.next()?.to_owned();
        words
            .next()
            .is_none()
            .then_some(WorkNotice { id, host, state })
    }
}

/// A session LISTENing on the work channel; see the module documentation.
pub struct PgWorkWatch {
    conn: Conn,
}

impl PgWorkWatch {
    /// Connects and LISTENs (from this call on, no notification is missed while
    /// the connection lasts).
    pub fn connect(url: &str) -> Result<PgWorkWatch, StoreError> {
        let mut conn = Conn::connect(url)?;
        conn.listen(crate::WORK_CHANNEL)?;
        Ok(PgWorkWatch { conn })
    }

    pub fn location(&self) -> String {
        self.conn.location().to_owned()
    }

    /// Waits up to `timeout` for a notification `wanted` accepts; `true` when one
    /// came. Notifications that arrived before the call count too. After a lost
    /// connection the next call reconnects and LISTENs again: what was sent in
    /// between is gone, so callers read the queue after every wait, whatever it
    /// returned.
    pub fn wait(
        &mut self,
        timeout: Duration,
        wanted: &dyn Fn(&WorkNotice) -> bool,
    ) -> Result<bool, StoreError> {
        let deadline = Instant::now() + timeout;
        self.conn.run(|c| loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let mut notifications = c.notifications();
            let mut next = notifications.timeout_iter(left);
            match next.next()? {
                None => return Ok(false),
                Some(n) => {
                    if WorkNotice::parse(n.payload()).is_some_and(|w| wanted(&w)) {
                        return Ok(true);
                    }
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notices_parse_or_are_ignored() {
        assert_eq!(
            WorkNotice::parse("12 h1 queued"),
            Some(WorkNotice {
                id: 12,
                host: "h1".into(),
                state: "queued".into()
            })
        );
        for bad in ["", "x h1 queued", "1 h1", "1 h1 queued extra"] {
            assert_eq!(WorkNotice::parse(bad), None, "{bad}");
        }
        assert_eq!(lease_name("h1"), "compute-host-agent:h1");
    }
}
