//! The lifecycle verbs after boot: stop, start, reboot (soft and hard), pause,
//! unpause, suspend, resume, rebuild, delete. Each is one [`Host::act`] call: the
//! state machine decides whether it may run, this module does the QEMU side.

use super::{io_err, DriverError, Host, KILL_TIMEOUT};
use crate::qemu::process;
use compute::lifecycle::Action;
use compute_store::InstanceRecord;
use serde_json::json;
use std::time::Duration;
use tracing::instrument;

/// How long a suspend may take to write the guest's memory to disk.
const SAVE_TIMEOUT: Duration = Duration::from_secs(120);

impl Host {
    /// ACPI power-down, then a hard stop once `timeout` has passed.
    #[instrument(skip_all, fields(uuid))]
    pub fn stop(&mut self, key: &str, timeout: Duration) -> Result<InstanceRecord, DriverError> {
        self.act(key, Action::Stop, |host, rec| host.power_off(rec, timeout))
    }

    #[instrument(skip_all, fields(uuid))]
    pub fn start(&mut self, key: &str) -> Result<InstanceRecord, DriverError> {
        self.act(key, Action::Start, |host, rec| {
            host.start_qemu(rec, false).map(drop)
        })
    }

    /// Soft: a guest-visible reset through QMP. Hard: a new QEMU process.
    #[instrument(skip_all, fields(uuid))]
    pub fn reboot(&mut self, key: &str, hard: bool) -> Result<InstanceRecord, DriverError> {
        self.act(key, Action::Reboot { hard }, |host, rec| {
            if hard {
                host.kill_qemu(rec)?;
                let _ = std::fs::remove_file(host.layout.instance(&rec.uuid).saved_state());
                host.start_qemu(rec, false).map(drop)
            } else {
                host.qmp(&rec.uuid)?
                    .execute("system_reset", None)
                    .map(drop)
                    .map_err(Into::into)
            }
        })
    }

    #[instrument(skip_all, fields(uuid))]
    pub fn pause(&mut self, key: &str) -> Result<InstanceRecord, DriverError> {
        self.act(key, Action::Pause, |host, rec| {
            host.expect_status(rec, "stop", false)
        })
    }

    #[instrument(skip_all, fields(uuid))]
    pub fn unpause(&mut self, key: &str) -> Result<InstanceRecord, DriverError> {
        self.act(key, Action::Unpause, |host, rec| {
            host.expect_status(rec, "cont", true)
        })
    }

    /// Saves the guest's memory to `suspended.state` and ends QEMU.
    #[instrument(skip_all, fields(uuid))]
    pub fn suspend(&mut self, key: &str) -> Result<InstanceRecord, DriverError> {
        self.act(key, Action::Suspend, |host, rec| {
            let p = host.layout.instance(&rec.uuid);
            let mut qmp = host.qmp(&rec.uuid)?;
            qmp.execute("stop", None)?;
            let target = p.saved_state().to_str().map(str::to_owned).ok_or_else(|| {
                DriverError::Invalid(format!("{} is not UTF-8", p.saved_state().display()))
            })?;
            let uri = format!("exec:cat > '{}'", target.replace('\'', r"'\''"));
            qmp.execute("migrate", Some(json!({ "uri": uri })))?;
            qmp.wait_migration(SAVE_TIMEOUT)?;
            let _ = qmp.execute("quit", None);
            host.kill_qemu(rec)
        })
    }

    /// Starts QEMU from the saved state; the guest continues where it was.
    #[instrument(skip_all, fields(uuid))]
    pub fn resume(&mut self, key: &str) -> Result<InstanceRecord, DriverError> {
        self.act(key, Action::Resume, |host, rec| {
            let p = host.layout.instance(&rec.uuid);
            if !p.saved_state().exists() {
                return Err(DriverError::Invalid(format!(
                    "no saved state at {}",
                    p.saved_state().display()
                )));
            }
            host.start_qemu(rec, true)?;
            let mut qmp = host.qmp(&rec.uuid)?;
            let deadline = std::time::Instant::now() + SAVE_TIMEOUT;
            loop {
                let status = qmp.query_status()?;
                if status.running {
                    break;
                }
                if status.status != "inmigrate" {
                    qmp.execute("cont", None)?;
                } else if std::time::Instant::now() >= deadline {
                    return Err(DriverError::UnexpectedStatus {
                        status: status.status,
                        expected: "running",
                    });
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            std::fs::remove_file(p.saved_state()).map_err(io_err(&p.saved_state()))
        })
    }

    /// A fresh root disk from `image` (or the same image), new config drive, new QEMU.
    #[instrument(skip_all, fields(uuid))]
    pub fn rebuild(
        &mut self,
        key: &str,
        image: Option<&str>,
    ) -> Result<InstanceRecord, DriverError> {
        let new_image = match image {
            Some(i) => Some(self.store.image(i)?),
            None => None,
        };
        self.act(key, Action::Rebuild, |host, rec| {
            host.kill_qemu(rec)?;
            let image = match &new_image {
                Some(i) => i.clone(),
                None => host.store.image(&rec.image_id)?,
            };
            let mut doc: compute::InstanceDocument =
                serde_json::from_str(&rec.document).map_err(|e| {
                    DriverError::Invalid(format!("stored document of {}: {e}", rec.uuid))
                })?;
            doc.image_id = Some(image.id.clone());
            doc.kernel_id = image.has_kernel.then(|| image.id.clone());
            doc.ramdisk_id = image.has_ramdisk.then(|| image.id.clone());
            let text =
                serde_json::to_string(&doc).map_err(|e| DriverError::Invalid(e.to_string()))?;
            host.store.set_document(&rec.uuid, &image.id, &text)?;
            let rec = host.store.instance_by_uuid(&rec.uuid)?;
            let p = host.layout.instance(&rec.uuid);
            let _ = std::fs::remove_file(p.saved_state());
            host.make_root_disk(&rec, &rec.flavor, &image)?;
            if p.config_drive().exists() {
                host.make_config_drive(&rec)?;
            }
            host.start_qemu(&rec, false).map(drop)
        })
    }

    /// Ends QEMU, purges every file of the instance and frees its IP and MAC.
    #[instrument(skip_all, fields(uuid))]
    pub fn delete(&mut self, key: &str) -> Result<InstanceRecord, DriverError> {
        self.act(key, Action::Delete, |host, rec| {
            host.kill_qemu(rec)?;
            let dir = host.layout.instance(&rec.uuid).dir;
            match std::fs::remove_dir_all(&dir) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(io_err(&dir)(e)),
            }
            host.store.delete_instance(&rec.uuid)?;
            let _ = std::fs::remove_file(host.layout.lock(&rec.uuid));
            Ok(())
        })
    }

    fn power_off(&mut self, rec: &InstanceRecord, timeout: Duration) -> Result<(), DriverError> {
        let pid = rec.pid.filter(|pid| process::is_guest(*pid, &rec.uuid));
        if let Some(pid) = pid {
            if let Ok(mut qmp) = self.qmp(&rec.uuid) {
                let _ = qmp.execute("system_powerdown", None);
            }
            if process::wait_gone(pid, &rec.uuid, timeout).is_err() {
                process::kill(pid, &rec.uuid, KILL_TIMEOUT)?;
            }
        }
        self.kill_qemu(rec)
    }

    fn expect_status(
        &mut self,
        rec: &InstanceRecord,
        command: &str,
        running: bool,
    ) -> Result<(), DriverError> {
        let mut qmp = self.qmp(&rec.uuid)?;
        qmp.execute(command, None)?;
        let status = qmp.query_status()?;
        if status.running != running {
            let expected = if running { "running" } else { "paused" };
            return Err(DriverError::UnexpectedStatus {
                status: status.status,
                expected,
            });
        }
        Ok(())
    }
}
