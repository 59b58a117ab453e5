//! The records a [`Store`](crate::Store) keeps and hands back, the same for every
//! backend, and the rules that turn a row's columns into one.

use crate::StoreError;
use compute::flavor::Flavor;
use compute::keypair::Keypair;
use compute::lifecycle::{PowerState, State, TaskState, VmState};
use compute::mac::MacAddr;
use compute::placement::{AllocationRatios, HostState, Resources};
use serde::{Deserialize, Serialize};
use std::net::Ipv4Addr;
use std::time::Duration;

/// A number from the database-wide revision counter: every insert, update and
/// delete of an instance row takes the next one, in the same transaction.
pub type Rev = u64;

/// A disk image as recorded; its files are `images/<id>/{disk,kernel,ramdisk}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Image {
    pub id: String,
    pub name: String,
    pub format: String,
    pub size: u64,
    pub virtual_size: u64,
    pub checksum: String,
    pub has_kernel: bool,
    pub has_ramdisk: bool,
    pub cmdline: Option<String>,
    pub created_at: String,
    /// The project that owns it (Glance's `owner`).
    pub owner: String,
    pub visibility: Visibility,
}

/// Who may see and boot an image, as Glance says it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Visibility {
    /// Every project (what `compute image-import` makes).
    #[default]
    Public,
    /// Its owner only (a snapshot).
    Private,
    /// Its owner and the projects it is shared with.
    Shared,
    /// Every project, unlisted unless asked for.
    Community,
}

impl Visibility {
    pub fn as_str(self) -> &'static str {
        match self {
            Visibility::Public => "public",
            Visibility::Private => "private",
            Visibility::Shared => "shared",
            Visibility::Community => "community",
        }
    }

    pub fn parse(s: &str) -> Option<Visibility> {
        Some(match s {
            "public" => Visibility::Public,
            "private" => Visibility::Private,
            "shared" => Visibility::Shared,
            "community" => Visibility::Community,
            _ => return None,
        })
    }
}

/// The project that owns what the `compute` command line and `--auth noauth`
/// requests make, and every record from before ownership existed.
pub const DEFAULT_PROJECT_ID: &str = "default";
/// Its name.
pub const DEFAULT_PROJECT_NAME: &str = "default";
/// The user the `compute` command line acts as (an admin of the default project,
/// with no password: it cannot log in through the API).
pub const OPERATOR_USER_ID: &str = "operator";
/// Its name.
pub const OPERATOR_USER_NAME: &str = "operator";

/// Who owns what a request makes: its project, and the user who makes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Owner {
    pub project_id: String,
    pub user_id: String,
}

impl Default for Owner {
    /// The command line's: the operator in the default project.
    fn default() -> Owner {
        Owner {
            project_id: DEFAULT_PROJECT_ID.to_owned(),
            user_id: OPERATOR_USER_ID.to_owned(),
        }
    }
}

/// A flavor's extra specs, by key.
pub type ExtraSpecs = std::collections::BTreeMap<String, String>;

/// A flavor as the API sees it: Nova's flavor id, whether every project may use it,
/// its description and extra specs, around the sizes an instance copies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlavorRecord {
    /// Nova's `flavorid` (`1` to `5` for the defaults, the name for flavors made by
    /// `compute flavor-create`, a uuid by default through the API).
    pub id: String,
    pub flavor: Flavor,
    pub is_public: bool,
    pub description: Option<String>,
    pub extra_specs: ExtraSpecs,
}

impl FlavorRecord {
    /// A public flavor without description or extra specs.
    pub fn public(id: &str, flavor: Flavor) -> FlavorRecord {
        FlavorRecord {
            id: id.to_owned(),
            flavor,
            is_public: true,
            description: None,
            extra_specs: Default::default(),
        }
    }

    /// Nova's five defaults with Nova's ids, `1` (m1.tiny) to `5` (m1.xlarge).
    pub fn defaults() -> Vec<FlavorRecord> {
        Flavor::defaults()
            .into_iter()
            .enumerate()
            .map(|(i, f)| FlavorRecord::public(&(i + 1).to_string(), f))
            .collect()
    }
}

/// A keypair of one user (keypairs are per user, as in Nova).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeypairRecord {
    /// Nova's integer id.
    pub id: u64,
    pub user_id: String,
    pub keypair: Keypair,
    pub created_at: String,
}

/// A project (Keystone's, in the default domain).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProjectRecord {
    pub id: String,
    pub name: String,
    pub description: Option<String>,
    pub enabled: bool,
    pub created_at: String,
}

/// A user (Keystone's, in the default domain).
#[derive(Clone, PartialEq, Eq)]
pub struct UserRecord {
    pub id: String,
    pub name: String,
    /// The PHC string of its password's hash (argon2); `None`: it cannot log in.
    pub password_hash: Option<String>,
    pub enabled: bool,
    pub created_at: String,
}

impl std::fmt::Debug for UserRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UserRecord")
            .field("id", &self.id)
            .field("name", &self.name)
            .field(
                "password_hash",
                &self.password_hash.as_ref().map(|_| "<set>"),
            )
            .field("enabled", &self.enabled)
            .field("created_at", &self.created_at)
            .finish()
    }
}

/// The roles a user may hold on a project.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Role {
    /// Sees and manages every project's resources, and the flavors.
    Admin,
    /// Uses its project's resources.
    Member,
}

impl Role {
    pub const ALL: [Role; 2] = [Role::Admin, Role::Member];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Member => "member",
        }
    }

    pub fn parse(s: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.as_str() == s)
    }
}

/// "This user holds this role on this project."
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct RoleAssignment {
    pub user_id: String,
    pub project_id: String,
    pub role: Role,
}

/// What a project's instances use (Nova's `total*Used` limits).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ProjectUsage {
    pub instances: u64,
    pub vcpus: u64,
    pub ram_mb: u64,
}

/// Nova's `fault` as `nova show` prints it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fault {
    pub code: u16,
    pub message: String,
}

/// What a state change does to the instance's fault.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultChange<'a> {
    /// Leaves it as it is.
    Keep,
    /// Removes it (the action succeeded).
    Clear,
    /// Records this one (the action failed).
    Set(&'a Fault),
}

/// One instance row.
#[derive(Debug, Clone, PartialEq)]
pub struct InstanceRecord {
    pub uuid: String,
    pub name: String,
    /// The host it was placed on.
    pub host: String,
    pub flavor: Flavor,
    pub image_id: String,
    pub key_name: Option<String>,
    pub state: State,
    pub fixed_ip: Ipv4Addr,
    pub mac: MacAddr,
    pub ssh_port: Option<u16>,
    pub pid: Option<i32>,
    pub fault: Option<Fault>,
    /// The instance document (instance.md), JSON.
    pub document: String,
    pub created_at: String,
    pub updated_at: String,
    /// The revision of its last change.
    pub rev: Rev,
    /// The project that owns it.
    pub project_id: String,
    /// The user who made it.
    pub user_id: String,
}

/// What `list` shows: no documents, so that listing stays fast.
#[derive(Debug, Clone, PartialEq)]
pub struct InstanceSummary {
    pub uuid: String,
    pub name: String,
    pub host: String,
    pub state: State,
    pub fixed_ip: String,
    pub pid: Option<i32>,
    pub project_id: String,
}

/// An instance about to be recorded; host, IP and MAC are chosen on insert, in the
/// same transaction.
pub struct NewInstance<'a> {
    pub uuid: &'a str,
    pub name: &'a str,
    pub flavor: &'a Flavor,
    pub image_id: &'a str,
    pub key_name: Option<&'a str>,
    /// The project that owns it and the user who makes it.
    pub project_id: &'a str,
    pub user_id: &'a str,
    pub now: &'a str,
    /// The host asked for (`boot --host`): honoured, or refused with the reason.
    /// `None`: placement chooses.
    pub host: Option<&'a str>,
    /// How recent a host's heartbeat must be for it to count as up
    /// ([`compute::placement::DEFAULT_UP_TIMEOUT`]).
    pub up_timeout: Duration,
    /// Candidates for the MAC's last three bytes, tried in order.
    pub mac_candidates: Vec<[u8; 3]>,
    /// Builds the document once IP and MAC are known.
    pub document: &'a dyn Fn(Ipv4Addr, MacAddr) -> Result<String, crate::DocumentProblem>,
}

/// A host as it announces itself: its name and capacity (what the machine has).
#[derive(Debug, Clone, PartialEq)]
pub struct HostSpec {
    pub name: String,
    pub capacity: Resources,
    /// `None` keeps the recorded ratios (Nova's defaults for a new host).
    pub ratios: Option<AllocationRatios>,
}

/// A host as recorded, with what its instances use.
#[derive(Debug, Clone, PartialEq)]
pub struct HostRecord {
    pub name: String,
    pub capacity: Resources,
    pub ratios: AllocationRatios,
    pub enabled: bool,
    pub disabled_reason: Option<String>,
    /// The last heartbeat, RFC 3339 UTC, by the database's clock.
    pub heartbeat_at: Option<String>,
    /// Its age by the database's clock (so that hosts' clocks do not matter).
    pub heartbeat_age: Option<Duration>,
    pub used: Resources,
    pub instances: u64,
}

impl HostRecord {
    /// The host as placement sees it.
    pub fn placement_state(&self) -> HostState {
        HostState {
            name: self.name.clone(),
            capacity: self.capacity,
            ratios: self.ratios,
            enabled: self.enabled,
            disabled_reason: self.disabled_reason.clone(),
            heartbeat_age: self.heartbeat_age,
            used: self.used,
        }
    }
}

/// Checks a host name: what a hostname may hold, 1 to 255 characters.
pub fn validate_host_name(name: &str) -> Result<(), StoreError> {
    let ok = !name.is_empty()
        && name.len() <= 255
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'));
    if ok {
        Ok(())
    } else {
        Err(StoreError::InvalidHost(format!(
            "`{name}`: use 1 to 255 letters, digits, `.`, `-` and `_`"
        )))
    }
}

/// Outcome of setting a password once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PasswordSet {
    /// It was empty and holds this password now.
    Set,
    /// It already held one, which is kept (the first writer wins).
    AlreadySet,
}

/// One instance as the metadata server needs it.
#[derive(Clone, PartialEq, Eq)]
pub struct StoredDocument {
    pub uuid: String,
    pub host: String,
    /// The revision of its last change.
    pub rev: Rev,
    /// The fixed IP compute allocated (also inside the document's `network`).
    pub fixed_ip: Ipv4Addr,
    /// Host port forwarded to the guest's port 22 (user-mode networking), if running.
    pub ssh_port: Option<u16>,
    /// Nova's `vm_state` word (`active`, `stopped`, ...).
    pub vm_state: String,
    /// The instance document (instance.md), JSON bytes; parse with
    /// `compute::Instance::from_json`.
    pub document: Vec<u8>,
    /// The password the guest posted (encrypted by the guest), if any.
    pub password: Option<String>,
}

impl std::fmt::Debug for StoredDocument {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoredDocument")
            .field("uuid", &self.uuid)
            .field("host", &self.host)
            .field("rev", &self.rev)
            .field("fixed_ip", &self.fixed_ip)
            .field("ssh_port", &self.ssh_port)
            .field("vm_state", &self.vm_state)
            .field("document_bytes", &self.document.len())
            .field("password", &self.password.as_ref().map(|_| "<set>"))
            .finish()
    }
}

/// Every instance (of a host, or all) at one revision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    /// The database's revision when it was read: follow with
    /// [`DocumentFeed::changes_since`](crate::DocumentFeed::changes_since) from here.
    pub rev: Rev,
    pub documents: Vec<StoredDocument>,
}

/// One change after a revision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// Inserted or updated: the row as it is now.
    Upsert(StoredDocument),
    /// Deleted (from its tombstone).
    Delete {
        uuid: String,
        host: String,
        rev: Rev,
    },
}

impl Change {
    pub fn rev(&self) -> Rev {
        match self {
            Change::Upsert(d) => d.rev,
            Change::Delete { rev, .. } => *rev,
        }
    }

    pub fn uuid(&self) -> &str {
        match self {
            Change::Upsert(d) => &d.uuid,
            Change::Delete { uuid, .. } => uuid,
        }
    }
}

/// What a consumer behind by some revisions gets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Catchup {
    /// Every change after the asked revision up to `rev` (the database's revision
    /// when it was read: ask from there next), oldest first, at most one per instance.
    Changes { rev: Rev, changes: Vec<Change> },
    /// Tombstones after the asked revision were purged (the consumer was away longer
    /// than the grace period): take a new snapshot.
    SnapshotNeeded { purged_through: Rev },
}

/// What a host agent is asked to do to one instance, with its arguments.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case", deny_unknown_fields)]
pub enum WorkAction {
    /// Builds an instance the control plane recorded (building): disks, config drive
    /// (when asked), QEMU.
    Boot {
        #[serde(default = "yes")]
        config_drive: bool,
    },
    Stop {
        timeout_secs: u64,
    },
    Start,
    Reboot {
        hard: bool,
    },
    Pause,
    Unpause,
    Suspend,
    Resume,
    Rebuild {
        image: Option<String>,
    },
    /// `image-create`: the new image's id is the work's output.
    Snapshot {
        image_name: String,
    },
    Delete,
    /// The guest's console (its last `length` lines, else all of it, at most
    /// [`CONSOLE_OUTPUT_LIMIT`] bytes) as the work's output.
    ConsoleLog {
        length: Option<u64>,
    },
}

fn yes() -> bool {
    true
}

/// The most console output a work item carries (its end), like Nova's 100 KiB for
/// libvirt but roomier: a work row is not a log store.
pub const CONSOLE_OUTPUT_LIMIT: usize = 1 << 20;

impl WorkAction {
    /// Its name (the `action` column).
    pub fn name(&self) -> &'static str {
        match self {
            WorkAction::Boot { .. } => "boot",
            WorkAction::Stop { .. } => "stop",
            WorkAction::Start => "start",
            WorkAction::Reboot { .. } => "reboot",
            WorkAction::Pause => "pause",
            WorkAction::Unpause => "unpause",
            WorkAction::Suspend => "suspend",
            WorkAction::Resume => "resume",
            WorkAction::Rebuild { .. } => "rebuild",
            WorkAction::Snapshot { .. } => "snapshot",
            WorkAction::Delete => "delete",
            WorkAction::ConsoleLog { .. } => "console_log",
        }
    }
}

/// Where a work item is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WorkState {
    /// Waiting for its host's agent.
    Queued,
    /// Taken by the agent, not finished.
    Running,
    /// Finished well.
    Done,
    /// Finished with this error (the chain, one line).
    Failed(String),
}

impl WorkState {
    pub fn name(&self) -> &'static str {
        match self {
            WorkState::Queued => "queued",
            WorkState::Running => "running",
            WorkState::Done => "done",
            WorkState::Failed(_) => "failed",
        }
    }

    pub(crate) fn from_columns(
        id: u64,
        state: &str,
        outcome: Option<String>,
    ) -> Result<WorkState, StoreError> {
        Ok(match state {
            "queued" => WorkState::Queued,
            "running" => WorkState::Running,
            "done" => WorkState::Done,
            "failed" => WorkState::Failed(outcome.unwrap_or_default()),
            other => {
                return Err(StoreError::Corrupt {
                    what: "work state",
                    key: id.to_string(),
                    problem: other.to_owned(),
                })
            }
        })
    }
}

/// How a work item ended, as its agent reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WorkOutcome {
    Done,
    /// Done, with a result the asker reads back ([`Work::output`]).
    Output(String),
    Failed(String),
}

/// One queued action for a host's agent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Work {
    pub id: u64,
    pub host: String,
    pub uuid: String,
    pub action: WorkAction,
    pub state: WorkState,
    /// What a finished item handed back (a console log, a new image's id), if any.
    pub output: Option<String>,
    pub created_at: String,
    pub started_at: Option<String>,
    pub finished_at: Option<String>,
}

impl WorkOutcome {
    /// The `state` and `outcome` columns it is stored as.
    pub(crate) fn columns(&self) -> (&'static str, Option<&str>) {
        match self {
            WorkOutcome::Done => ("done", None),
            WorkOutcome::Output(o) => ("done", Some(o.as_str())),
            WorkOutcome::Failed(m) => ("failed", Some(m.as_str())),
        }
    }
}

/// The output of a work item from its columns: a done item's `outcome`.
pub(crate) fn work_output(state: &WorkState, outcome: Option<String>) -> Option<String> {
    match state {
        WorkState::Done => outcome,
        _ => None,
    }
}

/// One file of an image.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ImagePart {
    Disk,
    Kernel,
    Ramdisk,
}

impl ImagePart {
    /// Its name: the `part` column, and the file's name in `images/<id>/`.
    pub fn name(self) -> &'static str {
        match self {
            ImagePart::Disk => "disk",
            ImagePart::Kernel => "kernel",
            ImagePart::Ramdisk => "ramdisk",
        }
    }

    /// The parts `image` has, disk first.
    pub fn of(image: &Image) -> Vec<ImagePart> {
        let mut parts = vec![ImagePart::Disk];
        if image.has_kernel {
            parts.push(ImagePart::Kernel);
        }
        if image.has_ramdisk {
            parts.push(ImagePart::Ramdisk);
        }
        parts
    }
}

/// One image file as a database keeps it: its size and SHA-256 (hex), taken from
/// the bytes as they were stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageFile {
    pub part: ImagePart,
    pub size: u64,
    pub sha256: String,
}

pub(crate) fn parse_work_action(id: u64, args: &str) -> Result<WorkAction, StoreError> {
    serde_json::from_str(args).map_err(|e| StoreError::Corrupt {
        what: "work action",
        key: id.to_string(),
        problem: e.to_string(),
    })
}

pub(crate) fn work_action_json(action: &WorkAction) -> String {
    // A derived Serialize of plain strings, numbers and booleans cannot fail.
    serde_json::to_string(action).unwrap_or_default()
}

pub(crate) fn parse_state(
    vm: &str,
    task: Option<&str>,
    power: &str,
    key: &str,
) -> Result<State, StoreError> {
    let corrupt = |problem: String| StoreError::Corrupt {
        what: "state",
        key: key.to_owned(),
        problem,
    };
    Ok(State {
        vm: VmState::parse(vm).ok_or_else(|| corrupt(format!("vm_state {vm}")))?,
        task: match task {
            None => None,
            Some(t) => Some(TaskState::parse(t).ok_or_else(|| corrupt(format!("task_state {t}")))?),
        },
        power: PowerState::parse(power).ok_or_else(|| corrupt(format!("power_state {power}")))?,
    })
}

/// An instance row's columns as both backends read them.
pub(crate) struct InstanceRow {
    pub uuid: String,
    pub name: String,
    pub host: String,
    pub flavor: String,
    pub image_id: String,
    pub key_name: Option<String>,
    pub vm_state: String,
    pub task_state: Option<String>,
    pub power_state: String,
    pub fixed_ip: String,
    pub mac: String,
    pub ssh_port: Option<i64>,
    pub pid: Option<i64>,
    pub fault: Option<String>,
    pub document: String,
    pub created_at: String,
    pub updated_at: String,
    pub rev: i64,
    pub project_id: String,
    pub user_id: String,
}

/// The columns of an [`InstanceRow`], in its order.
pub(crate) const INSTANCE_COLUMNS: &str =
    "uuid, name, host, flavor, image_id, key_name, vm_state, task_state, power_state, \
     fixed_ip, mac, ssh_port, pid, fault, document, created_at, updated_at, rev, project_id, user_id";

impl InstanceRow {
    pub fn into_record(self) -> Result<InstanceRecord, StoreError> {
        let uuid = self.uuid;
        let corrupt = |what, problem: String| StoreError::Corrupt {
            what,
            key: uuid.clone(),
            problem,
        };
        Ok(InstanceRecord {
            name: self.name,
            host: self.host,
            flavor: serde_json::from_str(&self.flavor)
                .map_err(|e| corrupt("flavor", e.to_string()))?,
            image_id: self.image_id,
            key_name: self.key_name,
            state: parse_state(
                &self.vm_state,
                self.task_state.as_deref(),
                &self.power_state,
                &uuid,
            )?,
            fixed_ip: self
                .fixed_ip
                .parse()
                .map_err(|_| corrupt("fixed_ip", self.fixed_ip.clone()))?,
            mac: self
                .mac
                .parse()
                .map_err(|_| corrupt("mac", self.mac.clone()))?,
            ssh_port: match self.ssh_port {
                None => None,
                Some(p) => Some(u16::try_from(p).map_err(|_| corrupt("ssh_port", p.to_string()))?),
            },
            pid: match self.pid {
                None => None,
                Some(p) => Some(i32::try_from(p).map_err(|_| corrupt("pid", p.to_string()))?),
            },
            fault: match self.fault {
                None => None,
                Some(f) => {
                    Some(serde_json::from_str(&f).map_err(|e| corrupt("fault", e.to_string()))?)
                }
            },
            document: self.document,
            created_at: self.created_at,
            updated_at: self.updated_at,
            rev: rev_from(self.rev),
            project_id: self.project_id,
            user_id: self.user_id,
            uuid,
        })
    }
}

/// The columns of a [`DocumentRow`], in its order.
pub(crate) const DOCUMENT_COLUMNS: &str =
    "uuid, host, rev, fixed_ip, ssh_port, vm_state, document, password";

/// A row of the feed as both backends read it.
pub(crate) struct DocumentRow {
    pub uuid: String,
    pub host: String,
    pub rev: i64,
    pub fixed_ip: String,
    pub ssh_port: Option<i64>,
    pub vm_state: String,
    pub document: String,
    pub password: Option<String>,
}

impl DocumentRow {
    pub fn into_document(self) -> Result<StoredDocument, StoreError> {
        let corrupt = |what, problem: String| StoreError::Corrupt {
            what,
            key: self.uuid.clone(),
            problem,
        };
        Ok(StoredDocument {
            fixed_ip: self
                .fixed_ip
                .parse()
                .map_err(|_| corrupt("fixed_ip", self.fixed_ip.clone()))?,
            ssh_port: match self.ssh_port {
                None => None,
                Some(p) => Some(u16::try_from(p).map_err(|_| corrupt("ssh_port", p.to_string()))?),
            },
            uuid: self.uuid,
            host: self.host,
            rev: rev_from(self.rev),
            vm_state: self.vm_state,
            document: self.document.into_bytes(),
            password: self.password,
        })
    }
}

/// Revisions are stored as signed 64-bit integers and never negative.
pub(crate) fn rev_from(v: i64) -> Rev {
    v.max(0) as Rev
}

pub(crate) fn rev_to(v: Rev) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// Merges upserts and deletions into one list, oldest first, keeping only the
/// newest change of each instance.
pub(crate) fn merge_changes(mut changes: Vec<Change>) -> Vec<Change> {
    changes.sort_by_key(Change::rev);
    let mut newest = std::collections::HashMap::new();
    for (i, c) in changes.iter().enumerate() {
        newest.insert(c.uuid().to_owned(), i);
    }
    changes
        .into_iter()
        .enumerate()
        .filter(|(i, c)| newest.get(c.uuid()) == Some(i))
        .map(|(_, c)| c)
        .collect()
}

/// A host row's columns as both backends read them (usage summed by the query).
pub(crate) struct HostRow {
    pub name: String,
    pub vcpus: i64,
    pub ram_mb: i64,
    pub disk_gb: i64,
    pub cpu_ratio: f64,
    pub ram_ratio: f64,
    pub disk_ratio: f64,
    pub enabled: bool,
    pub disabled_reason: Option<String>,
    pub heartbeat_at: Option<String>,
    pub heartbeat_age_secs: Option<f64>,
    pub used_vcpus: i64,
    pub used_ram_mb: i64,
    pub used_disk_gb: i64,
    pub instances: i64,
}

impl HostRow {
    pub fn into_record(self) -> HostRecord {
        let n = |v: i64| v.max(0) as u64;
        HostRecord {
            name: self.name,
            capacity: Resources {
                vcpus: n(self.vcpus),
                ram_mb: n(self.ram_mb),
                disk_gb: n(self.disk_gb),
            },
            ratios: AllocationRatios {
                cpu: self.cpu_ratio,
                ram: self.ram_ratio,
                disk: self.disk_ratio,
            },
            enabled: self.enabled,
            disabled_reason: self.disabled_reason,
            heartbeat_at: self.heartbeat_at,
            heartbeat_age: self
                .heartbeat_age_secs
                .map(|s| Duration::from_secs_f64(s.max(0.0))),
            used: Resources {
                vcpus: n(self.used_vcpus),
                ram_mb: n(self.used_ram_mb),
                disk_gb: n(self.used_disk_gb),
            },
            instances: n(self.instances),
        }
    }
}

/// The one record a lookup by id or name found, else why not.
pub(crate) fn one_of<T>(
    kind: &'static str,
    key: &str,
    mut found: Vec<T>,
    id: impl Fn(&T) -> String,
) -> Result<T, StoreError> {
    match found.len() {
        0 => Err(StoreError::NotFound {
            kind,
            key: key.to_owned(),
        }),
        1 => Ok(found.remove(0)),
        _ => Err(StoreError::Ambiguous {
            kind,
            key: key.to_owned(),
            ids: found.iter().map(id).collect::<Vec<_>>().join(", "),
        }),
    }
}

/// Resource amounts as stored (signed 64-bit).
pub(crate) fn amount(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// The name a (changed) instance document gives its instance, else `old`: the
/// `name` column follows the document, so a rename is a document change.
pub(crate) fn document_name(document: &str, old: &str) -> String {
    serde_json::from_str::<serde_json::Value>(document)
        .ok()
        .and_then(|v| v.get("name").and_then(|n| n.as_str()).map(str::to_owned))
        .unwrap_or_else(|| old.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn work_actions_keep_their_arguments_and_refuse_unknown_ones() {
        let a = WorkAction::Stop { timeout_secs: 30 };
        let json = work_action_json(&a);
        assert_eq!(json, r#"{"action":"stop","timeout_secs":30}"#);
        assert_eq!(parse_work_action(1, &json).expect("parse"), a);
        assert!(parse_work_action(1, r#"{"action":"fly"}"#).is_err());
    }

    #[test]
    fn merged_changes_keep_the_newest_per_instance_oldest_first() {
        let del = |uuid: &str, rev| Change::Delete {
            uuid: uuid.into(),
            host: "h".into(),
            rev,
        };
        let merged = merge_changes(vec![del("b", 5), del("a", 2), del("a", 7), del("c", 1)]);
        let got: Vec<(String, Rev)> = merged
            .iter()
            .map(|c| (c.uuid().to_owned(), c.rev()))
            .collect();
        assert_eq!(got, vec![("c".into(), 1), ("b".into(), 5), ("a".into(), 7)]);
    }

    #[test]
    fn host_names_are_checked_and_a_password_never_prints() {
        assert!(validate_host_name("compute-1.example_a").is_ok());
        for bad in ["", "a b", "a/b", &"x".repeat(256)] {
            assert!(validate_host_name(bad).is_err(), "{bad}");
        }
        let d = StoredDocument {
            uuid: "u".into(),
            host: "h".into(),
            rev: 1,
            fixed_ip: Ipv4Addr::LOCALHOST,
            ssh_port: None,
            vm_state: "active".into(),
            document: b"{}".to_vec(),
            password: Some("s3cret".into()),
        };
        assert!(!format!("{d:?}").contains("s3cret"));
    }
}
