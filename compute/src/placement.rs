//! Placement: which host runs a new instance, as Nova's scheduler decides by default.
//! A pure function of the hosts as the store sees them (capacity, allocation ratios,
//! enabled, heartbeat age, what their instances use) and what the flavor asks for;
//! the store calls it inside the transaction that records the instance, so the
//! choice and the record agree.
//!
//! Filters, in Nova's order: the host is enabled (`ComputeFilter`), up (its last
//! heartbeat younger than the timeout), and has the vCPUs, RAM and disk the flavor
//! wants free after the allocation ratios. Among the hosts left, the one with the
//! most free RAM wins (Nova's default RAM weigher, which spreads instances); ties go
//! to the name, so that placement is reproducible. An explicitly requested host goes
//! through the same filters and is refused with the one that failed.

use crate::flavor::Flavor;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::time::Duration;

/// How long a host counts as up after its last heartbeat (Nova's `service_down_time`
/// is 60 s; heartbeats here come every few seconds).
pub const DEFAULT_UP_TIMEOUT: Duration = Duration::from_secs(30);

/// An allocation ratio that is not a finite number above zero.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("the {name} allocation ratio must be a number above 0, not {value}")]
pub struct RatioError {
    pub name: &'static str,
    pub value: f64,
}

/// An amount of the three resources placement counts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Resources {
    pub vcpus: u64,
    pub ram_mb: u64,
    pub disk_gb: u64,
}

impl Resources {
    /// What an instance of `flavor` takes: its vCPUs and RAM, and root, ephemeral
    /// and swap disk together (swap rounded up to whole GB), as Nova's disk filter.
    pub fn of_flavor(flavor: &Flavor) -> Resources {
        Resources {
            vcpus: u64::from(flavor.vcpus),
            ram_mb: u64::from(flavor.ram_mb),
            disk_gb: u64::from(flavor.disk_gb)
                + u64::from(flavor.ephemeral_gb)
                + u64::from(flavor.swap_mb).div_ceil(1024),
        }
    }
}

/// How far a host's resources may be overcommitted.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct AllocationRatios {
    pub cpu: f64,
    pub ram: f64,
    pub disk: f64,
}

impl Default for AllocationRatios {
    /// Nova's defaults: CPU 16.0, RAM 1.5, disk 1.0.
    fn default() -> Self {
        AllocationRatios {
            cpu: 16.0,
            ram: 1.5,
            disk: 1.0,
        }
    }
}

impl AllocationRatios {
    /// Checks that every ratio is a finite number above zero.
    pub fn validate(&self) -> Result<(), RatioError> {
        for (name, value) in [("cpu", self.cpu), ("ram", self.ram), ("disk", self.disk)] {
            if !value.is_finite() || value <= 0.0 {
                return Err(RatioError { name, value });
            }
        }
        Ok(())
    }
}

/// A host as placement sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct HostState {
    pub name: String,
    pub capacity: Resources,
    pub ratios: AllocationRatios,
    pub enabled: bool,
    pub disabled_reason: Option<String>,
    /// Time since the last heartbeat, by the database's clock; `None`: never.
    pub heartbeat_age: Option<Duration>,
    /// What the instances placed on it take.
    pub used: Resources,
}

/// Why a host cannot take an instance: the filter that failed.
#[derive(Debug, Clone, PartialEq)]
pub enum Rejection {
    Disabled { reason: Option<String> },
    Down { heartbeat_age: Option<Duration> },
    Vcpus { free: i64, wanted: u64 },
    Ram { free: i64, wanted: u64 },
    Disk { free: i64, wanted: u64 },
}

impl fmt::Display for Rejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Rejection::Disabled { reason: None } => write!(f, "disabled"),
            Rejection::Disabled { reason: Some(r) } => write!(f, "disabled ({r})"),
            Rejection::Down {
                heartbeat_age: None,
            } => write!(f, "down (no heartbeat yet)"),
            Rejection::Down {
                heartbeat_age: Some(age),
            } => write!(f, "down (last heartbeat {} s ago)", age.as_secs()),
            Rejection::Vcpus { free, wanted } => {
                write!(f, "not enough vCPUs ({wanted} wanted, {free} free)")
            }
            Rejection::Ram { free, wanted } => {
                write!(f, "not enough RAM ({wanted} MiB wanted, {free} MiB free)")
            }
            Rejection::Disk { free, wanted } => {
                write!(f, "not enough disk ({wanted} GB wanted, {free} GB free)")
            }
        }
    }
}

/// Nova's words first: scripts and people look for "No valid host was found".
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PlacementError {
    #[error("No valid host was found. There are not enough hosts available: {}", summary(.rejections))]
    NoValidHost {
        rejections: Vec<(String, Rejection)>,
    },
    #[error("No valid host was found. There are no hosts: start a host agent, or use the local state folder")]
    NoHosts,
    #[error("No valid host was found. The requested host {host} is {reason}")]
    HostRefused { host: String, reason: Rejection },
    #[error("No valid host was found. There is no host named {0} (see compute host-list)")]
    UnknownHost(String),
}

/// How many hosts an error names for one filter before it counts the rest.
const NAMED_PER_FILTER: usize = 5;

fn summary(rejections: &[(String, Rejection)]) -> String {
    let mut out = Vec::new();
    for (i, (host, reason)) in rejections.iter().enumerate() {
        let kind = std::mem::discriminant(reason);
        let same_before = rejections[..i]
            .iter()
            .filter(|(_, r)| std::mem::discriminant(r) == kind)
            .count();
        if same_before < NAMED_PER_FILTER {
            out.push(format!("{host} is {reason}"));
        } else if same_before == NAMED_PER_FILTER {
            let rest = rejections[i..]
                .iter()
                .filter(|(_, r)| std::mem::discriminant(r) == kind)
                .count();
            out.push(format!("{rest} more for the same reason"));
        }
    }
    out.join("; ")
}

impl HostState {
    pub fn is_up(&self, up_timeout: Duration) -> bool {
        self.heartbeat_age.is_some_and(|age| age < up_timeout)
    }

    /// What may be allocated in all: capacity times the ratios, rounded down.
    pub fn limit(&self) -> Resources {
        let scale = |v: u64, ratio: f64| (v as f64 * ratio).floor() as u64;
        Resources {
            vcpus: scale(self.capacity.vcpus, self.ratios.cpu),
            ram_mb: scale(self.capacity.ram_mb, self.ratios.ram),
            disk_gb: scale(self.capacity.disk_gb, self.ratios.disk),
        }
    }

    /// What is left: limit minus use, per resource (negative when overcommitted past
    /// the ratios, e.g. after they were lowered).
    pub fn free(&self) -> (i64, i64, i64) {
        let limit = self.limit();
        let left = |l: u64, u: u64| l as i64 - u as i64;
        (
            left(limit.vcpus, self.used.vcpus),
            left(limit.ram_mb, self.used.ram_mb),
            left(limit.disk_gb, self.used.disk_gb),
        )
    }

    /// Runs the filters: `Ok` when the host can take `want` now.
    pub fn check(&self, want: &Resources, up_timeout: Duration) -> Result<(), Rejection> {
        if !self.enabled {
            return Err(Rejection::Disabled {
                reason: self.disabled_reason.clone(),
            });
        }
        if !self.is_up(up_timeout) {
            return Err(Rejection::Down {
                heartbeat_age: self.heartbeat_age,
            });
        }
        let (vcpus, ram, disk) = self.free();
        let fits = |free: i64, wanted: u64| free >= 0 && free as u64 >= wanted;
        if !fits(vcpus, want.vcpus) {
            return Err(Rejection::Vcpus {
                free: vcpus,
                wanted: want.vcpus,
            });
        }
        if !fits(ram, want.ram_mb) {
            return Err(Rejection::Ram {
                free: ram,
                wanted: want.ram_mb,
            });
        }
        if !fits(disk, want.disk_gb) {
            return Err(Rejection::Disk {
                free: disk,
                wanted: want.disk_gb,
            });
        }
        Ok(())
    }
}

/// Chooses the host for an instance needing `want`: `requested` when given and it
/// passes the filters, else the passing host with the most free RAM.
pub fn place<'h>(
    hosts: &'h [HostState],
    want: &Resources,
    requested: Option<&str>,
    up_timeout: Duration,
) -> Result<&'h HostState, PlacementError> {
    if let Some(name) = requested {
        let host = hosts
            .iter()
            .find(|h| h.name == name)
            .ok_or_else(|| PlacementError::UnknownHost(name.to_owned()))?;
        return host
            .check(want, up_timeout)
            .map(|()| host)
            .map_err(|reason| PlacementError::HostRefused {
                host: name.to_owned(),
                reason,
            });
    }
    if hosts.is_empty() {
        return Err(PlacementError::NoHosts);
    }
    let mut rejections = Vec::new();
    let mut best: Option<&HostState> = None;
    for host in hosts {
        match host.check(want, up_timeout) {
            Err(reason) => rejections.push((host.name.clone(), reason)),
            Ok(()) => {
                let better = match best {
                    None => true,
                    Some(b) => {
                        let (ram, b_ram) = (host.free().1, b.free().1);
                        ram > b_ram || (ram == b_ram && host.name < b.name)
                    }
                };
                if better {
                    best = Some(host);
                }
            }
        }
    }
    best.ok_or(PlacementError::NoValidHost { rejections })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host(name: &str, vcpus: u64, ram_mb: u64, disk_gb: u64) -> HostState {
        HostState {
            name: name.into(),
            capacity: Resources {
                vcpus,
                ram_mb,
                disk_gb,
            },
            ratios: AllocationRatios::default(),
            enabled: true,
            disabled_reason: None,
            heartbeat_age: Some(Duration::from_secs(1)),
            used: Resources::default(),
        }
    }

    fn want(vcpus: u64, ram_mb: u64, disk_gb: u64) -> Resources {
        Resources {
            vcpus,
            ram_mb,
            disk_gb,
        }
    }

    const T: Duration = DEFAULT_UP_TIMEOUT;

    #[test]
    fn the_host_with_the_most_free_ram_after_ratios_wins() {
        let mut a = host("a", 4, 8192, 100);
        a.used.ram_mb = 8192; // limit 12288: 4096 free
        let b = host("b", 4, 4096, 100); // limit 6144, all free
        let hosts = [a, b];
        assert_eq!(
            place(&hosts, &want(1, 512, 1), None, T)
                .expect("placed")
                .name,
            "b"
        );
        let tie = [host("z", 1, 1024, 10), host("m", 1, 1024, 10)];
        assert_eq!(
            place(&tie, &want(1, 512, 1), None, T).expect("placed").name,
            "m"
        );
    }

    #[test]
    fn ratios_decide_what_fits() {
        let h = host("a", 2, 1000, 10);
        assert!(
            h.check(&want(32, 1500, 10), T).is_ok(),
            "16 x 2 vCPUs, 1.5 x RAM"
        );
        assert_eq!(
            h.check(&want(33, 1, 1), T),
            Err(Rejection::Vcpus {
                free: 32,
                wanted: 33
            })
        );
        assert_eq!(
            h.check(&want(1, 1501, 1), T),
            Err(Rejection::Ram {
                free: 1500,
                wanted: 1501
            })
        );
        assert_eq!(
            h.check(&want(1, 1, 11), T),
            Err(Rejection::Disk {
                free: 10,
                wanted: 11
            })
        );
    }

    #[test]
    fn disabled_and_down_hosts_are_filtered_and_named() {
        let mut off = host("off", 8, 8192, 100);
        off.enabled = false;
        off.disabled_reason = Some("maintenance".into());
        let mut late = host("late", 8, 8192, 100);
        late.heartbeat_age = Some(Duration::from_secs(31));
        let mut never = host("never", 8, 8192, 100);
        never.heartbeat_age = None;
        let hosts = [off, late, never];
        let err = place(&hosts, &want(1, 1, 1), None, T).expect_err("none");
        assert_eq!(
            err.to_string(),
            "No valid host was found. There are not enough hosts available: off is disabled \
             (maintenance); late is down (last heartbeat 31 s ago); never is down (no heartbeat yet)"
        );
        let err = place(&hosts, &want(1, 1, 1), Some("off"), T).expect_err("refused");
        assert_eq!(
            err.to_string(),
            "No valid host was found. The requested host off is disabled (maintenance)"
        );
        assert!(matches!(
            place(&hosts, &want(1, 1, 1), Some("nope"), T),
            Err(PlacementError::UnknownHost(_))
        ));
        assert_eq!(
            place(&[], &want(1, 1, 1), None, T),
            Err(PlacementError::NoHosts)
        );
    }

    #[test]
    fn a_requested_host_is_honoured_when_it_passes() {
        let hosts = [host("big", 8, 65536, 100), host("small", 1, 1024, 10)];
        let got = place(&hosts, &want(1, 512, 1), Some("small"), T).expect("honoured");
        assert_eq!(got.name, "small");
    }

    #[test]
    fn many_rejections_are_counted_not_listed() {
        let hosts: Vec<HostState> = (0..9)
            .map(|i| {
                let mut h = host(&format!("h{i}"), 1, 1, 1);
                h.enabled = false;
                h
            })
            .collect();
        let text = place(&hosts, &want(1, 1, 1), None, T)
            .expect_err("none")
            .to_string();
        assert!(
            text.ends_with("h4 is disabled; 4 more for the same reason"),
            "{text}"
        );
    }

    #[test]
    fn a_flavor_takes_root_ephemeral_and_swap_disk() {
        let f = Flavor {
            name: "f".into(),
            vcpus: 2,
            ram_mb: 512,
            disk_gb: 10,
            ephemeral_gb: 5,
            swap_mb: 1025,
        };
        assert_eq!(Resources::of_flavor(&f), want(2, 512, 17));
    }
}
