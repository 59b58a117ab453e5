//! A host agent that networks its guests (`--network user`) runs their metadata
//! server over the shared database: `metadata-server serve --database URL --host
//! NAME`, this host's instances followed through the change feed, its own files in
//! the agent's state folder, the database's password in its environment (not on
//! its command line, which any local user can read). Checked as a guest asks: from inside the instance's
//! network namespace, through its relay, at http://169.254.169.254; `compute
//! meta-set` from the control machine reaches it there. The guest is QEMU on a blank
//! disk (nothing boots). Needs root (network namespaces) and the `metadata-server`
//! built beside `compute`.

use compute_host::driver::layout::Layout;
use compute_host::driver::usernet;
use std::process::Command;
use std::time::Duration;

mod common;

use common::shared::{metadata_server, Shared};
use common::stderr;

const PATIENCE: Duration = Duration::from_secs(120);
const META: &str = "http://169.254.169.254/openstack/latest/meta_data.json";

/// `curl` from inside instance `uuid`'s network namespace, as its guest would:
/// the status and the body.
fn from_guest(uuid: &str, url: &str) -> (u16, String) {
    let out = Command::new("ip")
        .args(["netns", "exec", &usernet::netns_name(uuid)])
        .args([
            "curl",
            "-sS",
            "--max-time",
            "60",
            "-w",
            "\n%{http_code}",
            url,
        ])
        .output()
        .expect("ip netns exec curl (packages iproute2 and curl)");
    assert!(out.status.success(), "curl {url}: {}", stderr(&out));
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, status) = text.rsplit_once('\n').expect("status line");
    (status.parse().expect("status"), body.to_owned())
}

/// The command line of process `pid`, one element each.
fn cmdline(pid: i32) -> Vec<String> {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .unwrap_or_default()
        .split(|b| *b == 0)
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect()
}

#[test]
fn an_agents_metadata_server_follows_the_shared_database_for_its_host() {
    let s = Shared::new();
    s.blank_image();
    let server_bin = metadata_server();
    let networking = [
        "--network",
        "user",
        "--metadata-server",
        server_bin.to_str().expect("utf-8"),
    ];
    // A password in the URL (the test cluster trusts every connection, so it is
    // carried, not checked): the server gets it in its environment, never in argv.
    let url = s.url().replacen("postgres@", "postgres:s3cret@", 1);
    assert_ne!(url, s.url());
    let mut agent = s.agent_networked("h1", None, &url, &networking, &[]);
    s.wait_until("h1 up", PATIENCE, || s.is_up("h1"));

    let vm = s.json(&[
        "boot", "--image", "blank", "--flavor", "m1.tiny", "--format", "json", "vm",
    ]);
    assert_eq!(vm["status"], "ACTIVE", "{vm}\n{}", agent.log());
    let uuid = vm["id"].as_str().expect("id").to_owned();

    // The server the agent started reads this host's instances of the database.
    let layout = Layout::new(&agent.state);
    let pid: i32 = std::fs::read_to_string(layout.metadata_pidfile())
        .expect("the agent started a metadata server")
        .trim()
        .parse()
        .expect("pid");
    let argv = cmdline(pid);
    let after = |flag: &str| {
        argv.iter()
            .position(|a| a == flag)
            .and_then(|i| argv.get(i + 1))
            .cloned()
    };
    assert_eq!(after("--database"), Some(s.url()), "{argv:?}");
    assert!(!argv.iter().any(|a| a.contains("s3cret")), "{argv:?}");
    let environ = std::fs::read(format!("/proc/{pid}/environ")).expect("environ");
    assert!(
        environ
            .split(|b| *b == 0)
            .any(|v| v == b"PGPASSWORD=s3cret"),
        "the password is in the server's environment"
    );
    assert_eq!(after("--host").as_deref(), Some("h1"), "{argv:?}");
    assert!(!argv.iter().any(|a| a == "--state-dir"), "{argv:?}");
    assert_eq!(
        after("--data-dir"),
        Some(layout.metadata_dir().display().to_string()),
        "its own files stay in the state folder: {argv:?}"
    );

    let (status, body) = from_guest(&uuid, META);
    assert_eq!(status, 200, "{body}");
    let doc: serde_json::Value = serde_json::from_str(&body).expect("json");
    assert_eq!(doc["uuid"], uuid.as_str(), "{doc}");
    assert!(doc["meta"]["role"].is_null(), "no role yet: {doc}");
    // The SSH forward `show` reports is the port the relay bound on the host (the
    // kernel's choice), and it takes connections.
    let shown = s.json(&["show", "vm", "--format", "json"]);
    let ssh = shown["ssh"].as_str().expect("an SSH forward");
    assert!(
        std::net::TcpStream::connect(ssh).is_ok(),
        "nothing listens on the SSH forward {ssh}: {shown}"
    );

    // A change from the control machine reaches the guest through the feed.
    s.ok(&["meta-set", "vm", "role=db"]);
    s.wait_until("the guest sees meta role=db", PATIENCE, || {
        let (status, body) = from_guest(&uuid, META);
        status == 200
            && serde_json::from_str::<serde_json::Value>(&body)
                .is_ok_and(|d| d["meta"]["role"] == "db")
    });

    // The last guest gone, its namespace and the server go too.
    s.ok(&["delete", "vm"]);
    s.wait_until("the metadata server stopped", PATIENCE, || {
        !std::path::Path::new(&format!("/proc/{pid}")).exists()
            || !cmdline(pid).iter().any(|a| a.contains("metadata-server"))
    });
    let namespaces = Command::new("ip")
        .args(["netns", "list"])
        .output()
        .expect("ip netns list");
    assert!(
        !String::from_utf8_lossy(&namespaces.stdout).contains(&usernet::netns_name(&uuid)),
        "the namespace is gone"
    );
    agent.signal("TERM");
    assert_eq!(agent.wait_exit(PATIENCE), Some(0), "{}", agent.log());
}
