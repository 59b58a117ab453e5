//! Starting and stopping QEMU processes: spawn with `-daemonize`, read the pid file,
//! tell whether a pid is still our guest, kill. The argv comes from [`super::command`].

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// At most this much of QEMU's error output is kept for a fault message.
const MAX_STDERR: usize = 4096;

#[derive(Debug, thiserror::Error)]
pub enum ProcessError {
    #[error("cannot run {program}")]
    Spawn {
        program: String,
        source: std::io::Error,
    },
    #[error("QEMU failed to start ({status}): {stderr}")]
    Failed { status: String, stderr: String },
    #[error("QEMU started but its pid file {path} is unreadable: {problem}")]
    PidFile { path: PathBuf, problem: String },
    #[error("QEMU (pid {pid}) did not exit within {timeout:?}")]
    StillRunning { pid: i32, timeout: Duration },
    #[error("cannot signal pid {pid}")]
    Signal { pid: i32, source: std::io::Error },
}

/// Runs a daemonizing QEMU and returns the guest's pid once the parent has exited
/// (QEMU daemonizes only after the guest is set up, so errors surface here).
pub fn spawn_daemon(argv: &[String], pidfile: &Path) -> Result<i32, ProcessError> {
    let (program, args) = argv.split_first().ok_or_else(|| ProcessError::Spawn {
        program: String::new(),
        source: std::io::Error::new(std::io::ErrorKind::InvalidInput, "empty argv"),
    })?;
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|source| ProcessError::Spawn {
            program: program.clone(),
            source,
        })?;
    let mut stderr = Vec::new();
    if let Some(mut e) = child.stderr.take() {
        // The daemon keeps no copy of this pipe open past daemonizing, so EOF comes.
        let _ = e.by_ref().take(MAX_STDERR as u64).read_to_end(&mut stderr);
    }
    let status = child.wait().map_err(|source| ProcessError::Spawn {
        program: program.clone(),
        source,
    })?;
    let stderr = String::from_utf8_lossy(&stderr).trim().to_owned();
    if !status.success() {
        return Err(ProcessError::Failed {
            status: status.to_string(),
            stderr,
        });
    }
    read_pidfile(pidfile)
}

pub fn read_pidfile(path: &Path) -> Result<i32, ProcessError> {
    let text = std::fs::read_to_string(path).map_err(|e| ProcessError::PidFile {
        path: path.to_owned(),
        problem: e.to_string(),
    })?;
    text.trim().parse().map_err(|_| ProcessError::PidFile {
        path: path.to_owned(),
        problem: format!("{text:?}"),
    })
}

/// True when `pid` is alive and is the QEMU of the instance `uuid` (pids are reused).
pub fn is_guest(pid: i32, uuid: &str) -> bool {
    let Ok(cmdline) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
        return false;
    };
    let is_zombie = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| {
            s.rsplit_once(") ")
                .is_some_and(|(_, rest)| rest.starts_with('Z'))
        })
        .unwrap_or(true);
    !is_zombie && cmdline.split(|b| *b == 0).any(|arg| arg == uuid.as_bytes())
}

fn pid_of(pid: i32) -> Result<rustix::process::Pid, ProcessError> {
    rustix::process::Pid::from_raw(pid).ok_or_else(|| ProcessError::Signal {
        pid,
        source: std::io::Error::new(std::io::ErrorKind::InvalidInput, "not a pid"),
    })
}

/// Sends SIGKILL to the guest's QEMU and waits until it is gone.
pub fn kill(pid: i32, uuid: &str, timeout: Duration) -> Result<(), ProcessError> {
    if !is_guest(pid, uuid) {
        return Ok(());
    }
    match rustix::process::kill_process(pid_of(pid)?, rustix::process::Signal::KILL) {
        Ok(()) | Err(rustix::io::Errno::SRCH) => {}
        Err(e) => {
            return Err(ProcessError::Signal {
                pid,
                source: e.into(),
            })
        }
    }
    wait_gone(pid, uuid, timeout)
}

/// Asks a process of ours (`marker` in its argv) to exit with SIGTERM; SIGKILL when it
/// is still there after `timeout`.
pub fn terminate(pid: i32, marker: &str, timeout: Duration) -> Result<(), ProcessError> {
    if !is_guest(pid, marker) {
        return Ok(());
    }
    match rustix::process::kill_process(pid_of(pid)?, rustix::process::Signal::TERM) {
        Ok(()) | Err(rustix::io::Errno::SRCH) => {}
        Err(e) => {
            return Err(ProcessError::Signal {
                pid,
                source: e.into(),
            })
        }
    }
    match wait_gone(pid, marker, timeout) {
        Ok(()) => Ok(()),
        Err(_) => kill(pid, marker, timeout),
    }
}

/// Sends SIGHUP (reload) to a process of ours; false when it is not running.
pub fn hangup(pid: i32, marker: &str) -> bool {
    is_guest(pid, marker)
        && pid_of(pid)
            .is_ok_and(|p| rustix::process::kill_process(p, rustix::process::Signal::HUP).is_ok())
}

/// Waits until the guest's QEMU has exited.
pub fn wait_gone(pid: i32, uuid: &str, timeout: Duration) -> Result<(), ProcessError> {
    let deadline = Instant::now() + timeout;
    while is_guest(pid, uuid) {
        if Instant::now() >= deadline {
            return Err(ProcessError::StillRunning { pid, timeout });
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    // The leader shows as a zombie while the other threads (vCPUs, I/O) may still be
    // exiting with its files open, and QEMU's locks on its disk images with them: a
    // QEMU started now on the same disks would fail to lock them. Wait for those
    // threads within the same deadline (a pid reused meanwhile only costs the wait).
    while !threads_exited(pid) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    Ok(())
}

/// True when no thread of `pid` runs any more (each is a zombie, or it is gone): only
/// then has it closed its files.
fn threads_exited(pid: i32) -> bool {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return true;
    };
    tasks.flatten().all(|task| {
        std::fs::read_to_string(task.path().join("stat")).map_or(true, |stat| {
            stat.rsplit_once(") ")
                .is_some_and(|(_, rest)| rest.starts_with('Z') || rest.starts_with('X'))
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn threads_exited_only_once_every_thread_has() {
        assert!(!threads_exited(std::process::id() as i32), "this test runs");
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .expect("sleep runs");
        let pid = child.id() as i32;
        assert!(!threads_exited(pid), "sleeping is not exited");
        child.kill().expect("kill");
        // Killed but not reaped: a zombie, whose files are closed.
        let deadline = Instant::now() + Duration::from_secs(10);
        while !threads_exited(pid) {
            assert!(Instant::now() < deadline, "a killed child becomes a zombie");
            std::thread::sleep(Duration::from_millis(10));
        }
        child.wait().expect("reap");
        assert!(threads_exited(pid), "a reaped child is gone");
    }
}
