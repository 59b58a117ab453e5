//! The in-guest agent: finds its instance's data on a `config-2` drive (read without
//! mounting) or from the metadata service, and configures the guest from it.
//!
//! The flow is three pure-ish stages with I/O only at their edges:
//! [`discover`] picks a [`source::Provider`]; [`view::read`] parses what it has with
//! `compute`'s types; [`plan::build`] turns that into the desired state without
//! touching anything; [`apply::apply`] carries the plan out step by step and returns
//! a [`report::Report`]. Guest files are reached through [`guestfs`] (never outside
//! the root) and replaced through one [`compute_io::atomic::FileBatch`] per run,
//! compare-first and under the workspace's one durability rule. `network_data.json` means what `compute`'s
//! network model says, the reading the instance was validated with. Errors are typed
//! per module and printed once, whole, by [`report::error_chain`].

pub mod apply;
pub mod cloudconfig;
pub mod discover;
pub mod guestfs;
pub mod netplan;
pub mod plan;
pub mod report;
pub mod source;
pub mod state;
pub mod userdata;
pub mod view;
pub mod watch;
