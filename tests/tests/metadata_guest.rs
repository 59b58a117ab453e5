//! The metadata service from inside real guests, over compute's `user` networking:
//! a busybox guest with no config drive gets its address from QEMU's DHCP
//! (`udhcpc`), then fetches `/openstack/latest/meta_data.json`, an EC2 leaf, and the
//! same leaf with an IMDSv2 token it got by a raw `PUT /latest/api/token` (busybox
//! `wget` cannot PUT, so `nc` sends it); a bogus token is refused. Every body is
//! printed base64-encoded between markers on the serial console and must equal what
//! compute's renderer gives for that instance. A second guest on the same host gets
//! its own data, never the first's. Deleting both leaves no namespace, relay or
//! server behind.
//!
//! Needs root (network namespaces) and the `metadata-server` binary built beside the
//! test (`cargo test --workspace` builds it; or set E2E_METADATA_SERVER).

use compute::flavor::Flavor;
use compute_host::driver::images::ImageImport;
use compute_host::driver::usernet;
use compute_host::driver::{BootRequest, Host, NetworkMode};
use e2e::hostguest::{console, open_networked_host, rendered, section, wait_for};
use e2e::{guest, netguest};
use std::time::{Duration, Instant};

/// A safeguard against a hung guest, not a speed assertion (TCG on a busy host).
const PATIENCE: Duration = Duration::from_secs(900);

/// The guest's `/init` after the common prelude (busybox, /proc, /sys, /dev, modules).
const INIT: &str = r#"cat > /tmp/dhcp.sh <<'EOS'
#!/bin/sh
case "$1" in
bound|renew)
  ifconfig "$interface" "$ip" netmask "$subnet" up
  for r in $router; do route add default gw "$r" dev "$interface"; break; done
  echo "GUEST-LEASE ip=$ip" > /dev/console
  ;;
esac
EOS
chmod +x /tmp/dhcp.sh
ip link set lo up
ip link set eth0 up
echo "GUEST-BOOT serial=$(cat /sys/class/dmi/id/product_serial) uptime=$(cut -d' ' -f1 /proc/uptime)"
udhcpc -i eth0 -s /tmp/dhcp.sh -q -f -n -t 30 -T 1 >/dev/null 2>&1 || echo GUEST-DHCP-FAILED
show() { echo "GUEST-BEGIN $1"; [ -f /tmp/out ] && base64 /tmp/out; echo "GUEST-END $1 rc=$2"; }
get() { name=$1; shift; rm -f /tmp/out; wget -q -O /tmp/out "$@"; rc=$?; show $name $rc; }
i=0
until wget -q -O /tmp/out http://169.254.169.254/openstack/latest/meta_data.json; do
  i=$((i+1)); [ $i -ge 60 ] && break; sleep 1
done
echo "GUEST-FIRST-ANSWER uptime=$(cut -d' ' -f1 /proc/uptime) tries=$i"
show meta_data 0
get instance_id http://169.254.169.254/latest/meta-data/instance-id
printf 'PUT /latest/api/token HTTP/1.0\r\nHost: 169.254.169.254\r\nX-aws-ec2-metadata-token-ttl-seconds: 300\r\n\r\n' | nc 169.254.169.254 80 > /tmp/raw
echo "GUEST-TOKEN-STATUS $(head -n 1 /tmp/raw)"
tok=$(tail -n 1 /tmp/raw)
get token_instance_id --header "X-aws-ec2-metadata-token: $tok" http://169.254.169.254/latest/meta-data/instance-id
get bogus_token --header "X-aws-ec2-metadata-token: bogus" http://169.254.169.254/latest/meta-data/instance-id
echo GUEST-DONE
while true; do sleep 60; done
"#;

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

/// Checks one guest's answers; returns its boot-to-first-answer time.
fn check_guest(host: &Host, uuid: &str, booted_at: Instant) -> Duration {
    wait_for(host, uuid, "GUEST-FIRST-ANSWER", PATIENCE);
    let first_answer = booted_at.elapsed();
    wait_for(host, uuid, "GUEST-DONE", PATIENCE);
    let log = console(host, uuid);
    assert!(!log.contains("GUEST-DHCP-FAILED"), "{log}");
    let rec = host.store().instance_by_uuid(uuid).expect("record");
    assert!(
        log.contains(&format!("GUEST-LEASE ip={}", rec.fixed_ip)),
        "QEMU's DHCP hands out the fixed IP:\n{log}"
    );

    let (meta, rc) = section(&log, "meta_data");
    assert_eq!(rc, "0");
    assert_eq!(
        String::from_utf8_lossy(&meta),
        String::from_utf8_lossy(&rendered(host, uuid, "/openstack/latest/meta_data.json"))
    );
    let parsed: serde_json::Value = serde_json::from_slice(&meta).expect("json");
    assert_eq!(parsed["uuid"], uuid, "the guest got its own document");

    let leaf = rendered(host, uuid, "/latest/meta-data/instance-id");
    let (plain, rc) = section(&log, "instance_id");
    assert_eq!((plain.as_slice(), rc.as_str()), (leaf.as_slice(), "0"));
    assert!(
        log.contains("GUEST-TOKEN-STATUS HTTP/1.0 200 OK"),
        "the token PUT succeeds:\n{log}"
    );
    let (with_token, rc) = section(&log, "token_instance_id");
    assert_eq!((with_token.as_slice(), rc.as_str()), (leaf.as_slice(), "0"));
    let (bogus, rc) = section(&log, "bogus_token");
    assert!(
        bogus.is_empty() && rc != "0",
        "a bogus token is refused: rc={rc}"
    );
    first_answer
}

#[test]
fn guests_reach_their_own_metadata_over_user_networking() {
    let dir = tempfile::tempdir().expect("tempdir");
    let g = netguest::build(dir.path(), INIT).expect("test guest");
    let state = dir.path().join("state");
    let host = open_networked_host(
        &state,
        "10.78.0.0/24",
        NetworkMode::User,
        compute_host::driver::bridge::DEFAULT_BRIDGE,
    );
    let mut t = Cleanup {
        host,
        uuids: Vec::new(),
    };
    t.host
        .import_image(&ImageImport {
            name: "busybox-net".into(),
            disk: g.disk.clone(),
            kernel: Some(g.kernel.clone()),
            ramdisk: Some(g.initramfs.clone()),
            cmdline: Some(guest::CMDLINE.into()),
        })
        .expect("import");
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

    let boot = |t: &mut Cleanup, name: &str| {
        let t0 = Instant::now();
        let rec = t
            .host
            .boot(&BootRequest {
                name: name.into(),
                image: "busybox-net".into(),
                flavor: "t1".into(),
                meta: [("role".to_owned(), name.to_owned())].into_iter().collect(),
                config_drive: false,
                ..Default::default()
            })
            .expect("boot");
        t.uuids.push(rec.uuid.clone());
        (rec.uuid, t0)
    };
    let (a, a_t0) = boot(&mut t, "first");
    assert!(
        !t.host.layout().instance(&a).config_drive().exists(),
        "no config drive: everything comes from the metadata service"
    );
    let a_time = check_guest(&t.host, &a, a_t0);
    let (b, b_t0) = boot(&mut t, "second");
    let b_time = check_guest(&t.host, &b, b_t0);
    assert_ne!(a, b);
    let b_log = console(&t.host, &b);
    assert!(
        !b_log.contains(&a),
        "nothing of the first guest reaches the second"
    );
    eprintln!(
        "MEASURE boot-to-first-metadata-answer: first {:.2}s, second {:.2}s (host clock, console polled every 50 ms)",
        a_time.as_secs_f64(),
        b_time.as_secs_f64()
    );

    for u in t.uuids.drain(..).collect::<Vec<_>>() {
        t.host.delete(&u).expect("delete");
        assert!(
            !usernet::netns_path(&u).exists(),
            "delete removes the instance's namespace"
        );
    }
    let server_pid = state.join("metadata/server.pid");
    assert!(
        !server_pid.exists(),
        "the metadata server stops with the last instance"
    );
}
