//! A small QMP client: one unix socket, one command at a time, every wait bounded.
//!
//! The `qapi` crate was evaluated: it generates the whole schema and is built around
//! its own async stream types; the handful of commands the lifecycle needs is
//! clearer as plain JSON over a blocking socket with read/write timeouts.

use serde_json::{json, Value};
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Longest line accepted from QEMU (replies are small; events too).
const MAX_LINE: usize = 1 << 20;

#[derive(Debug, thiserror::Error)]
pub enum QmpError {
    #[error("cannot connect to QMP socket {path}")]
    Connect {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("QMP socket {path}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("QMP socket {path} closed")]
    Closed { path: PathBuf },
    #[error("QMP socket {path}: unexpected reply {reply}")]
    Protocol { path: PathBuf, reply: String },
    #[error("QMP command {command} failed: {class}: {desc}")]
    Command {
        command: String,
        class: String,
        desc: String,
    },
    #[error("QMP socket {path}: timed out after {timeout:?} waiting for {what}")]
    Timeout {
        path: PathBuf,
        timeout: Duration,
        what: String,
    },
}

/// QEMU's run state as `query-status` reports it, reduced to what matters here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunStatus {
    pub running: bool,
    /// QEMU's word: `running`, `paused`, `shutdown`, `inmigrate`, `postmigrate`...
    pub status: String,
}

pub struct Qmp {
    path: PathBuf,
    reader: BufReader<UnixStream>,
    writer: UnixStream,
    timeout: Duration,
}

impl Qmp {
    /// Connects, reads the greeting and negotiates capabilities, retrying the
    /// connection until `timeout` (QEMU creates the socket as it starts).
    pub fn connect(path: &Path, timeout: Duration) -> Result<Qmp, QmpError> {
        let deadline = Instant::now() + timeout;
        let stream = loop {
            match UnixStream::connect(path) {
                Ok(s) => break s,
                Err(e) if Instant::now() >= deadline => {
                    return Err(QmpError::Connect {
                        path: path.to_owned(),
                        source: e,
                    })
                }
                Err(_) => std::thread::sleep(Duration::from_millis(5)),
            }
        };
        let io = |source| QmpError::Io {
            path: path.to_owned(),
            source,
        };
        stream.set_read_timeout(Some(timeout)).map_err(io)?;
        stream.set_write_timeout(Some(timeout)).map_err(io)?;
        let writer = stream.try_clone().map_err(io)?;
        let mut qmp = Qmp {
            path: path.to_owned(),
            reader: BufReader::new(stream),
            writer,
            timeout,
        };
        let greeting = qmp.read_message("the QMP greeting")?;
        if greeting.get("QMP").is_none() {
            return Err(QmpError::Protocol {
                path: path.to_owned(),
                reply: greeting.to_string(),
            });
        }
        qmp.execute("qmp_capabilities", None)?;
        Ok(qmp)
    }

    fn read_message(&mut self, what: &str) -> Result<Value, QmpError> {
        let mut line = Vec::new();
        let n = Read::take(&mut self.reader, MAX_LINE as u64)
            .read_until(b'\n', &mut line)
            .map_err(|e| {
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) {
                    QmpError::Timeout {
                        path: self.path.clone(),
                        timeout: self.timeout,
                        what: what.to_owned(),
                    }
                } else {
                    QmpError::Io {
                        path: self.path.clone(),
                        source: e,
                    }
                }
            })?;
        if n == 0 {
            return Err(QmpError::Closed {
                path: self.path.clone(),
            });
        }
        serde_json::from_slice(&line).map_err(|_| QmpError::Protocol {
            path: self.path.clone(),
            reply: String::from_utf8_lossy(&line).chars().take(200).collect(),
        })
    }

    /// Runs one command and returns its `return` value; events are skipped.
    pub fn execute(&mut self, command: &str, arguments: Option<Value>) -> Result<Value, QmpError> {
        let mut msg = json!({ "execute": command });
        if let Some(args) = arguments {
            msg["arguments"] = args;
        }
        let mut bytes = serde_json::to_vec(&msg).map_err(|e| QmpError::Protocol {
            path: self.path.clone(),
            reply: e.to_string(),
        })?;
        bytes.push(b'\n');
        self.writer.write_all(&bytes).map_err(|e| QmpError::Io {
            path: self.path.clone(),
            source: e,
        })?;
        loop {
            let reply = self.read_message(command)?;
            if let Some(ret) = reply.get("return") {
                return Ok(ret.clone());
            }
            if let Some(err) = reply.get("error") {
                let field = |k: &str| err.get(k).and_then(Value::as_str).unwrap_or("").to_owned();
                return Err(QmpError::Command {
                    command: command.to_owned(),
                    class: field("class"),
                    desc: field("desc"),
                });
            }
            if reply.get("event").is_none() {
                return Err(QmpError::Protocol {
                    path: self.path.clone(),
                    reply: reply.to_string(),
                });
            }
        }
    }

    pub fn query_status(&mut self) -> Result<RunStatus, QmpError> {
        let v = self.execute("query-status", None)?;
        let status = v
            .get("status")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned();
        let running = v.get("running").and_then(Value::as_bool).unwrap_or(false);
        Ok(RunStatus { running, status })
    }

    /// The host port of the guest's TCP `hostfwd` (the port the kernel chose when
    /// the command line asked for port 0), read from `info usernet`: QMP itself has
    /// no command that lists user-mode forwards.
    pub fn host_forward_port(&mut self) -> Result<u16, QmpError> {
        let v = self.execute(
            "human-monitor-command",
            Some(json!({ "command-line": "info usernet" })),
        )?;
        let text = v.as_str().unwrap_or("");
        host_forward_port(text).ok_or_else(|| QmpError::Protocol {
            path: self.path.clone(),
            reply: format!("no TCP host forward in `info usernet`: {text}"),
        })
    }

    /// Waits (polling `query-migrate`) until an outgoing migration completes.
    pub fn wait_migration(&mut self, timeout: Duration) -> Result<(), QmpError> {
        let deadline = Instant::now() + timeout;
        loop {
            let v = self.execute("query-migrate", None)?;
            match v.get("status").and_then(Value::as_str) {
                Some("completed") => return Ok(()),
                Some("failed") | Some("cancelled") => {
                    return Err(QmpError::Command {
                        command: "migrate".into(),
                        class: "MigrationFailed".into(),
                        desc: v
                            .get("error-desc")
                            .and_then(Value::as_str)
                            .unwrap_or("migration failed")
                            .to_owned(),
                    })
                }
                _ if Instant::now() >= deadline => {
                    return Err(QmpError::Timeout {
                        path: self.path.clone(),
                        timeout,
                        what: "migration".into(),
                    })
                }
                _ => std::thread::sleep(Duration::from_millis(20)),
            }
        }
    }
}

/// The source port of the first `TCP[HOST_FORWARD]` row of `info usernet`, whose
/// columns are protocol, fd, source address, source port, destination address, ...
fn host_forward_port(usernet: &str) -> Option<u16> {
    usernet.lines().find_map(|line| {
        let mut cols = line.split_whitespace();
        (cols.next()? == "TCP[HOST_FORWARD]").then_some(())?;
        cols.nth(2)?.parse().ok()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::net::UnixListener;

    /// A fake QEMU speaking QMP on a socket: greeting, then scripted replies.
    fn fake_qemu(
        dir: &Path,
        replies: Vec<&'static str>,
    ) -> (PathBuf, std::thread::JoinHandle<Vec<String>>) {
        let path = dir.join("qmp.sock");
        let listener = UnixListener::bind(&path).expect("bind");
        let handle = std::thread::spawn(move || {
            let (stream, _) = listener.accept().expect("accept");
            let mut w = stream.try_clone().expect("clone");
            let mut r = BufReader::new(stream);
            w.write_all(b"{\"QMP\": {\"version\": {}, \"capabilities\": []}}\r\n")
                .expect("greet");
            let mut seen = Vec::new();
            for reply in replies {
                let mut line = String::new();
                if r.read_line(&mut line).expect("read") == 0 {
                    break;
                }
                seen.push(line.trim().to_owned());
                w.write_all(reply.as_bytes()).expect("reply");
            }
            seen
        });
        (path, handle)
    }

    #[test]
    fn negotiates_skips_events_and_reports_errors() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (path, handle) = fake_qemu(
            dir.path(),
            vec![
                "{\"return\": {}}\n",
                "{\"event\": \"STOP\", \"data\": {}}\n{\"return\": {\"status\": \"paused\", \"running\": false}}\n",
                "{\"error\": {\"class\": \"GenericError\", \"desc\": \"nope\"}}\n",
            ],
        );
        let mut q = Qmp::connect(&path, Duration::from_secs(5)).expect("connect");
        assert_eq!(
            q.query_status().expect("status"),
            RunStatus {
                running: false,
                status: "paused".into()
            }
        );
        let err = q.execute("cont", None).expect_err("error reply");
        assert_eq!(
            err.to_string(),
            "QMP command cont failed: GenericError: nope"
        );
        let seen = handle.join().expect("join");
        assert_eq!(seen[0], "{\"execute\":\"qmp_capabilities\"}");
        assert_eq!(seen[2], "{\"execute\":\"cont\"}");
    }

    #[test]
    fn a_silent_qemu_times_out() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("qmp.sock");
        let _listener = UnixListener::bind(&path).expect("bind");
        let err = Qmp::connect(&path, Duration::from_millis(200))
            .err()
            .expect("must time out");
        assert!(matches!(err, QmpError::Timeout { .. }), "{err}");
    }

    #[test]
    fn a_missing_socket_is_a_connect_error() {
        let dir = tempfile::tempdir().expect("tempdir");
        let err = Qmp::connect(&dir.path().join("none"), Duration::from_millis(50))
            .err()
            .expect("no socket");
        assert!(matches!(err, QmpError::Connect { .. }));
    }

    #[test]
    fn the_host_forward_port_is_read_from_info_usernet() {
        // QEMU 10.0's words for `hostfwd=tcp:127.0.0.1:0-10.0.2.15:22`.
        let text = "Hub -1 (n0):\r\n  Protocol[State]    FD  Source Address  Port   Dest. Address  Port RecvQ SendQ\r\n  TCP[HOST_FORWARD]   8       127.0.0.1 37361       10.0.2.15    22     0     0\r\n";
        assert_eq!(host_forward_port(text), Some(37361));
        assert_eq!(
            host_forward_port("Hub -1 (n0):\r\n  Protocol[State]    FD\r\n"),
            None
        );
    }
}
