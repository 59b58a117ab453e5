//! The OpenStack API driven by real, unmodified clients: Debian's `openstack`
//! (python3-openstackclient) and the newest python-openstackclient and openstacksdk
//! from PyPI (a venv under `target/openstack-venv/`, built once per content of
//! `tests/openstack/requirements.txt`). `compute api` runs as a process on free
//! loopback ports over a state folder (SQLite), and once over PostgreSQL (pgtest's
//! cluster); users, projects and roles are made with the `compute` verbs, the
//! clients read a clouds.yaml in password mode and one in noauth mode.

use std::io::{BufRead, BufReader};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_compute");

/// Where the records are.
#[derive(Clone)]
enum Db {
    Folder,
    Postgres(String),
}

struct Deployment {
    dir: tempfile::TempDir,
    db: Db,
}

impl Deployment {
    fn new(db: Db) -> Deployment {
        Deployment {
            dir: tempfile::tempdir().expect("tempdir"),
            db,
        }
    }

    fn state(&self) -> PathBuf {
        self.dir.path().join("state")
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(BIN);
        c.arg("--state-dir").arg(self.state());
        if let Db::Postgres(url) = &self.db {
            c.args(["--database", url]);
        }
        c.env_remove("COMPUTE_DATABASE").args(args);
        c
    }

    /// Runs a verb that must succeed; its standard output.
    fn ok(&self, args: &[&str]) -> String {
        let out = self.command(args).output().expect("compute runs");
        assert!(
            out.status.success(),
            "compute {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// A user with a password (from a 0600 file) and a role on a project.
    fn user(&self, name: &str, password: &str, project: &str, role: &str) {
        let file = self.path(&format!("{name}.password"));
        std::fs::write(&file, format!("{password}\n")).expect("password file");
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).expect("chmod");
        self.ok(&[
            "user-create",
            name,
            "--password-file",
            file.to_str().expect("utf-8"),
        ]);
        self.ok(&["role-add", "--user", name, "--project", project, role]);
    }

    /// Starts `compute api` with `extra` flags on free ports.
    fn api(&self, extra: &[&str]) -> Api {
        let mut args = vec![
            "api",
            "--compute-listen",
            "127.0.0.1:0",
            "--image-listen",
            "127.0.0.1:0",
            "--identity-listen",
            "127.0.0.1:0",
        ];
        args.extend_from_slice(extra);
        let mut child = self
            .command(&args)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("compute api starts");
        let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
        let mut url = |service: &str| -> String {
            let line = lines
                .next()
                .expect("compute api prints its URLs")
                .expect("line");
            line.strip_prefix(&format!("{service} "))
                .unwrap_or_else(|| panic!("{service} URL, got {line}"))
                .to_owned()
        };
        Api {
            compute: url("compute"),
            image: url("image"),
            identity: url("identity"),
            child,
        }
    }
}

struct Api {
    compute: String,
    image: String,
    identity: String,
    child: Child,
}

impl Drop for Api {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .arg(self.child.id().to_string())
            .status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Api {
    /// A clouds.yaml with one password cloud per (name, user, project) and a noauth
    /// cloud.
    fn clouds(&self, dir: &Path, users: &[(&str, &str, &str, &str)]) -> PathBuf {
        let mut y = String::from("clouds:\n");
        for (cloud, user, password, project) in users {
            y.push_str(&format!(
                "  {cloud}:\n    auth_type: password\n    auth:\n      auth_url: {}\n      \
                 username: {user}\n      password: {password}\n      project_name: {project}\n      \
                 user_domain_name: Default\n      project_domain_name: Default\n    \
                 region_name: RegionOne\n    identity_api_version: 3\n",
                self.identity
            ));
        }
        y.push_str(&format!(
            "  noauth:\n    auth_type: none\n    auth:\n      endpoint: {c}\n    \
             compute_endpoint_override: {c}\n    image_endpoint_override: {i}\n    \
             identity_endpoint_override: {k}\n",
            c = self.compute,
            i = self.image,
            k = self.identity
        ));
        let path = dir.join("clouds.yaml");
        std::fs::write(&path, y).expect("clouds.yaml");
        path
    }
}

/// One `openstack` program.
struct Client {
    name: &'static str,
    program: PathBuf,
}

impl Client {
    fn debian() -> Client {
        let program = PathBuf::from("/usr/bin/openstack");
        assert!(
            program.exists(),
            "/usr/bin/openstack is missing: install python3-openstackclient (scripts/test does)"
        );
        Client {
            name: "debian",
            program,
        }
    }

    fn pypi() -> Client {
        Client {
            name: "pypi",
            program: venv().join("bin/openstack"),
        }
    }

    fn version(&self) -> String {
        let out = Command::new(&self.program)
            .arg("--version")
            .output()
            .expect("openstack runs");
        let text = String::from_utf8_lossy(&out.stdout).into_owned()
            + &String::from_utf8_lossy(&out.stderr);
        text.trim().to_owned()
    }

    fn run(&self, clouds: &Path, cloud: &str, args: &[&str]) -> std::process::Output {
        Command::new(&self.program)
            .env("OS_CLIENT_CONFIG_FILE", clouds)
            .env_remove("OS_CLOUD")
            .env_remove("OS_AUTH_URL")
            .arg("--os-cloud")
            .arg(cloud)
            .args(args)
            .output()
            .expect("openstack runs")
    }

    /// A command that must succeed; its JSON output (`-f json` added).
    fn json(&self, clouds: &Path, cloud: &str, args: &[&str]) -> serde_json::Value {
        let mut all = args.to_vec();
        all.extend(["-f", "json"]);
        let out = self.run(clouds, cloud, &all);
        assert!(
            out.status.success(),
            "[{}] openstack {all:?} as {cloud}: {}{}",
            self.name,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!(
                "[{}] openstack {all:?}: not JSON ({e}): {}",
                self.name,
                String::from_utf8_lossy(&out.stdout)
            )
        })
    }

    fn ok(&self, clouds: &Path, cloud: &str, args: &[&str]) {
        let out = self.run(clouds, cloud, args);
        assert!(
            out.status.success(),
            "[{}] openstack {args:?} as {cloud}: {}",
            self.name,
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// A command that must fail; its error output.
    fn fails(&self, clouds: &Path, cloud: &str, args: &[&str]) -> String {
        let out = self.run(clouds, cloud, args);
        assert!(
            !out.status.success(),
            "[{}] openstack {args:?} as {cloud} should fail: {}",
            self.name,
            String::from_utf8_lossy(&out.stdout)
        );
        String::from_utf8_lossy(&out.stderr).into_owned()
    }
}

/// The venv with the newest clients from PyPI: built once per requirements file
/// (under a lock, so test binaries running at once share one build); a build that
/// fails fails the test, loudly.
fn venv() -> PathBuf {
    let req = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/openstack/requirements.txt");
    let text = std::fs::read(&req).expect("requirements.txt");
    let root = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .expect("target folder")
        .join("openstack-venv");
    std::fs::create_dir_all(&root).expect("venv folder");
    let key = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&text));
    let dir = root.join(&key[..16]);
    let _lock = compute_host::driver::lock::lock(&root.join(".lock")).expect("lock");
    if dir.join(".complete").exists() {
        return dir;
    }
    let _ = std::fs::remove_dir_all(&dir);
    // A venv keeps its own path in its scripts: it is built where it stays.
    let made = Command::new("python3")
        .args(["-m", "venv"])
        .arg(&dir)
        .output()
        .expect("python3 runs");
    assert!(
        made.status.success(),
        "python3 -m venv (package python3-venv): {}",
        String::from_utf8_lossy(&made.stderr)
    );
    let pip = Command::new(dir.join("bin/pip"))
        .args(["install", "--quiet", "-r"])
        .arg(&req)
        .output()
        .expect("pip runs");
    assert!(
        pip.status.success(),
        "pip install -r {} (PyPI must be reachable): {}",
        req.display(),
        String::from_utf8_lossy(&pip.stderr)
    );
    std::fs::write(dir.join(".complete"), b"").expect("marker");
    dir
}

fn ssh_public_key(dir: &Path, name: &str) -> PathBuf {
    let key = dir.join(name);
    let ok = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", name, "-f"])
        .arg(&key)
        .status()
        .expect("ssh-keygen (openssh-client) runs");
    assert!(ok.success());
    dir.join(format!("{name}.pub"))
}

/// `ssh-keygen -l -E md5`'s fingerprint of a public key file, as Nova writes it.
fn md5_fingerprint(public: &Path) -> String {
    let out = Command::new("ssh-keygen")
        .args(["-l", "-E", "md5", "-f"])
        .arg(public)
        .output()
        .expect("ssh-keygen runs");
    let text = String::from_utf8_lossy(&out.stdout);
    text.split_whitespace()
        .nth(1)
        .and_then(|f| f.strip_prefix("MD5:"))
        .expect("MD5 fingerprint")
        .to_owned()
}

/// A raw request: status, headers, body (for what no client shows: 401s).
fn raw(method: &str, url: &str, token: Option<&str>) -> (u16, Option<String>, String) {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(10)))
        .build()
        .into();
    let mut req = http::Request::builder().method(method).uri(url);
    if let Some(t) = token {
        req = req.header("X-Auth-Token", t);
    }
    let req = req.body(()).expect("request");
    let mut resp = agent.run(req).expect("request answered");
    let status = resp.status().as_u16();
    let www = resp
        .headers()
        .get("www-authenticate")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let body = resp.body_mut().read_to_string().unwrap_or_default();
    (status, www, body)
}

/// The whole password-mode walk for one client on one deployment.
fn password_mode(d: &Deployment, client: &Client) {
    eprintln!("client {}: {}", client.name, client.version());
    let api = d.api(&[]);
    let clouds = api.clouds(
        d.dir.path(),
        &[
            ("alice", "alice", "alice-pw", "alpha"),
            ("bob", "bob", "bob-pw", "beta"),
            ("carol", "carol", "carol-pw", "alpha"),
        ],
    );
    // Tokens.
    let token = client.json(&clouds, "alice", &["token", "issue"]);
    let alice_token = token["id"].as_str().expect("token id").to_owned();
    let alpha = d.ok(&["project-list", "--format", "json"]);
    let alpha: serde_json::Value = serde_json::from_str(&alpha).expect("json");
    let alpha_id = alpha
        .as_array()
        .and_then(|a| a.iter().find(|p| p["name"] == "alpha"))
        .map(|p| p["id"].clone())
        .expect("alpha");
    assert_eq!(token["project_id"], alpha_id);

    // Flavors: list, create with properties, show, set, private ones, delete.
    let flavors = client.json(&clouds, "alice", &["flavor", "list"]);
    let names: Vec<&str> = flavors
        .as_array()
        .expect("list")
        .iter()
        .filter_map(|f| f["Name"].as_str())
        .collect();
    assert!(names.contains(&"m1.tiny"), "{flavors}");
    let made = client.json(
        &clouds,
        "alice",
        &[
            "flavor",
            "create",
            "--ram",
            "256",
            "--disk",
            "1",
            "--vcpus",
            "1",
            "--property",
            "hw:cpu_policy=shared",
            "t1",
        ],
    );
    assert_eq!(made["name"], "t1");
    assert_eq!(made["ram"], 256);
    client.ok(
        &clouds,
        "alice",
        &[
            "flavor",
            "set",
            "--property",
            "quota:disk_read_bytes_sec=1000",
            "t1",
        ],
    );
    let shown = client.json(&clouds, "alice", &["flavor", "show", "t1"]);
    let props = shown["properties"].to_string();
    assert!(
        props.contains("hw:cpu_policy") && props.contains("quota:disk_read_bytes_sec"),
        "{shown}"
    );
    client.json(
        &clouds,
        "alice",
        &[
            "flavor",
            "create",
            "--ram",
            "128",
            "--disk",
            "0",
            "--vcpus",
            "1",
            "--private",
            "p1",
        ],
    );
    let all = client.json(&clouds, "alice", &["flavor", "list", "--all"]);
    assert!(all.to_string().contains("\"p1\""), "{all}");
    let public_only = client.json(&clouds, "alice", &["flavor", "list"]);
    assert!(!public_only.to_string().contains("\"p1\""), "{public_only}");
    // Bob (a member of another project) sees neither private flavors nor may manage.
    client.fails(&clouds, "bob", &["flavor", "show", "p1"]);
    let denied = client.fails(
        &clouds,
        "bob",
        &[
            "flavor", "create", "--ram", "128", "--disk", "0", "--vcpus", "1", "b1",
        ],
    );
    assert!(
        denied.contains("403") || denied.contains("Policy"),
        "{denied}"
    );
    let dup = client.fails(
        &clouds,
        "alice",
        &[
            "flavor", "create", "--ram", "128", "--disk", "0", "--vcpus", "1", "t1",
        ],
    );
    assert!(
        dup.contains("409") || dup.contains("already exists"),
        "{dup}"
    );
    client.ok(&clouds, "alice", &["flavor", "delete", "t1"]);
    client.ok(&clouds, "alice", &["flavor", "delete", "p1"]);
    client.fails(&clouds, "alice", &["flavor", "show", "t1"]);

    // Keypairs: imported, Nova's fingerprint, per user.
    let public = ssh_public_key(d.dir.path(), &format!("k-{}", client.name));
    let public_s = public.to_str().expect("utf-8");
    let kp = client.json(
        &clouds,
        "alice",
        &["keypair", "create", "--public-key", public_s, "k1"],
    );
    assert_eq!(kp["name"], "k1");
    assert_eq!(kp["fingerprint"], md5_fingerprint(&public));
    let listed = client.json(&clouds, "alice", &["keypair", "list"]);
    assert!(listed.to_string().contains("\"k1\""), "{listed}");
    let shown = client.json(&clouds, "alice", &["keypair", "show", "k1"]);
    assert_eq!(shown["fingerprint"], md5_fingerprint(&public));
    // Carol, in the same project, has keypairs of her own: not alice's.
    client.fails(&clouds, "carol", &["keypair", "show", "k1"]);
    client.fails(&clouds, "bob", &["keypair", "show", "k1"]);
    client.json(
        &clouds,
        "bob",
        &["keypair", "create", "--public-key", public_s, "k1"],
    );
    let dup = client.fails(
        &clouds,
        "alice",
        &["keypair", "create", "--public-key", public_s, "k1"],
    );
    assert!(
        dup.contains("409") || dup.contains("already exists"),
        "{dup}"
    );
    client.ok(&clouds, "alice", &["keypair", "delete", "k1"]);
    client.fails(&clouds, "alice", &["keypair", "show", "k1"]);
    client.json(&clouds, "bob", &["keypair", "show", "k1"]);
    client.ok(&clouds, "bob", &["keypair", "delete", "k1"]);

    // Limits.
    let limits = client.json(&clouds, "alice", &["limits", "show", "--absolute"]);
    let text = limits.to_string();
    // Older clients print Nova's keys, newer ones openstacksdk's names for them.
    let has = |nova: &str, sdk: &str| text.contains(nova) || text.contains(sdk);
    assert!(has("maxTotalKeypairs", "max_total_keypairs"), "{text}");
    assert!(has("totalInstancesUsed", "total_instances_used"), "{text}");
    assert!(text.contains("100"), "{text}");

    // Versions, as the client discovers them.
    let versions = client.run(&clouds, "alice", &["versions", "show", "-f", "json"]);
    eprintln!(
        "[{}] versions show: exit {:?}: {}{}",
        client.name,
        versions.status.code(),
        String::from_utf8_lossy(&versions.stdout),
        String::from_utf8_lossy(&versions.stderr)
    );
    if client.name == "pypi" {
        assert!(versions.status.success(), "versions show");
        let v: serde_json::Value = serde_json::from_slice(&versions.stdout).expect("json");
        let t = v.to_string();
        assert!(t.contains("2.96") && t.contains("compute"), "{t}");
    }

    // Without a token: 401 and where to get one; with alice's: 200.
    let flavors_url = format!("{}/flavors", api.compute);
    let (status, www, body) = raw("GET", &flavors_url, None);
    assert_eq!(status, 401, "{body}");
    assert_eq!(
        www.as_deref(),
        Some(format!("Keystone uri=\"{}\"", api.identity).as_str())
    );
    assert!(body.contains("unauthorized"), "{body}");
    assert_eq!(raw("GET", &flavors_url, Some(&alice_token)).0, 200);
    assert_eq!(raw("GET", &flavors_url, Some("notused")).0, 401);

    // A disabled user's token stops working at its next use; enabled again, it works.
    let carol = client.json(&clouds, "carol", &["token", "issue"]);
    let carol_token = carol["id"].as_str().expect("token").to_owned();
    assert_eq!(raw("GET", &flavors_url, Some(&carol_token)).0, 200);
    d.ok(&["user-set", "carol", "--disable"]);
    assert_eq!(raw("GET", &flavors_url, Some(&carol_token)).0, 401);
    client.fails(&clouds, "carol", &["flavor", "list"]);
    d.ok(&["user-set", "carol", "--enable"]);
    assert_eq!(raw("GET", &flavors_url, Some(&carol_token)).0, 200);

    // A wrong password.
    let wrong = api.clouds(d.dir.path(), &[("alice", "alice", "nope", "alpha")]);
    client.fails(&wrong, "alice", &["flavor", "list"]);
}

fn noauth_mode(d: &Deployment, client: &Client) {
    let api = d.api(&["--auth", "noauth"]);
    let clouds = api.clouds(d.dir.path(), &[]);
    let flavors = client.json(&clouds, "noauth", &["flavor", "list"]);
    assert!(flavors.to_string().contains("m1.tiny"), "{flavors}");
    let public = ssh_public_key(d.dir.path(), &format!("n-{}", client.name));
    let kp = client.json(
        &clouds,
        "noauth",
        &[
            "keypair",
            "create",
            "--public-key",
            public.to_str().expect("utf-8"),
            "nk",
        ],
    );
    assert_eq!(kp["fingerprint"], md5_fingerprint(&public));
    // The operator's, as the command line sees it.
    assert!(d.ok(&["keypair-list"]).contains("nk"));
    client.ok(&clouds, "noauth", &["keypair", "delete", "nk"]);
    let limits = client.json(&clouds, "noauth", &["limits", "show", "--absolute"]);
    let text = limits.to_string();
    assert!(
        text.contains("maxServerMeta") || text.contains("max_server_meta"),
        "{text}"
    );
}

fn setup(d: &Deployment) {
    d.ok(&["project-create", "alpha"]);
    d.ok(&["project-create", "beta"]);
    d.user("alice", "alice-pw", "alpha", "admin");
    d.user("bob", "bob-pw", "beta", "member");
    d.user("carol", "carol-pw", "alpha", "member");
}

#[test]
fn debian_and_pypi_clients_on_a_state_folder() {
    let d = Deployment::new(Db::Folder);
    setup(&d);
    for client in [Client::debian(), Client::pypi()] {
        password_mode(&d, &client);
        noauth_mode(&d, &client);
    }
}

#[test]
fn the_newest_client_on_postgresql() {
    let db = pgtest::cluster().database();
    let d = Deployment::new(Db::Postgres(db.url()));
    setup(&d);
    let client = Client::pypi();
    password_mode(&d, &client);
    noauth_mode(&d, &client);
}

#[test]
fn an_expired_token_is_refused() {
    let d = Deployment::new(Db::Folder);
    setup(&d);
    let api = d.api(&["--token-expiry", "2"]);
    let clouds = api.clouds(d.dir.path(), &[("alice", "alice", "alice-pw", "alpha")]);
    let client = Client::pypi();
    let token = client.json(&clouds, "alice", &["token", "issue"]);
    let token = token["id"].as_str().expect("token").to_owned();
    let url = format!("{}/flavors", api.compute);
    std::thread::sleep(Duration::from_secs(3));
    let (status, www, _) = raw("GET", &url, Some(&token));
    assert_eq!(status, 401);
    assert!(www.is_some());
}

#[test]
fn noauth_is_refused_off_loopback() {
    let d = Deployment::new(Db::Folder);
    let out = d
        .command(&["api", "--auth", "noauth", "--compute-listen", "0.0.0.0:0"])
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("not a loopback address") && err.contains("--insecure-noauth"),
        "{err}"
    );
}
