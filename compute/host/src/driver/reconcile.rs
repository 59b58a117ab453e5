//! Reconciling the database with the QEMU processes that actually exist, at every
//! start of `compute`: a crashed or killed QEMU shows as `shutdown`; a task whose
//! `compute` died (its lock is free) is cleared; an interrupted boot becomes `error`
//! with a fault, and its stray process and files are removed, unless its boot is
//! queued again (a host agent killed while building: the boot is taken again and
//! starts from nothing). A guest's relay and network namespace (user mode) are
//! treated like its QEMU.

use super::{lock, now, DriverError, Host, KILL_TIMEOUT};
use crate::qemu::process;
use compute::lifecycle::{PowerState, VmState};
use compute_store::{Fault, FaultChange, WorkAction};
use std::collections::HashSet;

impl Host {
    /// Makes the database agree with the QEMU processes of this host (see the
    /// module documentation); every command does it first, a host agent at start
    /// and then now and again.
    pub fn reconcile(&mut self) -> Result<(), DriverError> {
        let summaries = self.store.instances_claiming_processes(&self.name)?;
        let queued_boots: HashSet<String> = self
            .store
            .queued_work(&self.name)?
            .into_iter()
            .filter(|w| matches!(w.action, WorkAction::Boot { .. }))
            .map(|w| w.uuid)
            .collect();
        for s in summaries {
            let claims_process =
                s.pid.is_some() || s.state.task.is_some() || s.state.power != PowerState::Shutdown;
            if !claims_process {
                continue;
            }
            let pidfile = self.layout.instance(&s.uuid).pidfile();
            let pid = s.pid.or_else(|| process::read_pidfile(&pidfile).ok());
            let alive = pid.filter(|p| process::is_guest(*p, &s.uuid));
            let steady = s.state.task.is_none()
                && alive.is_some()
                && matches!(
                    (s.state.vm, s.state.power),
                    (VmState::Active, PowerState::Running) | (VmState::Paused, PowerState::Paused)
                );
            if steady {
                continue;
            }
            // A command working on this instance holds its lock: leave it be.
            let Some(_guard) = lock::try_lock(&self.layout.lock(&s.uuid))? else {
                continue;
            };
            let rec = self.store.instance_by_uuid(&s.uuid)?;
            let observed = alive.map(|_| match rec.state.power {
                PowerState::Paused => PowerState::Paused,
                _ => PowerState::Running,
            });
            let interrupted_boot = rec.state.vm == VmState::Building;
            if interrupted_boot {
                if let Some(pid) = alive {
                    process::kill(pid, &s.uuid, KILL_TIMEOUT)?;
                }
                self.unwire_net(&s.uuid)?;
                let _ = std::fs::remove_dir_all(&self.layout.instance(&s.uuid).dir);
                self.store.set_runtime(&s.uuid, None, None)?;
                if queued_boots.contains(&s.uuid) {
                    tracing::info!(
                        uuid = s.uuid,
                        qemu = alive,
                        "reconciled: interrupted boot cleaned up; its queued boot builds it again"
                    );
                    continue;
                }
                let fault = Fault {
                    code: 500,
                    message: "Build of instance aborted: compute stopped while it was building"
                        .into(),
                };
                let state = rec.state.observe(None, true);
                self.store
                    .set_state(&s.uuid, state, FaultChange::Set(&fault), &now())?;
                tracing::info!(
                    uuid = s.uuid,
                    qemu = alive,
                    "reconciled: interrupted boot cleaned up"
                );
                continue;
            }
            let new = rec.state.observe(observed, true);
            if new != rec.state {
                if new.vm != rec.state.vm {
                    tracing::warn!(uuid = %s.uuid, from = %rec.state.vm, to = %new.vm, power = %new.power, "reconciled");
                } else {
                    tracing::info!(
                        uuid = s.uuid,
                        vm_state = %new.vm,
                        task_state = new.task.map(|t| t.as_str()),
                        power_state = %new.power,
                        "reconciled"
                    );
                }
                self.store
                    .set_state(&s.uuid, new, FaultChange::Keep, &now())?;
            }
            if alive.is_none() && rec.pid.is_some() {
                self.store.set_runtime(&s.uuid, None, None)?;
            }
            if alive.is_none() {
                // Its relay and namespace go with it, like its QEMU.
                self.unwire_net(&s.uuid)?;
            }
        }
        Ok(())
    }
}
