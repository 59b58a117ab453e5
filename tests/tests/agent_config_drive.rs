//! A real guest booted by compute's driver with a config drive and no network
//! metadata: the static guest-agent in a busybox initramfs finds the drive on the IDE
//! CD-ROM, configures hostname, SSH key, injected files, the static IPv4 network
//! compute chose for the NIC, runs the user data, then prints what it did on the
//! serial console (see `e2e::agent_guest`). Every item is checked from the log; then
//! the guest powers off, or (the demo's image) stays up and answers SSH with the key.

use compute::flavor::Flavor;
use compute::keypair::Keypair;
use compute_host::driver::images::ImageImport;
use compute_host::driver::{BootRequest, Host};
use compute_host::qemu::process;
use e2e::agent_guest::{self, AgentOutput};
use e2e::guest;
use std::process::Command;
use std::time::{Duration, Instant};

/// A safeguard against a hung guest, not a speed assertion (TCG on a busy host).
const PATIENCE: Duration = Duration::from_secs(900);
const PUBLIC_KEY: &str =
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHD80EN7Q4OWRVZagx/vfN4LLy67/OYLARcRyvsw2AfL e2e@test";
/// The SSH server (package dropbear-bin).
const DROPBEAR: &str = "/usr/sbin/dropbear";
const USER_DATA: &str =
    "#!/bin/sh\necho \"USER-DATA-RAN uid=$(id -u) host=$(hostname)\" > /dev/console\n";
const MOTD: &[u8] = b"hello from the config drive\n";
const BLOB: &[u8] = b"line one\nno newline at the end: \xc3\xa9";

/// A booted guest and what it printed.
struct Booted {
    _dir: tempfile::TempDir,
    host: Host,
    rec: compute_store::InstanceRecord,
    doc: compute::Instance,
    log: String,
    out: AgentOutput,
}

/// Boots the agent image (kernel command line `cmdline`, SSH server when
/// `ssh_server`) on its own subnet with a keypair holding `public_key`, user data,
/// two injected files and meta; waits for the agent's results on the console.
fn boot(cidr: &str, cmdline: &str, ssh_server: bool, public_key: &str) -> Booted {
    let dir = tempfile::tempdir().expect("tempdir");
    let agent = agent_guest::static_agent();
    let img = agent_guest::build(dir.path(), &agent, ssh_server.then_some(DROPBEAR.as_ref()))
        .expect("agent image");
    let mut host = guest::open_host(&dir.path().join("state"), cidr);
    host.import_image(&ImageImport {
        name: "agent".into(),
        disk: img.disk.clone(),
        kernel: Some(img.kernel.clone()),
        ramdisk: Some(img.initramfs.clone()),
        cmdline: Some(cmdline.into()),
    })
    .expect("import");
    host.store()
        .add_flavor(&Flavor {
            name: "t1".into(),
            vcpus: 1,
            ram_mb: 256,
            disk_gb: 1,
            ephemeral_gb: 0,
            swap_mb: 0,
        })
        .expect("flavor");
    host.store()
        .add_keypair(
            compute_store::OPERATOR_USER_ID,
            &Keypair::new("ops", public_key).expect("key"),
            "2024-01-01T00:00:00Z",
        )
        .expect("keypair");
    let mut meta = indexmap::IndexMap::new();
    meta.insert("role".to_owned(), "e2e".to_owned());
    let rec = host
        .boot(&BootRequest {
            name: "Agent Guest".into(),
            image: "agent".into(),
            flavor: "t1".into(),
            key_name: Some("ops".into()),
            user_data: Some(USER_DATA.as_bytes().to_vec()),
            files: vec![
                ("/etc/motd".into(), MOTD.to_vec()),
                ("/srv/data/blob.txt".into(), BLOB.to_vec()),
            ],
            meta,
            config_drive: true,
            admin_pass: None,
            host: None,
            owner: Default::default(),
        })
        .expect("boot");
    let doc = compute::Instance::from_json(rec.document.as_bytes()).expect("document");
    let start = Instant::now();
    let (log, out) = loop {
        let log = host.console_log(&rec.uuid, None).expect("console log");
        if let Some(out) = agent_guest::parse(&log).expect("the agent's results") {
            break (log, out);
        }
        assert!(
            start.elapsed() < PATIENCE,
            "the guest never printed the agent's results:\n{log}"
        );
        std::thread::sleep(Duration::from_millis(500));
    };
    eprintln!("guest printed its results after {:?}", start.elapsed());
    Booted {
        _dir: dir,
        host,
        rec,
        doc,
        log,
        out,
    }
}

#[test]
fn the_agent_configures_a_real_guest_from_its_config_drive() {
    let mut b = boot("10.78.0.0/24", agent_guest::TEST_CMDLINE, false, PUBLIC_KEY);
    check(&b.host, &b.rec, &b.doc, &b.log, &b.out, PUBLIC_KEY);
    // Then the guest powers off: its QEMU goes away by itself.
    let pid = b.rec.pid.expect("pid");
    let start = Instant::now();
    while process::is_guest(pid, &b.rec.uuid) {
        assert!(start.elapsed() < PATIENCE, "the guest never powered off");
        std::thread::sleep(Duration::from_millis(250));
    }
    b.host.delete(&b.rec.uuid).expect("delete");
}

/// The demo's path: the guest stays up and answers SSH on the port compute forwards,
/// with the private half of the keypair the agent installed.
#[test]
fn the_guest_answers_ssh_with_the_injected_key() {
    let keys = tempfile::tempdir().expect("tempdir");
    let key = keys.path().join("id");
    let gen = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", "e2e@ssh", "-f"])
        .arg(&key)
        .status()
        .expect("ssh-keygen: install openssh-client (scripts/test does)");
    assert!(gen.success(), "ssh-keygen failed");
    let public = std::fs::read_to_string(key.with_extension("pub")).expect("public key");
    let public = public.trim_end();
    let mut b = boot("10.79.0.0/24", agent_guest::DEMO_CMDLINE, true, public);
    check(&b.host, &b.rec, &b.doc, &b.log, &b.out, public);
    let start = Instant::now();
    while !b
        .host
        .console_log(&b.rec.uuid, None)
        .expect("console log")
        .contains(agent_guest::SSH_READY)
    {
        assert!(start.elapsed() < PATIENCE, "the SSH server never started");
        std::thread::sleep(Duration::from_millis(250));
    }
    let port = b.rec.ssh_port.expect("compute forwards an ssh port");
    // dropbear goes to the background before it listens, and makes its host key on
    // the first connection: retry until the guest's patience runs out.
    let ssh_start = Instant::now();
    let out = loop {
        let out = Command::new("ssh")
            .arg("-i")
            .arg(&key)
            .args(["-p", &port.to_string()])
            .args(["-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=no"])
            .args([
                "-o",
                "UserKnownHostsFile=/dev/null",
                "-o",
                "ConnectTimeout=60",
            ])
            .args(["-o", "LogLevel=ERROR", "root@127.0.0.1"])
            .arg("hostname; id -u; cat /etc/motd")
            .output()
            .expect("ssh: install openssh-client (scripts/test does)");
        if out.status.success() || ssh_start.elapsed() > PATIENCE {
            break out;
        }
        std::thread::sleep(Duration::from_secs(2));
    };
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "ssh failed: {}\n{}",
        String::from_utf8_lossy(&out.stderr),
        b.host.console_log(&b.rec.uuid, None).unwrap_or_default()
    );
    let motd = String::from_utf8_lossy(MOTD);
    assert_eq!(
        stdout,
        format!("{}\n0\n{motd}", b.doc.hostname()),
        "what the guest says over SSH"
    );
    b.host.delete(&b.rec.uuid).expect("delete");
}

fn check(
    host: &Host,
    rec: &compute_store::InstanceRecord,
    doc: &compute::Instance,
    log: &str,
    out: &AgentOutput,
    public_key: &str,
) {
    let ctx = format!("{out:#?}\n--- console ---\n{log}");
    assert!(!log.contains("INSMOD-FAILED"), "{ctx}");
    assert_eq!(out.exit, 0, "agent exit code: {ctx}");
    assert_eq!(out.report["instance_id"], rec.uuid.as_str(), "{ctx}");
    assert!(
        out.report["source"]
            .as_str()
            .is_some_and(|s| s.contains("/dev/sr0")),
        "the data came from the CD-ROM: {ctx}"
    );
    for step in [
        "network",
        "hostname",
        "ssh-keys",
        "files",
        "random-seed",
        "user-data",
    ] {
        assert_eq!(out.outcome(step), Some("ok"), "step {step}: {ctx}");
    }

    // What the agent found on the drive, as `guest-agent show` prints it.
    let md = &out.show["meta_data"];
    assert_eq!(md["uuid"], rec.uuid.as_str(), "{ctx}");
    assert_eq!(md["meta"]["role"], "e2e", "meta: {ctx}");
    assert_eq!(
        md["public_keys"]["ops"].as_str().map(str::trim_end),
        Some(public_key),
        "{ctx}"
    );
    assert_eq!(out.show["user_data"]["bytes"], USER_DATA.len(), "{ctx}");

    // Hostname: kernel and /etc/hostname.
    let hostname = doc.hostname();
    assert_eq!(out.hostname, hostname, "{ctx}");
    assert_eq!(
        out.files.get("/etc/hostname").map(Vec::as_slice),
        Some(format!("{hostname}\n").as_bytes()),
        "{ctx}"
    );
    // The key, for root (the only user of the image).
    let keys = String::from_utf8_lossy(&out.files["/root/.ssh/authorized_keys"]).into_owned();
    assert!(keys.lines().any(|l| l == public_key), "{keys}\n{ctx}");
    // Injected files, byte for byte.
    assert_eq!(
        out.files.get("/etc/motd").map(Vec::as_slice),
        Some(MOTD),
        "{ctx}"
    );
    assert_eq!(
        out.files.get("/srv/data/blob.txt").map(Vec::as_slice),
        Some(BLOB),
        "{ctx}"
    );
    // User data ran, as root, after the hostname was set.
    assert!(
        log.contains(&format!("USER-DATA-RAN uid=0 host={hostname}")),
        "{ctx}"
    );

    // The network: the NIC with compute's MAC has compute's fixed IP and the default
    // route through the subnet's gateway, exactly as network_data said.
    let mac = rec.mac.to_string();
    let ifname = out
        .links
        .iter()
        .find(|l| l.contains(&format!("link/ether {mac}")))
        .and_then(|l| l.split(':').nth(1))
        .map(|n| n.trim().to_owned())
        .unwrap_or_else(|| panic!("no link with MAC {mac}: {ctx}"));
    assert!(
        out.links
            .iter()
            .any(|l| l.contains(&format!(" {ifname}: ")) && l.contains("UP")),
        "{ifname} is up: {ctx}"
    );
    let subnet = host.store().subnet();
    let prefix = subnet.cidr.prefix();
    assert!(
        out.addrs.iter().any(|l| l.contains(&format!(" {ifname} "))
            && l.contains(&format!("inet {}/{prefix}", rec.fixed_ip))),
        "{ifname} has {}/{prefix}: {ctx}",
        rec.fixed_ip
    );
    let gateway = subnet.gateway();
    assert!(
        out.routes
            .iter()
            .any(|l| l.starts_with(&format!("default via {gateway} dev {ifname}"))),
        "default route via {gateway}: {ctx}"
    );
    let (ip, doc_mac) = doc.local_ipv4().expect("document has an IPv4 address");
    assert_eq!((ip, doc_mac), (rec.fixed_ip, Some(rec.mac)), "{ctx}");
    // resolv.conf names the subnet's DNS server.
    let resolv = String::from_utf8_lossy(&out.files["/etc/resolv.conf"]).into_owned();
    assert!(
        resolv.contains(&format!("nameserver {}", subnet.dns())),
        "{resolv}\n{ctx}"
    );
    // This host runs plain networking (no relay): the guest had only its drive, and
    // 169.254.169.254 answered nothing.
    assert!(
        out.metadata.is_empty(),
        "plain networking reached a metadata service: {:?}\n{ctx}",
        out.metadata.keys()
    );
}
