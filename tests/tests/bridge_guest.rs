//! The metadata service from inside real guests over compute's `bridge` networking,
//! entirely inside a network namespace this test creates (`e2b-<pid>`), so the
//! bridge, the taps and 169.254.169.254 never touch the host's network: the test's
//! compute work runs on a thread that joined that namespace (`setns`), and every
//! process compute starts (QEMU, the metadata server) and every netlink socket it
//! opens inherit it.
//!
//! Two drive-less busybox guests set their fixed IP from the kernel command line
//! (no DHCP in bridge mode; a guest with the guest-agent reads it from
//! network_data.json), then fetch `/openstack/latest/meta_data.json`, EC2 leaves and
//! an IMDSv2-token-protected leaf from http://169.254.169.254 with busybox `wget` and
//! `nc`; the bytes must equal compute's renderer for that instance, so the server knew
//! each guest by its source address. Over IPv6 they ask
//! `http://[fe80::a9fe:a9fe%eth0]/` from the link-local address their kernel made from
//! their MAC (no other IPv6 configuration), and `http://[fd00:ec2::254]/`, which is
//! unreachable until the guest routes it onto its link (bridge mode sends no router
//! advertisements) and then answers the same. The second guest then takes the first
//! one's link-local address, and after that its IPv4 address, and asks again:
//! compute's anti-spoofing rules must leave both unanswered. Deleting both removes the
//! taps, the server and the bridge.
//!
//! Needs root and the `metadata-server` binary built beside the test.

use compute::flavor::Flavor;
use compute_host::driver::images::ImageImport;
use compute_host::driver::{bridge, BootRequest, Host, NetworkMode};
use e2e::hostguest::{console, open_networked_host, rendered, section, wait_for};
use e2e::{guest, netguest};
use std::collections::HashSet;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::os::fd::AsFd;
use std::process::Command;
use std::time::{Duration, Instant};

/// A safeguard against a hung guest, not a speed assertion (TCG on a busy host).
const PATIENCE: Duration = Duration::from_secs(900);
const BRIDGE: &str = "e2b-br0";

/// The guest's `/init` after the common prelude: its address and gateway come from
/// the kernel command line (`e2e_ip=A/P e2e_gw=G`).
const INIT: &str = r#"for w in $(cat /proc/cmdline); do
  case "$w" in e2e_ip=*) addr=${w#e2e_ip=};; e2e_gw=*) gw=${w#e2e_gw=};; e2e_spoof=*) spoof=${w#e2e_spoof=};; e2e_spoof6=*) spoof6=${w#e2e_spoof6=};; esac
done
ip link set lo up
ip addr add "$addr" dev eth0
ip link set eth0 up
ip route add default via "$gw" dev eth0
echo "GUEST-ADDR $addr"
show() { echo "GUEST-BEGIN $1"; [ -f /tmp/out ] && base64 /tmp/out; echo "GUEST-END $1 rc=$2"; }
get() { name=$1; shift; rm -f /tmp/out; wget -q -O /tmp/out "$@"; rc=$?; show $name $rc; }
i=0
until wget -q -O /tmp/out http://169.254.169.254/openstack/latest/meta_data.json; do
  i=$((i+1)); [ $i -ge 120 ] && break; sleep 1
done
echo "GUEST-FIRST-ANSWER tries=$i"
show meta_data 0
get instance_id http://169.254.169.254/latest/meta-data/instance-id
get local_ipv4 http://169.254.169.254/latest/meta-data/local-ipv4
printf 'PUT /latest/api/token HTTP/1.0\r\nHost: 169.254.169.254\r\nX-aws-ec2-metadata-token-ttl-seconds: 300\r\n\r\n' | nc -w 5 169.254.169.254 80 > /tmp/raw
echo "GUEST-TOKEN-STATUS $(head -n 1 /tmp/raw)"
tok=$(tail -n 1 /tmp/raw)
get token_instance_id --header "X-aws-ec2-metadata-token: $tok" http://169.254.169.254/latest/meta-data/instance-id
# IPv6, from the link-local address the kernel made from the MAC (usable once its
# duplicate address detection is done).
ll='http://[fe80::a9fe:a9fe%eth0]'
rc=1; i=0
while [ $rc -ne 0 ] && [ $i -lt 60 ]; do
  rm -f /tmp/out; wget -q -O /tmp/out "$ll/openstack/latest/meta_data.json"; rc=$?
  [ $rc -ne 0 ] && { i=$((i+1)); sleep 1; }
done
show meta_data6 $rc
get instance_id6 "$ll/latest/meta-data/instance-id"
# AWS's address is not on the guest's link: no route, until the guest adds one.
get ula_unrouted 'http://[fd00:ec2::254]/latest/meta-data/instance-id'
ip -6 route add fd00:ec2::254/128 dev eth0
get instance_id_ula 'http://[fd00:ec2::254]/latest/meta-data/instance-id'
if [ -n "$spoof6" ]; then
  # Take another guest's link-local address (its DAD probe for it goes unanswered,
  # so the address becomes usable) and ask as that guest.
  ip -6 addr flush dev eth0 scope link
  ip -6 addr add "$spoof6/64" dev eth0
  i=0
  while ip -6 addr show dev eth0 | grep -q tentative && [ $i -lt 30 ]; do i=$((i+1)); sleep 1; done
  echo "GUEST-SPOOF6-ADDR $(ip -6 addr show dev eth0 scope link | grep inet6 | tr -s ' ')"
  rc=1; n=0
  while [ $rc -ne 0 ] && [ $n -lt 3 ]; do
    printf 'GET /openstack/latest/meta_data.json HTTP/1.0\r\nHost: [fe80::a9fe:a9fe]\r\n\r\n' \
      | nc -w 5 fe80::a9fe:a9fe%eth0 80 > /tmp/raw 2>/dev/null
    if grep -q '^HTTP/1.[01] 200' /tmp/raw; then sed '1,/^\r$/d' /tmp/raw > /tmp/out; rc=0; else rm -f /tmp/out; rc=1; fi
    n=$((n+1)); [ $rc -ne 0 ] && sleep 2
  done
  show spoofed6 $rc
fi
if [ -n "$spoof" ]; then
  # Take another guest's address and ask as that guest.
  ip addr flush dev eth0
  ip neigh flush dev eth0
  ip addr add "$spoof/${addr#*/}" dev eth0
  ip route add default via "$gw" dev eth0
  # Its ARP for the gateway, sent from the claimed address, moves the host's
  # neighbour entry to this guest; retry while that settles.
  rc=1; n=0
  while [ $rc -ne 0 ] && [ $n -lt 4 ]; do
    printf 'GET /openstack/latest/meta_data.json HTTP/1.0\r\nHost: 169.254.169.254\r\n\r\n' \
      | nc -w 5 169.254.169.254 80 > /tmp/raw 2>/dev/null
    # An answer is a 200 with a body; anything else (nothing, a reset) is a refusal.
    if grep -q '^HTTP/1.[01] 200' /tmp/raw; then sed '1,/^\r$/d' /tmp/raw > /tmp/out; rc=0; else rm -f /tmp/out; rc=1; fi
    n=$((n+1)); [ $rc -ne 0 ] && sleep 2
  done
  show spoofed $rc
fi
echo GUEST-DONE
while true; do sleep 60; done
"#;

fn ip(args: &[&str]) {
    let out = Command::new("ip")
        .args(args)
        .output()
        .expect("run ip (iproute2)");
    assert!(
        out.status.success(),
        "ip {} failed (this test needs root): {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The test's namespace, deleted however the test ends.
struct Netns(String);

impl Netns {
    fn create() -> Netns {
        let name = format!("e2b-{}", std::process::id());
        let _ = Command::new("ip").args(["netns", "delete", &name]).output();
        ip(&["netns", "add", &name]);
        Netns(name)
    }

    fn path(&self) -> String {
        format!("/run/netns/{}", self.0)
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "delete", &self.0])
            .output();
    }
}

/// Deletes what the test booted even when an assertion fails.
struct Cleanup {
    host: Host,
    uuids: Vec<String>,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        for u in self.uuids.drain(..) {
            let _ = self.host.delete(&u);
        }
    }
}

/// Checks one guest's answers; returns when it first got one, since `booted_at`.
fn check_guest(host: &Host, uuid: &str, fixed_ip: Ipv4Addr, booted_at: Instant) -> Duration {
    wait_for(host, uuid, "GUEST-FIRST-ANSWER", PATIENCE);
    let first_answer = booted_at.elapsed();
    wait_for(host, uuid, "GUEST-DONE", PATIENCE);
    let log = console(host, uuid);
    let (meta, rc) = section(&log, "meta_data");
    assert_eq!(rc, "0", "{log}");
    assert_eq!(
        String::from_utf8_lossy(&meta),
        String::from_utf8_lossy(&rendered(host, uuid, "/openstack/latest/meta_data.json")),
        "{log}"
    );
    let parsed: serde_json::Value = serde_json::from_slice(&meta).expect("json");
    assert_eq!(parsed["uuid"], uuid, "the guest got its own document");
    for (name, path) in [
        ("instance_id", "/latest/meta-data/instance-id"),
        ("local_ipv4", "/latest/meta-data/local-ipv4"),
    ] {
        let (got, rc) = section(&log, name);
        assert_eq!(rc, "0", "{name}: {log}");
        assert_eq!(got, rendered(host, uuid, path), "{name}");
    }
    // IMDSv2 over the bridge: a token from PUT, then the leaf with it.
    assert!(
        log.contains("GUEST-TOKEN-STATUS HTTP/1.0 200 OK"),
        "the token PUT succeeds:\n{log}"
    );
    let (with_token, rc) = section(&log, "token_instance_id");
    assert_eq!(rc, "0", "{log}");
    assert_eq!(
        with_token,
        rendered(host, uuid, "/latest/meta-data/instance-id")
    );
    let (ipv4, _) = section(&log, "local_ipv4");
    assert_eq!(String::from_utf8_lossy(&ipv4), fixed_ip.to_string());

    // IPv6: known by its EUI-64 link-local address at fe80::a9fe:a9fe.
    let (meta6, rc) = section(&log, "meta_data6");
    assert_eq!(rc, "0", "over IPv6 link-local:\n{log}");
    assert_eq!(
        String::from_utf8_lossy(&meta6),
        String::from_utf8_lossy(&meta),
        "the same document over IPv6"
    );
    let instance_id = rendered(host, uuid, "/latest/meta-data/instance-id");
    let (got, rc) = section(&log, "instance_id6");
    assert_eq!(rc, "0", "{log}");
    assert_eq!(got, instance_id);
    // [fd00:ec2::254] needs a route the guest does not have; with it, the same answer.
    let (_, rc) = section(&log, "ula_unrouted");
    assert_ne!(rc, "0", "fd00:ec2::254 reached without a route?\n{log}");
    let (got, rc) = section(&log, "instance_id_ula");
    assert_eq!(
        rc, "0",
        "over [fd00:ec2::254] with an on-link route:\n{log}"
    );
    assert_eq!(got, instance_id);
    first_answer
}

/// Everything compute does, on a thread inside the test's namespace.
fn run_in_namespace() {
    let dir = tempfile::tempdir().expect("tempdir");
    let g = netguest::build(dir.path(), INIT).expect("test guest");
    let state = dir.path().join("state");
    let host = open_networked_host(&state, "10.79.0.0/24", NetworkMode::Bridge, BRIDGE);
    let mut t = Cleanup {
        host,
        uuids: Vec::new(),
    };
    t.host
        .store()
        .add_flavor(&Flavor {
            name: "t1".into(),
            vcpus: 1,
            ram_mb: 256,
            disk_gb: 1,
            ephemeral_gb: 0,
            swap_mb: 0,
        })
        .expect("flavor");
    let subnet = t.host.store().subnet();

    // compute gives out the first free address; the guest learns it from its image's
    // kernel command line, so each guest gets an image naming the address it will get.
    let boot = |t: &mut Cleanup,
                name: &str,
                used: &HashSet<Ipv4Addr>,
                spoof: Option<(Ipv4Addr, Ipv6Addr)>| {
        let expected = subnet.allocate_ip(used).expect("free address");
        let image = format!("busybox-{name}");
        t.host
            .import_image(&ImageImport {
                name: image.clone(),
                disk: g.disk.clone(),
                kernel: Some(g.kernel.clone()),
                ramdisk: Some(g.initramfs.clone()),
                cmdline: Some(format!(
                    "{} e2e_ip={expected}/{} e2e_gw={}{}",
                    guest::CMDLINE,
                    subnet.cidr.prefix(),
                    subnet.gateway(),
                    spoof
                        .map(|(ip, ll)| format!(" e2e_spoof={ip} e2e_spoof6={ll}"))
                        .unwrap_or_default()
                )),
            })
            .expect("import");
        let t0 = Instant::now();
        let rec = t
            .host
            .boot(&BootRequest {
                name: name.into(),
                image,
                flavor: "t1".into(),
                config_drive: false,
                ..Default::default()
            })
            .expect("boot");
        t.uuids.push(rec.uuid.clone());
        assert_eq!(
            rec.fixed_ip, expected,
            "compute allocated the address foreseen"
        );
        assert!(
            bridge::exists(&bridge::tap_name(&rec.uuid)).expect("netlink"),
            "the guest's tap exists"
        );
        (rec.uuid, rec.fixed_ip, rec.mac, t0)
    };
    let (a, a_ip, a_mac, a_t0) = boot(&mut t, "first", &HashSet::new(), None);
    // The second guest, once served, takes the first one's addresses and asks again.
    let a_ll = a_mac.eui64_link_local();
    let (b, b_ip, _, b_t0) = boot(&mut t, "second", &HashSet::from([a_ip]), Some((a_ip, a_ll)));
    let a_time = check_guest(&t.host, &a, a_ip, a_t0);
    let b_time = check_guest(&t.host, &b, b_ip, b_t0);
    eprintln!(
        "MEASURE bridge boot-to-first-metadata-answer: first {:.2}s, second {:.2}s (the second boots right after the first; host clock, console polled every 50 ms)",
        a_time.as_secs_f64(),
        b_time.as_secs_f64()
    );
    let log_b = console(&t.host, &b);
    let (spoofed, rc) = section(&log_b, "spoofed");
    assert_ne!(
        rc, "0",
        "a guest sending from another guest's address got an answer:\n{log_b}"
    );
    assert!(spoofed.is_empty(), "{log_b}");
    // The forged link-local address was the guest's to use (its DAD probe for it was
    // dropped, so nothing defended it), and still nothing answered.
    let forged = log_b
        .lines()
        .find(|l| l.contains("GUEST-SPOOF6-ADDR"))
        .unwrap_or_else(|| panic!("no forged IPv6 address:\n{log_b}"));
    assert!(
        forged.contains(&format!("{a_ll}/64")) && !forged.contains("tentative"),
        "{forged}"
    );
    let (spoofed6, rc) = section(&log_b, "spoofed6");
    assert_ne!(
        rc, "0",
        "a guest sending from another guest's link-local address got an answer:\n{log_b}"
    );
    assert!(spoofed6.is_empty(), "{log_b}");
    assert!(
        !log_b.contains(&a),
        "nothing of the first guest reaches the second"
    );

    let taps: Vec<String> = [&a, &b].iter().map(|u| bridge::tap_name(u)).collect();
    for u in t.uuids.drain(..).collect::<Vec<_>>() {
        t.host.delete(&u).expect("delete");
    }
    for tap in &taps {
        assert!(!bridge::exists(tap).expect("netlink"), "{tap} is gone");
    }
    assert!(
        !bridge::exists(BRIDGE).expect("netlink"),
        "the bridge goes with the last guest"
    );
    assert!(
        !state.join("metadata/server.pid").exists(),
        "the metadata server stops with the last guest"
    );
}

#[test]
fn guests_reach_their_own_metadata_over_a_bridge_in_a_namespace() {
    let ns = Netns::create();
    let path = ns.path();
    let worker = std::thread::spawn(move || {
        let f = std::fs::File::open(&path).expect("open the namespace");
        rustix::thread::move_into_link_name_space(
            f.as_fd(),
            Some(rustix::thread::LinkNameSpaceType::Network),
        )
        .expect("setns into the test's namespace");
        run_in_namespace();
    });
    let outcome = worker.join();
    drop(ns);
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }
}
