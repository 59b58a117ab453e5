//! The records a [`Store`](crate::Store) keeps and hands back, the same for every
//! backend.

use compute::flavor::Flavor;
use compute::lifecycle::State;
use compute::mac::MacAddr;
use serde::{Deserialize, Serialize};
use std::net::Ipv4Addr;

/// A disk image as recorded; its files are `images/<id>/{disk,kernel,ramdisk}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Image {
    pub id: String,
    pub name: String,
    pub format: String,
    pub size: u64,
    pub virtual_size: u64,
    pub checksum: String,
    pub has_kernel: bool,
    pub has_ramdisk: bool,
    pub cmdline: Option<String>,
    pub created_at: String,
}

/// Nova's `fault` as `nova show` prints it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fault {
    pub code: u16,
    pub message: String,
}

/// What a state change does to the instance's fault.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultChange<'a> {
    /// Leaves it as it is.
    Keep,
    /// Removes it (the action succeeded).
    Clear,
    /// Records this one (the action failed).
    Set(&'a Fault),
}

/// One instance row.
#[derive(Debug, Clone, PartialEq)]
pub struct InstanceRecord {
    pub uuid: String,
    pub name: String,
    pub flavor: Flavor,
    pub image_id: String,
    pub key_name: Option<String>,
    pub state: State,
    pub fixed_ip: Ipv4Addr,
    pub mac: MacAddr,
    pub ssh_port: Option<u16>,
    pub pid: Option<i32>,
    pub fault: Option<Fault>,
    /// The instance document (instance.md), JSON.
    pub document: String,
    pub created_at: String,
    pub updated_at: String,
}

/// What `list` shows: no documents, so that listing stays fast.
#[derive(Debug, Clone, PartialEq)]
pub struct InstanceSummary {
    pub uuid: String,
    pub name: String,
    pub state: State,
    pub fixed_ip: String,
    pub pid: Option<i32>,
}

/// An instance about to be recorded; IP and MAC are allocated on insert.
pub struct NewInstance<'a> {
    pub uuid: &'a str,
    pub name: &'a str,
    pub flavor: &'a Flavor,
    pub image_id: &'a str,
    pub key_name: Option<&'a str>,
    pub now: &'a str,
    /// Candidates for the MAC's last three bytes, tried in order.
    pub mac_candidates: Vec<[u8; 3]>,
    /// Builds the document once IP and MAC are known.
    pub document: &'a dyn Fn(Ipv4Addr, MacAddr) -> Result<String, String>,
}
