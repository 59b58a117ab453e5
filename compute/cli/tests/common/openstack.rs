//! The harness of the real-client tests: a `compute api` process over a state
//! folder or PostgreSQL, users made with the `compute` verbs, clouds.yaml files,
//! Debian's `openstack` and the newest one from PyPI (a venv under
//! `target/openstack-venv/`, built once per content of
//! `tests/openstack/requirements.txt`).

use std::io::{BufRead, BufReader};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_compute");

/// Where the records are.
#[derive(Clone)]
pub enum Db {
    Folder,
    Postgres(String),
}

pub struct Deployment {
    pub dir: tempfile::TempDir,
    pub db: Db,
    /// Flags before the verb of every command (networking, QEMU).
    pub flags: Vec<String>,
}

impl Deployment {
    pub fn new(db: Db) -> Deployment {
        Deployment {
            dir: tempfile::tempdir().expect("tempdir"),
            db,
            flags: Vec::new(),
        }
    }

    pub fn state(&self) -> PathBuf {
        self.dir.path().join("state")
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    pub fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(BIN);
        c.arg("--state-dir").arg(self.state());
        if let Db::Postgres(url) = &self.db {
            c.args(["--database", url]);
        }
        c.args(&self.flags);
        c.env_remove("COMPUTE_DATABASE").args(args);
        c
    }

    /// Runs a verb that must succeed; its standard output.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.command(args).output().expect("compute runs");
        assert!(
            out.status.success(),
            "compute {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// A user with a password (from a 0600 file) and a role on a project.
    pub fn user(&self, name: &str, password: &str, project: &str, role: &str) {
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
    pub fn api(&self, extra: &[&str]) -> Api {
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

pub struct Api {
    pub compute: String,
    pub image: String,
    pub identity: String,
    pub child: Child,
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
    pub fn clouds(&self, dir: &Path, users: &[(&str, &str, &str, &str)]) -> PathBuf {
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
pub struct Client {
    pub name: &'static str,
    pub program: PathBuf,
}

impl Client {
    pub fn debian() -> Client {
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

    pub fn pypi() -> Client {
        Client {
            name: "pypi",
            program: venv().join("bin/openstack"),
        }
    }

    pub fn version(&self) -> String {
        let out = Command::new(&self.program)
            .arg("--version")
            .output()
            .expect("openstack runs");
        let text = String::from_utf8_lossy(&out.stdout).into_owned()
            + &String::from_utf8_lossy(&out.stderr);
        text.trim().to_owned()
    }

    pub fn run(&self, clouds: &Path, cloud: &str, args: &[&str]) -> std::process::Output {
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
    pub fn json(&self, clouds: &Path, cloud: &str, args: &[&str]) -> serde_json::Value {
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
        // `--wait` prints its progress ("Complete") before the JSON.
        let text = String::from_utf8_lossy(&out.stdout);
        let start = text.find(['{', '[']).unwrap_or(0);
        serde_json::from_str(&text[start..]).unwrap_or_else(|e| {
            panic!(
                "[{}] openstack {all:?}: not JSON ({e}): {}",
                self.name,
                String::from_utf8_lossy(&out.stdout)
            )
        })
    }

    pub fn ok(&self, clouds: &Path, cloud: &str, args: &[&str]) {
        let out = self.run(clouds, cloud, args);
        assert!(
            out.status.success(),
            "[{}] openstack {args:?} as {cloud}: {}",
            self.name,
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// A command that must fail; its error output.
    pub fn fails(&self, clouds: &Path, cloud: &str, args: &[&str]) -> String {
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
pub fn venv() -> PathBuf {
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

pub fn ssh_public_key(dir: &Path, name: &str) -> PathBuf {
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
pub fn md5_fingerprint(public: &Path) -> String {
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
pub fn raw(method: &str, url: &str, token: Option<&str>) -> (u16, Option<String>, String) {
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

/// `md5sum`'s hex digest of a file (Glance's `checksum`).
pub fn md5_hex(path: &Path) -> String {
    let out = Command::new("md5sum").arg(path).output().expect("md5sum");
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .expect("md5")
        .to_owned()
}

/// `image show` of an uploaded image says `active` and names `file`'s MD5
/// (`checksum`) and SHA-512 (`os_hash_value`).
pub fn assert_holds_file(shown: &serde_json::Value, file: &Path) {
    assert_eq!(shown["status"], "active", "{shown}");
    assert_eq!(shown["checksum"], md5_hex(file), "{shown}");
    let bytes = std::fs::read(file).expect("the uploaded file");
    let sha512 = hex::encode(<sha2::Sha512 as sha2::Digest>::digest(&bytes));
    assert_eq!(
        prop(shown, "os_hash_value").and_then(serde_json::Value::as_str),
        Some(sha512.as_str()),
        "{shown}"
    );
}

/// `POST /v2/images` of an empty raw image named `name`, by hand (a client would
/// upload at once): its id.
pub fn new_image(image_url: &str, token: &str, name: &str) -> String {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let made = agent
        .post(&format!("{image_url}/v2/images"))
        .header("X-Auth-Token", token)
        .content_type("application/json")
        .send(
            serde_json::json!({"name": name, "disk_format": "raw", "container_format": "bare"})
                .to_string(),
        )
        .expect("create")
        .body_mut()
        .read_to_string()
        .expect("body");
    let made: serde_json::Value = serde_json::from_str(&made).expect("json");
    made["id"].as_str().expect("id").to_owned()
}

/// An image's key as `openstack image show` prints it: top level, or folded
/// into `properties` (newer clients fold what the SDK does not name).
pub fn prop<'a>(shown: &'a serde_json::Value, key: &str) -> Option<&'a serde_json::Value> {
    shown
        .get(key)
        .filter(|v| !v.is_null())
        .or_else(|| shown.get("properties").and_then(|p| p.get(key)))
}
