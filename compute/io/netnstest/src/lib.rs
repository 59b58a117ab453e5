//! A network namespace a test creates and removes, so that tests of links,
//! addresses, routes and listeners never touch the host's network: [`Netns`] made
//! with `ip netns add`, changed with [`Netns::ip`], entered by one thread with
//! [`Netns::enter`], deleted on drop. Needs root, as every namespace test of the
//! workspace; a failure to make one fails the test, it never skips.
//!
//! Tests only: no crate ships it.

use std::process::Command;

/// A named network namespace (`PREFIX-TAG-PID`), deleted on drop.
#[derive(Debug)]
pub struct Netns {
    name: String,
}

impl Netns {
    /// Makes `PREFIX-TAG-PID`, replacing a leftover of a crashed run with that name.
    /// The prefix says which test suite it belongs to.
    ///
    /// # Panics
    /// When `ip` is missing or the namespace cannot be made (not root).
    pub fn new(prefix: &str, tag: &str) -> Netns {
        let name = format!("{prefix}-{tag}-{}", std::process::id());
        let _ = Command::new("ip").args(["netns", "del", &name]).output();
        let out = Command::new("ip")
            .args(["netns", "add", &name])
            .output()
            .unwrap_or_else(|e| {
                panic!("ip not found: install it with 'apt-get install iproute2': {e}")
            });
        assert!(
            out.status.success(),
            "ip netns add {name} (namespace tests need root): {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Netns { name }
    }

    /// Its name, for `ip netns exec` and `ip -n`.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// `ip -n NAME ARGS`, which must succeed; its standard output.
    ///
    /// # Panics
    /// When `ip` fails: the test's setup or check is wrong.
    pub fn ip(&self, args: &[&str]) -> String {
        let out = Command::new("ip")
            .args(["-n", &self.name])
            .args(args)
            .output()
            .expect("ip runs");
        assert!(
            out.status.success(),
            "ip -n {} {args:?}: {}",
            self.name,
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).expect("ip prints UTF-8")
    }

    /// Runs `f` on a thread of its own inside the namespace: the sockets it opens
    /// (netlink, listeners) are the namespace's.
    ///
    /// # Panics
    /// When the namespace cannot be entered, or `f` panics.
    pub fn enter<T: Send>(&self, f: impl FnOnce() -> T + Send) -> T {
        let path = format!("/run/netns/{}", self.name);
        std::thread::scope(|s| {
            s.spawn(|| {
                let ns = std::fs::File::open(&path).expect("open the namespace");
                rustix::thread::move_into_link_name_space(
                    std::os::fd::AsFd::as_fd(&ns),
                    Some(rustix::thread::LinkNameSpaceType::Network),
                )
                .expect("enter the namespace");
                f()
            })
            .join()
            .expect("the thread in the namespace")
        })
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .output();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_namespace_is_its_own_network_and_goes_on_drop() {
        let ns = Netns::new("nst", "own");
        ns.ip(&[
            "link", "add", "nst0", "type", "veth", "peer", "name", "nst1",
        ]);
        assert!(ns.ip(&["link", "show", "nst0"]).contains("nst0"));
        let host_has_it = Command::new("ip")
            .args(["link", "show", "nst0"])
            .output()
            .expect("ip runs")
            .status
            .success();
        assert!(!host_has_it, "the link is in the namespace only");
        let inside = ns.enter(|| std::fs::read_to_string("/proc/thread-self/net/dev"));
        assert!(inside.expect("read").contains("nst0:"));
        let name = ns.name().to_owned();
        drop(ns);
        assert!(!std::path::Path::new("/run/netns").join(name).exists());
    }
}
