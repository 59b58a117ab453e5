//! The read side for other processes (the metadata server): open the state folder's
//! database read-only, list instance documents, and ask cheaply whether anything
//! changed since the last look.
//!
//! `generation` is a counter that the database's own triggers raise in the same
//! transaction as every insert, update or delete of an instance, so a reader that
//! sees the same generation twice knows its cached documents are current. Reading
//! never blocks compute's writers (WAL).

use super::DB_FILE;
use crate::StoreError;
use rusqlite::{Connection, OpenFlags};
use std::net::Ipv4Addr;
use std::path::Path;

/// One instance as the metadata server needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredDocument {
    pub uuid: String,
    /// The fixed IP compute allocated (also inside the document's `network`).
    pub fixed_ip: Ipv4Addr,
    /// Host port forwarded to the guest's port 22 (user-mode networking), if running.
    pub ssh_port: Option<u16>,
    /// Nova's `vm_state` word (`active`, `stopped`, ...).
    pub vm_state: String,
    /// The instance document (instance.md), JSON bytes; parse with
    /// `compute::Instance::from_json`.
    pub document: Vec<u8>,
}

pub struct DocumentReader {
    conn: Connection,
}

impl DocumentReader {
    /// Opens `<state_dir>/compute.db` read-only (it must exist: compute creates it).
    pub fn open(state_dir: &Path) -> Result<DocumentReader, StoreError> {
        let path = state_dir.join(DB_FILE);
        let conn = Connection::open_with_flags(
            &path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(|source| StoreError::Open {
            location: path.display().to_string(),
            source: Box::new(source),
        })?;
        conn.busy_timeout(super::BUSY_TIMEOUT)
            .map_err(|source| StoreError::Open {
                location: path.display().to_string(),
                source: Box::new(source),
            })?;
        Ok(DocumentReader { conn })
    }

    /// The change counter: raised by every change to any instance.
    pub fn generation(&self) -> Result<u64, StoreError> {
        let v: String =
            self.conn
                .query_row("SELECT value FROM meta WHERE key = 'generation'", [], |r| {
                    r.get(0)
                })?;
        v.parse().map_err(|_| StoreError::Corrupt {
            what: "generation",
            key: "meta".into(),
            problem: v,
        })
    }

    /// Every instance's document with the generation they were read at (one
    /// read transaction, so the two agree).
    pub fn documents(&mut self) -> Result<(u64, Vec<StoredDocument>), StoreError> {
        let tx = self.conn.transaction()?;
        let gen: String =
            tx.query_row("SELECT value FROM meta WHERE key = 'generation'", [], |r| {
                r.get(0)
            })?;
        let gen = gen.parse().map_err(|_| StoreError::Corrupt {
            what: "generation",
            key: "meta".into(),
            problem: gen,
        })?;
        let mut out = Vec::new();
        {
            let mut st = tx.prepare(
                "SELECT uuid, fixed_ip, ssh_port, vm_state, document FROM instances ORDER BY uuid",
            )?;
            let mut rows = st.query([])?;
            while let Some(r) = rows.next()? {
                let uuid: String = r.get(0)?;
                let ip: String = r.get(1)?;
                let fixed_ip = ip.parse().map_err(|_| StoreError::Corrupt {
                    what: "fixed_ip",
                    key: uuid.clone(),
                    problem: ip,
                })?;
                let document: String = r.get(4)?;
                out.push(StoredDocument {
                    uuid,
                    fixed_ip,
                    ssh_port: r.get(2)?,
                    vm_state: r.get(3)?,
                    document: document.into_bytes(),
                });
            }
        }
        tx.finish()?;
        Ok((gen, out))
    }
}
