//! Compute's state: flavors, images (with the Image API's records of them),
//! keypairs, instances, hosts and queued work, behind the [`Store`] trait the host
//! uses, so that the database is a choice: [`SqliteStore`] keeps it in one SQLite
//! file in the state folder (one host, no setup), [`PgStore`] in a PostgreSQL
//! database that many hosts share. The same
//! schema meaning on both, each with its migrations ([`SCHEMA_VERSION`]); one test
//! suite runs against both.
//!
//! The read side other processes use (the metadata server) is the change feed,
//! [`DocumentFeed`]: a [`Snapshot`] of the instances at a revision, then
//! [`Catchup`]s of what changed after it, and a cheap wait for the next change
//! ([`SqliteFeed`], [`PgFeed`]). Every change to an instance row takes the next
//! number of one database-wide revision counter in the same transaction (a
//! deletion leaves a tombstone with its number), so "everything after R" is one
//! query and a missed wake-up loses nothing.
//!
//! It owns the records and their persistence, nothing else: no processes, no files
//! besides the database, no policy about what a state change means (the lifecycle
//! state machine and placement are in the `compute` core, the actions in
//! `compute-host`).

mod error;
mod image_record;
mod location;
pub mod postgres;
mod query;
mod records;
pub mod sqlite;

pub use error::{BackendError, DocumentProblem, StoreError};
pub use image_record::{ImageRecord, ImageStatus, RecordChange, RecordProblem, UploadLease};
pub use location::{open_feed, open_store, Location};
pub use postgres::{PgFeed, PgHostLease, PgStore, PgWorkWatch, WorkNotice};
pub use query::InstanceQuery;
pub use records::{
    validate_host_name, Catchup, Change, ExtraSpecs, Fault, FaultChange, FlavorRecord, HostRecord,
    HostSpec, Image, ImageFile, ImagePart, InstanceRecord, InstanceSummary, KeypairRecord,
    NewInstance, Owner, PasswordSet, ProjectRecord, ProjectUsage, Rev, Role, RoleAssignment,
    Snapshot, StoredDocument, UserRecord, Visibility, Work, WorkAction, WorkOutcome, WorkState,
    CONSOLE_OUTPUT_LIMIT, DEFAULT_PROJECT_ID, DEFAULT_PROJECT_NAME, OPERATOR_USER_ID,
    OPERATOR_USER_NAME,
};
pub use sqlite::{SqliteFeed, SqliteStore, DB_FILE};

use compute::flavor::Flavor;
use compute::keypair::Keypair;
use compute::lifecycle::State;
use compute::netalloc::Subnet;
use std::time::Duration;

/// The schema version this build knows, the same number on both backends. A
/// database at a newer version is refused (naming both); an older one is migrated
/// when a [`Store`] opens it, in one transaction.
pub const SCHEMA_VERSION: i64 = 5;

/// How long a deleted instance's tombstone is kept. A feed consumer away for longer
/// gets [`Catchup::SnapshotNeeded`].
pub const TOMBSTONE_GRACE: Duration = Duration::from_secs(24 * 3600);

/// The PostgreSQL channel every change to an instance is announced on, in the
/// writing transaction (delivered at its commit). The payload is `REV HOST`; it only
/// wakes consumers, who catch up with [`DocumentFeed::changes_since`].
pub const CHANGES_CHANNEL: &str = "compute_changes";

/// The PostgreSQL channel every new or finished work item is announced on; the
/// payload is `ID HOST STATE` (`queued`, `running`, `done`, `failed`).
pub const WORK_CHANNEL: &str = "compute_work";

/// What compute keeps, as a host or the control plane asks for it. Synchronous and
/// object-safe: the host holds a `Box<dyn Store>`. Every method is one transaction;
/// lookups by `key` take an id (uuid) or a name that exactly one record has, as
/// `nova` resolves them. Methods that need the connection for several statements at
/// once take `&mut self`; a backend whose client needs `&mut` everywhere keeps it
/// behind a `RefCell` or `Mutex`.
pub trait Store: Send {
    /// Where it is, for messages (a PostgreSQL URL without its password).
    fn location(&self) -> String;

    /// The fixed-IP network, recorded when the store was first made and kept after.
    fn subnet(&self) -> Subnet;

    /// Every flavor, smallest first.
    fn flavors(&self) -> Result<Vec<Flavor>, StoreError>;
    /// A flavor by its id, else by its name.
    fn flavor(&self, key: &str) -> Result<Flavor, StoreError> {
        self.flavor_record(key).map(|r| r.flavor)
    }
    /// Records a new public flavor whose id is its name ([`StoreError::Exists`]
    /// when the name or the id is taken).
    fn add_flavor(&self, flavor: &Flavor) -> Result<(), StoreError> {
        self.create_flavor(&FlavorRecord::public(&flavor.name, flavor.clone()))
    }
    /// Deletes the flavor of this name, with its extra specs.
    fn delete_flavor(&self, name: &str) -> Result<(), StoreError>;
    /// Every flavor with its id, access, description and extra specs, by id.
    fn flavor_records(&self) -> Result<Vec<FlavorRecord>, StoreError>;
    /// A flavor by its id, else by its name.
    fn flavor_record(&self, key: &str) -> Result<FlavorRecord, StoreError>;
    /// Records a new flavor with its extra specs ([`StoreError::Exists`] when the
    /// name or the id is taken).
    fn create_flavor(&self, flavor: &FlavorRecord) -> Result<(), StoreError>;
    /// Deletes the flavor with this id, with its extra specs.
    fn delete_flavor_by_id(&self, id: &str) -> Result<(), StoreError>;
    /// Sets these extra specs of flavor `id` (others stay); returns them all.
    fn set_flavor_extra_specs(
        &mut self,
        id: &str,
        specs: &ExtraSpecs,
    ) -> Result<ExtraSpecs, StoreError>;
    /// Removes one extra spec ([`StoreError::NotFound`] when the flavor lacks it).
    fn delete_flavor_extra_spec(&self, id: &str, key: &str) -> Result<(), StoreError>;

    fn add_image(&self, image: &Image) -> Result<(), StoreError>;
    /// Every image, oldest first.
    fn images(&self) -> Result<Vec<Image>, StoreError>;
    fn image(&self, key: &str) -> Result<Image, StoreError>;
    /// Forgets an image (and its Image API record), refused
    /// ([`StoreError::ImageInUse`]) while an instance uses it.
    fn delete_image(&mut self, id: &str) -> Result<(), StoreError>;

    /// Records what the Image API made ([`StoreError::Exists`] when a record has
    /// its id; an image row of that id is the caller's to check: an upload's
    /// record and its image share their id).
    fn add_image_record(&self, record: &ImageRecord) -> Result<(), StoreError>;
    /// The Image API's record of image `id` (an id, never a name).
    fn image_record(&self, id: &str) -> Result<ImageRecord, StoreError>;
    /// Every Image API record, oldest first.
    fn image_records(&self) -> Result<Vec<ImageRecord>, StoreError>;
    /// Rewrites record `id` with `change` (given the current one), the row locked
    /// meanwhile, so that two changes (a PATCH and an upload's end) both land whole;
    /// `change`'s error refuses it ([`StoreError::ImageRecordRefused`]) and nothing
    /// is written. The image of the same id, if recorded, takes the record's name
    /// (unless empty) and visibility in the same transaction (what boots and the
    /// command line see follows the Image API). Returns the record as written.
    fn update_image_record(
        &mut self,
        id: &str,
        change: &mut RecordChange<'_>,
    ) -> Result<ImageRecord, StoreError>;
    /// Forgets record `id` (`false`: there was none).
    fn delete_image_record(&self, id: &str) -> Result<bool, StoreError>;
    /// Ends the uploads whose lease ran out before `now` (their uploader is gone):
    /// `active` when the import committed (the image is recorded), else `killed`;
    /// returns each record so ended.
    fn end_abandoned_uploads(&self, now: &str) -> Result<Vec<ImageRecord>, StoreError>;
    /// Whether image files travel through this database (PostgreSQL, which many hosts
    /// share) rather than living beside it (a state folder).
    fn keeps_image_files(&self) -> bool {
        false
    }
    /// Records `image` with the bytes of its files, read from `files`, in one
    /// transaction (all or nothing). The image's `size` and `checksum` become the
    /// disk's as stored (SHA-256); each file's are kept for [`Store::read_image_file`].
    fn add_image_with_files(
        &mut self,
        image: &Image,
        files: &mut [(ImagePart, &mut dyn std::io::Read)],
    ) -> Result<Image, StoreError> {
        let _ = (image, files);
        Err(StoreError::NoImageFiles {
            location: self.location(),
        })
    }
    /// Writes the stored bytes of one file of an image to `out`; returns its size
    /// and checksum as recorded (the reader checks the bytes against them).
    fn read_image_file(
        &self,
        id: &str,
        part: ImagePart,
        out: &mut dyn std::io::Write,
    ) -> Result<ImageFile, StoreError> {
        let _ = (id, part, out);
        Err(StoreError::NoImageFiles {
            location: self.location(),
        })
    }

    /// Records a keypair of `user_id` ([`StoreError::Exists`] when that user has
    /// one of this name).
    fn add_keypair(
        &self,
        user_id: &str,
        keypair: &Keypair,
        created_at: &str,
    ) -> Result<KeypairRecord, StoreError>;
    /// Every keypair of `user_id`, by name.
    fn keypairs(&self, user_id: &str) -> Result<Vec<KeypairRecord>, StoreError>;
    fn keypair(&self, user_id: &str, name: &str) -> Result<KeypairRecord, StoreError>;
    fn delete_keypair(&self, user_id: &str, name: &str) -> Result<(), StoreError>;

    /// Records a project ([`StoreError::Exists`] when the name or id is taken).
    fn add_project(&self, project: &ProjectRecord) -> Result<(), StoreError>;
    /// Every project, by name.
    fn projects(&self) -> Result<Vec<ProjectRecord>, StoreError>;
    /// A project by id, else by name.
    fn project(&self, key: &str) -> Result<ProjectRecord, StoreError>;
    /// Records a user ([`StoreError::Exists`] when the name or id is taken).
    fn add_user(&self, user: &UserRecord) -> Result<(), StoreError>;
    /// Every user, by name.
    fn users(&self) -> Result<Vec<UserRecord>, StoreError>;
    /// A user by id, else by name.
    fn user(&self, key: &str) -> Result<UserRecord, StoreError>;
    /// Enables or disables a user (a disabled one's tokens stop working).
    fn set_user_enabled(&self, id: &str, enabled: bool) -> Result<(), StoreError>;
    /// Replaces a user's password hash (`None`: it cannot log in).
    fn set_user_password(&self, id: &str, password_hash: Option<&str>) -> Result<(), StoreError>;
    /// Grants a role (granting one already held changes nothing).
    fn add_role(&self, assignment: &RoleAssignment) -> Result<(), StoreError>;
    /// Takes a role back ([`StoreError::NotFound`] when it was not held).
    fn remove_role(&self, assignment: &RoleAssignment) -> Result<(), StoreError>;
    /// Every role assignment, by user, project and role.
    fn role_assignments(&self) -> Result<Vec<RoleAssignment>, StoreError>;
    /// The roles `user_id` holds on `project_id` (none: no access).
    fn roles_of(&self, user_id: &str, project_id: &str) -> Result<Vec<Role>, StoreError>;
    /// What the project's instances use.
    fn project_usage(&self, project_id: &str) -> Result<ProjectUsage, StoreError>;

    /// Records a new instance (building, spawning): chooses its host by
    /// [`compute::placement::place`] (or checks the one asked for) and allocates a
    /// fixed IP and a MAC that no other instance has, all in one transaction that
    /// no other insert runs beside, so two boots never overbook a host or share an
    /// address. A refused placement records nothing
    /// ([`StoreError::Placement`]).
    fn insert_instance(&mut self, new: &NewInstance<'_>) -> Result<InstanceRecord, StoreError>;
    /// [`Store::insert_instance`], and `action` queued for the chosen host in the same
    /// transaction (a shared database's `boot`: the instance never exists without the
    /// work that builds it); returns the record and the work item's id.
    fn insert_instance_with_work(
        &mut self,
        new: &NewInstance<'_>,
        action: &WorkAction,
    ) -> Result<(InstanceRecord, u64), StoreError>;
    fn instance_by_uuid(&self, uuid: &str) -> Result<InstanceRecord, StoreError>;
    fn find_instance(&self, key: &str) -> Result<InstanceRecord, StoreError>;
    /// Every instance without its document (what `list` shows), oldest first.
    fn list_instances(&self) -> Result<Vec<InstanceSummary>, StoreError>;
    /// Every instance with its document, of `project` or all, oldest first, in one
    /// read (a detailed list).
    fn instance_records(&self, project: Option<&str>) -> Result<Vec<InstanceRecord>, StoreError>;
    /// One page of instances with their documents, newest first, filtered and cut
    /// by the database ([`InstanceQuery`]); a marker that does not pass the
    /// filters is [`StoreError::NotFound`] (kind `marker`).
    fn instance_page(&self, query: &InstanceQuery<'_>) -> Result<Vec<InstanceRecord>, StoreError>;
    /// The instances on `host` whose record says a QEMU may exist (a pid, a task,
    /// or a power state other than shutdown): all that its reconciliation has to
    /// look at.
    fn instances_claiming_processes(&self, host: &str) -> Result<Vec<InstanceSummary>, StoreError>;
    /// Writes a new state, and changes the fault as told.
    fn set_state(
        &self,
        uuid: &str,
        state: State,
        fault: FaultChange<'_>,
        now: &str,
    ) -> Result<(), StoreError>;
    /// Records the running QEMU (or its absence) and the forwarded SSH port.
    fn set_runtime(
        &self,
        uuid: &str,
        pid: Option<i32>,
        ssh_port: Option<u16>,
    ) -> Result<(), StoreError>;
    /// Replaces the instance's image and document (a rebuild).
    fn set_document(&self, uuid: &str, image_id: &str, document: &str) -> Result<(), StoreError>;
    /// Rewrites the instance's document with `change` (given the current one), the
    /// row locked meanwhile, so that two concurrent changes both land
    /// (`meta-set`). `change`'s error refuses it
    /// ([`StoreError::DocumentRefused`]) and nothing is written. The record's name
    /// follows the document's `name` (a rename is a document change).
    fn update_document(
        &mut self,
        key: &str,
        now: &str,
        change: &dyn Fn(&str) -> Result<String, DocumentProblem>,
    ) -> Result<InstanceRecord, StoreError>;
    /// Forgets the instance: its fixed IP and MAC are free again; its tombstone
    /// keeps the deletion in the feed for [`TOMBSTONE_GRACE`].
    fn delete_instance(&self, uuid: &str) -> Result<(), StoreError>;
    /// Removes tombstones older than `grace` (the deletion takes care of it with
    /// [`TOMBSTONE_GRACE`]); returns how many.
    fn purge_tombstones(&self, grace: Duration) -> Result<u64, StoreError>;

    /// The password the guest posted, if any.
    fn password(&self, uuid: &str) -> Result<Option<String>, StoreError>;
    /// Sets the password unless one is set: the database decides, so of two
    /// writers racing exactly one gets [`PasswordSet::Set`].
    fn set_password(&self, uuid: &str, password: &str) -> Result<PasswordSet, StoreError>;
    /// Removes the password (`nova clear-password`); `false` when there was none.
    fn clear_password(&self, uuid: &str) -> Result<bool, StoreError>;

    /// Records the host, or updates its capacity (keeping whether it is enabled and,
    /// unless given, its ratios), and heartbeats. A SQLite state folder has one host:
    /// its first name stays ([`StoreError::OneHost`]).
    fn register_host(&self, spec: &HostSpec) -> Result<HostRecord, StoreError>;
    /// "This host is alive", by the database's clock.
    fn heartbeat(&self, name: &str) -> Result<(), StoreError>;
    /// Every host with what its instances use, by name.
    fn hosts(&self) -> Result<Vec<HostRecord>, StoreError>;
    fn host(&self, name: &str) -> Result<HostRecord, StoreError>;
    /// Enables a host, or disables it with an optional reason (placement skips it;
    /// its instances stay).
    fn set_host_enabled(
        &self,
        name: &str,
        enabled: bool,
        reason: Option<&str>,
    ) -> Result<(), StoreError>;

    /// Queues `action` on instance `uuid` for `host`'s agent; returns the item's id.
    fn enqueue(&self, host: &str, uuid: &str, action: &WorkAction) -> Result<u64, StoreError>;
    /// Takes the oldest queued item of `host` (it becomes running), if any. On
    /// PostgreSQL, `FOR UPDATE SKIP LOCKED`: two takers never get the same item.
    fn take_work(&self, host: &str) -> Result<Option<Work>, StoreError>;
    /// Records how a running item ended ([`StoreError::WorkNotRunning`] otherwise).
    fn finish_work(&self, id: u64, outcome: &WorkOutcome) -> Result<(), StoreError>;
    fn work(&self, id: u64) -> Result<Work, StoreError>;
    /// `host`'s queued items, oldest first.
    fn queued_work(&self, host: &str) -> Result<Vec<Work>, StoreError>;
    /// Puts `host`'s running items back in the queue (its agent restarted: what it
    /// was doing did not finish); returns how many.
    fn requeue_running(&self, host: &str) -> Result<u64, StoreError>;
}

/// The change feed of instance documents, for readers in other processes (the
/// metadata server). A consumer takes a [`snapshot`](DocumentFeed::snapshot), then
/// loops: [`wait_for_change`](DocumentFeed::wait_for_change) after the revision it
/// has, [`changes_since`](DocumentFeed::changes_since) that revision, apply, repeat.
/// A failed call leaves the feed usable: the next one reconnects.
pub trait DocumentFeed: Send {
    /// Where it reads, for messages.
    fn location(&self) -> String;
    /// The database's current revision.
    fn rev(&mut self) -> Result<Rev, StoreError>;
    /// Every instance (of `host`, or all), with the revision they were read at (one
    /// read transaction, so the two agree).
    fn snapshot(&mut self, host: Option<&str>) -> Result<Snapshot, StoreError>;
    /// What changed (for `host`, or all) after revision `since`.
    fn changes_since(&mut self, since: Rev, host: Option<&str>) -> Result<Catchup, StoreError>;
    /// Blocks until the revision may have passed `after` (for `host`'s instances,
    /// when given) or `timeout` passes; `true` when something may have changed.
    /// It may wake for nothing; it never sleeps through a change committed before
    /// it was called.
    fn wait_for_change(
        &mut self,
        after: Rev,
        host: Option<&str>,
        timeout: Duration,
    ) -> Result<bool, StoreError>;
    /// The password the guest posted, if any.
    fn password(&mut self, uuid: &str) -> Result<Option<String>, StoreError>;
    /// Sets the password unless one is set (the database decides between racers).
    fn set_password(&mut self, uuid: &str, password: &str) -> Result<PasswordSet, StoreError>;
    /// Removes the password; `false` when there was none.
    fn clear_password(&mut self, uuid: &str) -> Result<bool, StoreError>;
}
