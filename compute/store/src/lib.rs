//! Compute's state: flavors, images, keypairs and instances, behind the [`Store`]
//! trait the host uses, so that the database is a choice. [`SqliteStore`] keeps it in
//! one SQLite file in the state folder; [`DocumentReader`] is the read-only side other
//! processes (the metadata server) use on that file.
//!
//! It owns the records and their persistence, nothing else: no processes, no files
//! besides the database, no policy about what a state change means (the lifecycle
//! state machine is in the `compute` core, the actions in `compute-host`).

mod error;
mod records;
pub mod sqlite;

pub use error::{BackendError, StoreError};
pub use records::{Fault, FaultChange, Image, InstanceRecord, InstanceSummary, NewInstance};
pub use sqlite::{DocumentReader, SqliteStore, StoredDocument, DB_FILE};

use compute::flavor::Flavor;
use compute::keypair::Keypair;
use compute::lifecycle::State;
use compute::netalloc::Subnet;

/// What compute keeps about one host, as the host asks for it. Synchronous and
/// object-safe: the host holds a `Box<dyn Store>`. Every method is one transaction;
/// lookups by `key` take an id (uuid) or a name that exactly one record has, as
/// `nova` resolves them. Methods that need the connection for several statements at
/// once take `&mut self`; a backend whose client needs `&mut` everywhere keeps it
/// behind a `RefCell` or `Mutex`.
pub trait Store: Send {
    /// The fixed-IP network, recorded when the store was first made and kept after.
    fn subnet(&self) -> Subnet;

    /// Every flavor, smallest first.
    fn flavors(&self) -> Result<Vec<Flavor>, StoreError>;
    fn flavor(&self, name: &str) -> Result<Flavor, StoreError>;
    /// Records a new flavor ([`StoreError::Exists`] when the name is taken).
    fn add_flavor(&self, flavor: &Flavor) -> Result<(), StoreError>;
    fn delete_flavor(&self, name: &str) -> Result<(), StoreError>;

    fn add_image(&self, image: &Image) -> Result<(), StoreError>;
    /// Every image, oldest first.
    fn images(&self) -> Result<Vec<Image>, StoreError>;
    fn image(&self, key: &str) -> Result<Image, StoreError>;
    /// Forgets an image, refused ([`StoreError::ImageInUse`]) while an instance uses it.
    fn delete_image(&mut self, id: &str) -> Result<(), StoreError>;

    /// Records a keypair ([`StoreError::Exists`] when the name is taken).
    fn add_keypair(&self, keypair: &Keypair) -> Result<(), StoreError>;
    /// Every keypair, by name.
    fn keypairs(&self) -> Result<Vec<Keypair>, StoreError>;
    fn keypair(&self, name: &str) -> Result<Keypair, StoreError>;
    fn delete_keypair(&self, name: &str) -> Result<(), StoreError>;

    /// Records a new instance (building, spawning), allocating a fixed IP and a MAC
    /// that no other instance has, in the same transaction.
    fn insert_instance(&mut self, new: &NewInstance<'_>) -> Result<InstanceRecord, StoreError>;
    fn instance_by_uuid(&self, uuid: &str) -> Result<InstanceRecord, StoreError>;
    fn find_instance(&self, key: &str) -> Result<InstanceRecord, StoreError>;
    /// Every instance without its document (what `list` shows), oldest first.
    fn list_instances(&self) -> Result<Vec<InstanceSummary>, StoreError>;
    /// Instances whose record says a QEMU may exist (a pid, a task, or a power state
    /// other than shutdown): all that reconciliation has to look at.
    fn instances_claiming_processes(&self) -> Result<Vec<InstanceSummary>, StoreError>;
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
    /// Forgets the instance: its fixed IP and MAC are free again.
    fn delete_instance(&self, uuid: &str) -> Result<(), StoreError>;
}
