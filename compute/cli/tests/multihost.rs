//! Many hosts on one PostgreSQL, on one machine, all real processes: this test
//! binary's cluster, two host agents (`compute host-agent --host h1|h2`, each in its
//! own state folder) and two metadata servers (`metadata-server serve --database
//! URL --host h1|h2`) on loopback addresses of their own (127.0.0.2, 127.0.0.3).
//! The test asks as a proxy that the servers trust (from 127.0.0.1, naming the
//! guest by `X-Forwarded-For`: its fixed IP), so one client can ask any server for
//! any instance.
//!
//! Four boots spread 2/2; each server answers its own instances and 404s the
//! others'; `compute meta-set` on an instance of h2 wakes a `wait_for_change` request
//! waiting at h2's server and reaches its plain reads, while h1's server still
//! knows nothing of that instance; with the database stopped hard (SIGQUIT, what
//! `pg_ctl stop -m immediate` sends) 1,000 reads across both servers answer 200
//! with the bytes served before; after the restart a change made then arrives.
//!
//! A test binary of its own: it stops the cluster its tests share. Guests are QEMU
//! on a blank disk (nothing boots: the metadata service reads the database, not the
//! guest). Needs the `metadata-server` built beside `compute`.

use serde_json::Value;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

mod common;

use common::http::{self, Resp};
use common::shared::{metadata_server, Shared};
use common::stderr;

/// A safeguard against a hung process, not a speed assertion.
const PATIENCE: Duration = Duration::from_secs(120);
const META: &str = "/openstack/latest/meta_data.json";
const NETWORK: &str = "/openstack/latest/network_data.json";
/// The test's source address, the proxy the servers trust.
const PROXY: &str = "127.0.0.1";

/// A `metadata-server serve --database URL --host NAME` process.
struct Server {
    host: &'static str,
    addr: SocketAddr,
    metrics: SocketAddr,
    log: PathBuf,
    child: Child,
}

impl Server {
    fn start(s: &Shared, host: &'static str, ip: &str) -> Server {
        let dir = s.path(&format!("server-{host}"));
        std::fs::create_dir_all(&dir).expect("server folder");
        let log = dir.join("server.log");
        let out = std::fs::File::create(&log).expect("log");
        // Port 0: the kernel chooses each port, the server logs what it bound.
        let mut child = Command::new(metadata_server())
            .arg("serve")
            .args(["--database", &s.url(), "--host", host])
            .args(["--listen", &format!("{ip}:0")])
            .args(["--metrics-listen", &format!("{ip}:0")])
            .args(["--trusted-proxy", &format!("{PROXY}/32")])
            .arg("--data-dir")
            .arg(dir.join("data"))
            .arg("--password-dir")
            .arg(dir.join("passwords"))
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(out)
            .spawn()
            .expect("spawn metadata-server");
        let mut ports = None;
        s.wait_until(
            &format!("{host}'s server reports its ports"),
            PATIENCE,
            || {
                if let Some(status) = child.try_wait().expect("wait") {
                    let text = std::fs::read_to_string(&log).unwrap_or_default();
                    panic!("{host}'s server exited ({status}):\n{text}");
                }
                let text = std::fs::read_to_string(&log).unwrap_or_default();
                let port = |metrics: bool| {
                    text.lines()
                        .filter(|l| l.contains("metrics listening") == metrics)
                        .find_map(httptest::listener_port)
                };
                ports = port(false).zip(port(true));
                ports.is_some()
            },
        );
        let (port, metrics_port) = ports.expect("ports");
        let addr: SocketAddr = format!("{ip}:{port}").parse().expect("addr");
        let metrics: SocketAddr = format!("{ip}:{metrics_port}").parse().expect("addr");
        let mut server = Server {
            host,
            addr,
            metrics,
            log,
            child,
        };
        s.wait_until(
            &format!("{host}'s server follows the feed"),
            PATIENCE,
            || {
                if let Some(status) = server.child.try_wait().expect("wait") {
                    panic!("{host}'s server exited ({status}):\n{}", server.log());
                }
                std::net::TcpStream::connect(server.addr).is_ok()
                    && server.health().contains("feed: connected")
            },
        );
        server
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn health(&self) -> String {
        http::get(self.metrics, "/healthz", &[]).text()
    }

    fn metrics(&self) -> String {
        http::get(self.metrics, "/metrics", &[]).text()
    }

    /// `path` as the guest at `ip` reads it (through the trusted proxy).
    fn get(&self, ip: &str, path: &str) -> Resp {
        http::get(self.addr, path, &[("X-Forwarded-For", ip)])
    }

    /// SIGTERM; whether it exited 0.
    fn stop(mut self) -> bool {
        let ok = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .is_ok_and(|s| s.success());
        ok && self.child.wait().is_ok_and(|s| s.success())
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// A booted instance: its name, uuid, host and fixed IP.
struct Vm {
    name: String,
    uuid: String,
    host: String,
    ip: String,
}

/// meta_data.json without `random_seed`, which is new on every read.
fn without_seed(body: &[u8]) -> Value {
    let mut v: Value = serde_json::from_slice(body).expect("json");
    v.as_object_mut().expect("object").remove("random_seed");
    v
}

#[test]
fn two_hosts_two_servers_one_database() {
    let cluster = pgtest::cluster();
    let s = Shared::new();
    s.blank_image();
    let mut h1 = s.agent("h1", None);
    let mut h2 = s.agent("h2", None);
    s.wait_until("both hosts up", PATIENCE, || s.is_up("h1") && s.is_up("h2"));

    // Four boots, placed by the database (most free RAM first): two on each host.
    for n in 1..=4 {
        let name = format!("vm{n}");
        s.ok(&[
            "boot",
            "--image",
            "blank",
            "--flavor",
            "m1.tiny",
            "--no-wait",
            &name,
        ]);
    }
    let vms: Vec<Vm> = (1..=4)
        .map(|n| {
            let name = format!("vm{n}");
            s.wait_until(&format!("{name} active"), PATIENCE, || {
                s.show(&name)["status"] != "BUILD"
            });
            let show = s.show(&name);
            assert_eq!(
                show["status"],
                "ACTIVE",
                "{show}\n{}\n{}",
                h1.log(),
                h2.log()
            );
            Vm {
                uuid: show["id"].as_str().expect("id").to_owned(),
                host: show["OS-EXT-SRV-ATTR:host"]
                    .as_str()
                    .expect("host")
                    .to_owned(),
                ip: show["addresses"]["private"][0]["addr"]
                    .as_str()
                    .expect("fixed ip")
                    .to_owned(),
                name,
            }
        })
        .collect();
    let on = |host: &str| vms.iter().filter(|v| v.host == host).count();
    assert_eq!((on("h1"), on("h2")), (2, 2), "placement spreads them");
    for vm in &vms {
        let state = s.path(&format!("state-{}", vm.host));
        assert!(
            state.join("instances").join(&vm.uuid).exists(),
            "{} runs on {}",
            vm.name,
            vm.host
        );
    }

    let servers = [
        Server::start(&s, "h1", "127.0.0.2"),
        Server::start(&s, "h2", "127.0.0.3"),
    ];
    let server_of = |vm: &Vm| {
        servers
            .iter()
            .find(|srv| srv.host == vm.host)
            .expect("a server per host")
    };

    // Each server answers its own instances and nobody else's.
    for vm in &vms {
        for srv in &servers {
            let r = srv.get(&vm.ip, META);
            if srv.host == vm.host {
                assert_eq!(r.status, 200, "{} at {}: {}", vm.name, srv.host, r.text());
                assert_eq!(without_seed(&r.body)["uuid"], vm.uuid.as_str());
            } else {
                assert_eq!(r.status, 404, "{} at {}: {}", vm.name, srv.host, r.text());
            }
        }
    }

    // meta-set on an instance of h2 wakes the request waiting there for a change.
    let target = vms.iter().find(|v| v.host == "h2").expect("an h2 instance");
    let h2_server = &servers[1];
    let before = h2_server.get(&target.ip, META);
    let tag = before.header("etag").expect("etag").to_owned();
    let bare_tag = tag.trim_matches('"').to_owned();
    let waiter = {
        let (addr, ip) = (h2_server.addr, target.ip.clone());
        let path = format!("{META}?wait_for_change=true&last_etag={bare_tag}&timeout_sec=120");
        std::thread::spawn(move || http::get(addr, &path, &[("X-Forwarded-For", &ip)]))
    };
    s.wait_until("the request waits at h2's server", PATIENCE, || {
        assert!(
            !waiter.is_finished(),
            "the waiter was answered before any change"
        );
        h2_server.metrics().contains("metadata_waiters 1")
    });
    s.ok(&["meta-set", &target.name, "role=db"]);
    let woke = waiter.join().expect("waiter");
    assert_eq!(woke.status, 200, "{}", woke.text());
    assert_eq!(without_seed(&woke.body)["meta"]["role"], "db");
    assert_ne!(woke.header("etag"), Some(tag.as_str()));
    let read = h2_server.get(&target.ip, META);
    assert_eq!(without_seed(&read.body)["meta"]["role"], "db");
    // h1's server never had it: the change is not its business.
    assert_eq!(servers[0].get(&target.ip, META).status, 404);
    let h1_metrics = servers[0].metrics();
    assert!(
        h1_metrics.contains("metadata_instances 2\n"),
        "h1's server holds its two instances alone:\n{h1_metrics}"
    );
    assert!(
        !servers[0].log().contains(&target.uuid),
        "{}",
        servers[0].log()
    );

    // The database stopped hard: every read is still answered, with the same bytes.
    let expected: Vec<(Value, Vec<u8>)> = vms
        .iter()
        .map(|vm| {
            let srv = server_of(vm);
            (
                without_seed(&srv.get(&vm.ip, META).body),
                srv.get(&vm.ip, NETWORK).body,
            )
        })
        .collect();
    cluster.kill();
    for srv in &servers {
        s.wait_until(
            &format!("{}'s server notices the outage", srv.host),
            PATIENCE,
            || srv.health().contains("feed: disconnected"),
        );
    }
    for i in 0..1000 {
        let (vm, (meta, network)) = {
            let k = i % vms.len();
            (&vms[k], &expected[k])
        };
        let srv = server_of(vm);
        if i % 2 == 0 {
            let r = srv.get(&vm.ip, META);
            assert_eq!(r.status, 200, "read {i} of {} at {}", vm.name, srv.host);
            assert_eq!(&without_seed(&r.body), meta, "read {i}");
        } else {
            let r = srv.get(&vm.ip, NETWORK);
            assert_eq!(r.status, 200, "read {i} of {} at {}", vm.name, srv.host);
            assert_eq!(&r.body, network, "read {i}");
        }
    }

    // Back: each server catches up by itself; changes made now arrive.
    cluster.start();
    for srv in &servers {
        s.wait_until(
            &format!("{}'s server reconnects", srv.host),
            PATIENCE,
            || srv.health().contains("feed: connected"),
        );
    }
    for host in ["h1", "h2"] {
        let vm = vms.iter().find(|v| v.host == host).expect("an instance");
        s.ok(&["meta-set", &vm.name, "phase=after-restart"]);
        let srv = server_of(vm);
        s.wait_until(
            &format!("{}'s change reaches {host}'s server", vm.name),
            PATIENCE,
            || without_seed(&srv.get(&vm.ip, META).body)["meta"]["phase"] == "after-restart",
        );
    }

    for vm in &vms {
        let out = s.run(&["delete", &vm.name]);
        assert!(out.status.success(), "{}", stderr(&out));
    }
    for srv in servers {
        let host = srv.host;
        let log = srv.log();
        assert!(srv.stop(), "{host}'s server stops cleanly:\n{log}");
    }
    for agent in [&mut h1, &mut h2] {
        agent.signal("TERM");
        assert_eq!(agent.wait_exit(PATIENCE), Some(0), "{}", agent.log());
    }
}
