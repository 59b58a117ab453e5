//! `boot`: validate everything, record the instance (building), allocate its IP and
//! MAC, make its disks and config drive, start QEMU, mark it active. Any failure
//! leaves it in `error` with a fault and no process or files.

use super::{io_err, lock, now, random_bytes, DriverError, Host};
use crate::qemu::command::DiskFormat;
use crate::qemu::img;
use base64::Engine;
use compute::flavor::Flavor;
use compute::instance::{
    FileSpec, InstanceDocument, Key, KeyType, Link, Network, NetworkData, NetworkType, Route,
    Service,
};
use compute::lifecycle::{Action, VmState};
use compute::mac::MacAddr;
use compute::{quota, Instance};
use compute_io::tool;
use compute_store::{FaultChange, Image, InstanceRecord, NewInstance, Owner, Store, WorkAction};
use indexmap::IndexMap;
use std::net::Ipv4Addr;
use tracing::instrument;

const GIB: u64 = 1 << 30;
const MIB: u64 = 1 << 20;

/// What the operator asked for.
#[derive(Debug, Clone, Default)]
pub struct BootRequest {
    pub name: String,
    pub image: String,
    pub flavor: String,
    pub key_name: Option<String>,
    pub user_data: Option<Vec<u8>>,
    pub files: Vec<(String, Vec<u8>)>,
    pub meta: IndexMap<String, String>,
    pub config_drive: bool,
    pub admin_pass: Option<String>,
    /// The host asked for (`--host`); guests of this process run on its own host.
    pub host: Option<String>,
    /// Who boots it (the command line: the operator in the default project); its
    /// keypair is looked up among this user's.
    pub owner: Owner,
}

struct Parts<'a> {
    req: &'a BootRequest,
    uuid: &'a str,
    image: &'a Image,
    flavor: &'a Flavor,
    keys: Vec<Key>,
    seed: String,
    created_at: String,
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// The instance document for the guest (instance.md), given its address.
fn document(
    parts: &Parts<'_>,
    subnet: compute::netalloc::Subnet,
    ip: Ipv4Addr,
    mac: MacAddr,
) -> InstanceDocument {
    let req = parts.req;
    let link = format!("tap{}", &parts.uuid[..11]);
    let network = NetworkData {
        links: vec![Link {
            id: link.clone(),
            vif_id: Some(parts.uuid.to_owned()),
            kind: "vif".into(),
            mtu: Some(1500),
            ethernet_mac_address: Some(mac.to_string()),
            bond_links: None,
            bond_mode: None,
            bond_miimon: None,
            bond_xmit_hash_policy: None,
            vlan_link: None,
            vlan_id: None,
            vlan_mac_address: None,
        }],
        networks: vec![Network {
            id: "network0".into(),
            kind: NetworkType::Ipv4,
            link,
            ip_address: Some(ip.to_string()),
            netmask: Some(subnet.netmask().to_string()),
            routes: Some(vec![Route {
                network: "0.0.0.0".into(),
                netmask: "0.0.0.0".into(),
                gateway: subnet.gateway().to_string(),
            }]),
            network_id: Some("compute-user-net".into()),
            services: Some(vec![Service {
                kind: "dns".into(),
                address: subnet.dns().to_string(),
            }]),
        }],
        services: vec![Service {
            kind: "dns".into(),
            address: subnet.dns().to_string(),
        }],
    };
    let mut bdm = IndexMap::new();
    InstanceDocument {
        uuid: parts.uuid.to_owned(),
        name: req.name.clone(),
        instance_type: None,
        image_id: Some(parts.image.id.clone()),
        kernel_id: parts.image.has_kernel.then(|| parts.image.id.clone()),
        ramdisk_id: parts.image.has_ramdisk.then(|| parts.image.id.clone()),
        meta: req.meta.clone(),
        keys: parts.keys.clone(),
        user_data: req.user_data.as_deref().map(b64),
        files: req
            .files
            .iter()
            .map(|(path, c)| FileSpec {
                path: path.clone(),
                contents: b64(c),
            })
            .collect(),
        admin_pass: req.admin_pass.clone(),
        network: Some(network),
        block_device_mapping: {
            let mut next = 'b';
            if parts.flavor.ephemeral_gb > 0 {
                bdm.insert("ephemeral0".into(), format!("/dev/vd{next}"));
                next = 'c';
            }
            if parts.flavor.swap_mb > 0 {
                bdm.insert("swap".into(), format!("/dev/vd{next}"));
            }
            bdm
        },
        random_seed: Some(parts.seed.clone()),
        created_at: Some(parts.created_at.clone()),
        ..InstanceDocument::default()
    }
}

/// A boot request checked against the store: everything recording it needs.
struct Checked {
    uuid: String,
    flavor: Flavor,
    image: Image,
    keys: Vec<Key>,
    seed: String,
    created_at: String,
}

/// Validates `req` before anything is recorded: flavor, image and keypair exist,
/// quotas hold, and the document it would make is valid.
fn check(store: &dyn Store, req: &BootRequest) -> Result<Checked, DriverError> {
    let flavor = store.flavor(&req.flavor)?;
    let image = store.image(&req.image)?;
    let keys = match &req.key_name {
        Some(k) => {
            let kp = store.keypair(&req.owner.user_id, k)?.keypair;
            vec![Key {
                name: kp.name,
                kind: KeyType::Ssh,
                data: kp.public_key,
            }]
        }
        None => Vec::new(),
    };
    let ud_len = req
        .user_data
        .as_ref()
        .map_or(0, |u| u.len().div_ceil(3) * 4);
    quota::check(&req.files, ud_len).map_err(|e| DriverError::Invalid(e.to_string()))?;
    quota::check_metadata(req.meta.iter()).map_err(|e| DriverError::Invalid(e.to_string()))?;
    let checked = Checked {
        uuid: uuid::Uuid::new_v4().hyphenated().to_string(),
        flavor,
        image,
        keys,
        seed: b64(&random_bytes::<512>()?),
        created_at: now(),
    };
    let subnet = store.subnet();
    let probe = document(
        &checked.parts(req),
        subnet,
        subnet.gateway(),
        MacAddr([0xfa, 0x16, 0x3e, 0, 0, 0]),
    );
    Instance::new(probe).map_err(|e| DriverError::Invalid(e.to_string()))?;
    Ok(checked)
}

impl Checked {
    fn parts<'a>(&'a self, req: &'a BootRequest) -> Parts<'a> {
        Parts {
            req,
            uuid: &self.uuid,
            image: &self.image,
            flavor: &self.flavor,
            keys: self.keys.clone(),
            seed: self.seed.clone(),
            created_at: self.created_at.clone(),
        }
    }
}

/// Records the checked instance (building) on `host` (`None`: placement chooses),
/// with `work` queued for that host in the same transaction when given.
fn record(
    store: &mut dyn Store,
    req: &BootRequest,
    checked: &Checked,
    host: Option<&str>,
    work: Option<&WorkAction>,
) -> Result<(InstanceRecord, Option<u64>), DriverError> {
    let parts = checked.parts(req);
    let subnet = store.subnet();
    let tails: Vec<[u8; 3]> = random_bytes::<48>()?
        .chunks(3)
        .map(|c| [c[0], c[1], c[2]])
        .collect();
    let doc = |ip, mac| {
        Ok::<_, compute_store::DocumentProblem>(serde_json::to_string(&document(
            &parts, subnet, ip, mac,
        ))?)
    };
    let new = NewInstance {
        uuid: &checked.uuid,
        name: &req.name,
        flavor: &checked.flavor,
        image_id: &checked.image.id,
        key_name: req.key_name.as_deref(),
        project_id: &req.owner.project_id,
        user_id: &req.owner.user_id,
        now: &checked.created_at,
        host,
        up_timeout: compute::placement::DEFAULT_UP_TIMEOUT,
        mac_candidates: tails,
        document: &doc,
    };
    Ok(match work {
        None => (store.insert_instance(&new)?, None),
        Some(action) => {
            let (rec, id) = store.insert_instance_with_work(&new, action)?;
            (rec, Some(id))
        }
    })
}

/// A boot through a shared database: validates `req`, records the instance
/// (building) on the host asked for or the one placement chooses, and queues its
/// boot for that host's agent, in one transaction. Returns the record and the work
/// item's id; the agent does the rest ([`Host::build`]).
#[instrument(skip_all, fields(uuid))]
pub fn queue_boot(
    store: &mut dyn Store,
    req: &BootRequest,
) -> Result<(InstanceRecord, u64), DriverError> {
    let checked = check(store, req)?;
    tracing::Span::current().record("uuid", tracing::field::display(&checked.uuid));
    let action = WorkAction::Boot {
        config_drive: req.config_drive,
    };
    let (rec, id) = record(store, req, &checked, req.host.as_deref(), Some(&action))?;
    tracing::info!(name = req.name, host = rec.host, work = id, "boot queued");
    Ok((rec, id.unwrap_or_default()))
}

impl Host {
    /// Boots an instance; on success it is active and running.
    #[instrument(skip_all, fields(uuid))]
    pub fn boot(&mut self, req: &BootRequest) -> Result<InstanceRecord, DriverError> {
        // Validate first: nothing is recorded for a request that cannot work.
        let checked = check(self.store.as_ref(), req)?;
        // Guests start here: another host's name is refused (an unknown one by
        // placement, with its reason).
        let target = req.host.as_deref().unwrap_or(&self.name).to_owned();
        if target != self.name && self.store.host(&target).is_ok() {
            return Err(DriverError::Invalid(format!(
                "boot --host {target}: this command starts guests on {} only",
                self.name
            )));
        }
        tracing::Span::current().record("uuid", tracing::field::display(&checked.uuid));
        tool::QEMU_IMG.locate()?;
        self.check_tools()?;

        let _lock = lock::lock(&self.layout.lock(&checked.uuid))?;
        tracing::info!(
            name = req.name,
            image = checked.image.id,
            flavor = checked.flavor.name,
            "boot started"
        );
        let (rec, _) = record(self.store.as_mut(), req, &checked, Some(&target), None)?;
        self.finish_boot(rec, &checked.flavor, &checked.image, req.config_drive)
    }

    /// Builds an instance that a control plane recorded and queued
    /// ([`queue_boot`]): disks, config drive (when `config_drive`), QEMU. On
    /// success it is active and running; any failure leaves it in error with a
    /// fault and no process or files. A boot taken again after an agent died, of an
    /// instance that got built, changes nothing.
    #[instrument(skip_all, fields(uuid = uuid))]
    pub fn build(&mut self, uuid: &str, config_drive: bool) -> Result<InstanceRecord, DriverError> {
        let _lock = lock::lock(&self.layout.lock(uuid))?;
        let rec = self.store.instance_by_uuid(uuid)?;
        if rec.state.vm != VmState::Building {
            if rec.state.vm == VmState::Active && rec.state.task.is_none() {
                tracing::info!("already built");
                return Ok(rec);
            }
            return Err(DriverError::Invalid(format!(
                "instance {uuid} is {}, not building: there is nothing to boot",
                rec.state.vm
            )));
        }
        tracing::info!(
            name = rec.name,
            image = rec.image_id,
            flavor = rec.flavor.name,
            "boot started"
        );
        let image = match self.store.image(&rec.image_id) {
            Ok(i) => i,
            Err(e) => {
                let err = DriverError::from(e);
                let failed = rec.state.fail(Action::Rebuild);
                self.record_fault(uuid, failed, &err)?;
                tracing::info!(error = %err, vm_state = %failed.vm, "boot failed");
                return Err(err);
            }
        };
        let flavor = rec.flavor.clone();
        let tools = tool::QEMU_IMG.locate().map(drop).map_err(DriverError::from);
        match tools {
            Ok(()) => self.finish_boot(rec, &flavor, &image, config_drive),
            Err(err) => {
                let failed = rec.state.fail(Action::Rebuild);
                self.record_fault(uuid, failed, &err)?;
                tracing::info!(error = %err, vm_state = %failed.vm, "boot failed");
                Err(err)
            }
        }
    }

    /// The part of a boot after the record: spawn, then active, or error with a fault.
    fn finish_boot(
        &mut self,
        rec: InstanceRecord,
        flavor: &Flavor,
        image: &Image,
        config_drive: bool,
    ) -> Result<InstanceRecord, DriverError> {
        let uuid = rec.uuid.clone();
        match self.spawn(&rec, flavor, image, config_drive) {
            Ok(()) => {
                let active = rec.state.spawned();
                self.store
                    .set_state(&uuid, active, FaultChange::Clear, &now())?;
                let rec = self.store.instance_by_uuid(&uuid)?;
                tracing::info!(
                    ip = %rec.fixed_ip,
                    mac = %rec.mac,
                    pid = rec.pid,
                    vm_state = %active.vm,
                    power_state = %active.power,
                    "boot done"
                );
                Ok(rec)
            }
            Err(err) => {
                let _ = self.kill_qemu(&rec);
                let _ = std::fs::remove_dir_all(&self.layout.instance(&uuid).dir);
                let failed = rec.state.fail(Action::Rebuild);
                self.record_fault(&uuid, failed, &err)?;
                tracing::info!(error = %err, vm_state = %failed.vm, "boot failed");
                Err(err)
            }
        }
    }

    fn spawn(
        &mut self,
        rec: &InstanceRecord,
        flavor: &Flavor,
        image: &Image,
        config_drive: bool,
    ) -> Result<(), DriverError> {
        self.check_tools()?;
        let p = self.layout.instance(&rec.uuid);
        std::fs::create_dir_all(&p.dir).map_err(io_err(&p.dir))?;
        self.make_root_disk(rec, flavor, image)?;
        if flavor.ephemeral_gb > 0 {
            img::create_blank(&p.ephemeral(), u64::from(flavor.ephemeral_gb) * GIB)?;
        }
        if flavor.swap_mb > 0 {
            img::create_blank(&p.swap(), u64::from(flavor.swap_mb) * MIB)?;
        }
        if config_drive {
            self.make_config_drive(rec)?;
        }
        self.start_qemu(rec, false)?;
        Ok(())
    }

    /// A qcow2 overlay on the base image, grown to the flavor's root disk.
    pub(crate) fn make_root_disk(
        &self,
        rec: &InstanceRecord,
        flavor: &Flavor,
        image: &Image,
    ) -> Result<(), DriverError> {
        let p = self.layout.instance(&rec.uuid);
        let format = if image.format == "qcow2" {
            DiskFormat::Qcow2
        } else {
            DiskFormat::Raw
        };
        self.local_image(image)?;
        let want = u64::from(flavor.disk_gb) * GIB;
        let size = (want > image.virtual_size).then_some(want);
        let _ = std::fs::remove_file(p.root_disk());
        img::create_overlay(
            &self.layout.image_disk(&image.id),
            format,
            &p.root_disk(),
            size,
        )?;
        Ok(())
    }

    /// Renders the instance's drive tree and builds the drive image.
    pub(crate) fn make_config_drive(&self, rec: &InstanceRecord) -> Result<(), DriverError> {
        let instance = Instance::from_json(rec.document.as_bytes())
            .map_err(|e| DriverError::Invalid(format!("stored document of {}: {e}", rec.uuid)))?;
        let tree = compute::render_drive(&instance, &self.settings);
        self.drive_builder.build(
            &instance,
            &tree,
            &self.layout.instance(&rec.uuid).config_drive(),
        )?;
        Ok(())
    }
}
