//! Compute on one host: everything that touches it. [`qemu`] turns a typed guest
//! description into QEMU's argv (pure, golden-tested) and runs it, speaks QMP and
//! drives `qemu-img`; [`driver`] carries out the lifecycle actions on a state
//! folder: disks, guest networking (namespaces and relays, or a bridge with taps
//! and nftables anti-spoofing), the managed metadata server, and config drives
//! through [`drive_builder`]; [`keygen`] makes SSH key pairs; [`agent`] is the host
//! agent that carries out the work a shared database queues for this host.
//!
//! It parses no command line and prints nothing (the `compute` binary does); what an
//! instance document says and how its metadata renders come from the `compute` core.

pub mod agent;
pub mod drive_builder;
pub mod driver;
pub mod keygen;
pub mod qemu;
