//! Where things live in the state folder. One place names every path, so that
//! cleanup removes exactly what boot made.

use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
#[error("cannot create {dir}")]
pub struct LayoutError {
    pub dir: PathBuf,
    #[source]
    pub source: std::io::Error,
}

#[derive(Debug, Clone)]
pub struct Layout {
    root: PathBuf,
}

impl Layout {
    pub fn new(root: &Path) -> Layout {
        Layout {
            root: root.to_owned(),
        }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Makes the folders every command expects (nothing when they exist).
    pub fn create(&self) -> Result<(), LayoutError> {
        for dir in [
            self.root.clone(),
            self.images(),
            self.instances(),
            self.locks(),
        ] {
            std::fs::create_dir_all(&dir).map_err(|source| LayoutError { dir, source })?;
        }
        Ok(())
    }

    pub fn images(&self) -> PathBuf {
        self.root.join("images")
    }

    pub fn image_dir(&self, id: &str) -> PathBuf {
        self.images().join(id)
    }

    pub fn image_disk(&self, id: &str) -> PathBuf {
        self.image_dir(id).join("disk")
    }

    pub fn image_kernel(&self, id: &str) -> PathBuf {
        self.image_dir(id).join("kernel")
    }

    pub fn image_ramdisk(&self, id: &str) -> PathBuf {
        self.image_dir(id).join("ramdisk")
    }

    pub fn instances(&self) -> PathBuf {
        self.root.join("instances")
    }

    pub fn locks(&self) -> PathBuf {
        self.root.join("locks")
    }

    pub fn lock(&self, uuid: &str) -> PathBuf {
        self.locks().join(format!("{uuid}.lock"))
    }

    /// The managed metadata server's folder (pid, log, listeners file, sockets).
    pub fn metadata_dir(&self) -> PathBuf {
        self.root.join("metadata")
    }

    pub fn metadata_listeners(&self) -> PathBuf {
        self.metadata_dir().join("listeners")
    }

    pub fn metadata_lock(&self) -> PathBuf {
        self.metadata_dir().join("listeners.lock")
    }

    pub fn metadata_pidfile(&self) -> PathBuf {
        self.metadata_dir().join("server.pid")
    }

    pub fn metadata_log(&self) -> PathBuf {
        self.metadata_dir().join("server.log")
    }

    pub fn metadata_passwords(&self) -> PathBuf {
        self.metadata_dir().join("passwords")
    }

    /// The server's unix socket bound to one instance (its relay connects here).
    pub fn metadata_socket(&self, uuid: &str) -> PathBuf {
        self.metadata_dir().join(format!("{uuid}.sock"))
    }

    pub fn accel_cache(&self) -> PathBuf {
        self.root.join("accel")
    }

    pub fn instance(&self, uuid: &str) -> InstancePaths {
        InstancePaths {
            dir: self.instances().join(uuid),
        }
    }
}

/// The files of one instance, all inside `instances/<uuid>/`.
#[derive(Debug, Clone)]
pub struct InstancePaths {
    pub dir: PathBuf,
}

impl InstancePaths {
    pub fn root_disk(&self) -> PathBuf {
        self.dir.join("disk")
    }
    pub fn ephemeral(&self) -> PathBuf {
        self.dir.join("disk.eph0")
    }
    pub fn swap(&self) -> PathBuf {
        self.dir.join("disk.swap")
    }
    pub fn config_drive(&self) -> PathBuf {
        self.dir.join("disk.config")
    }
    pub fn console_log(&self) -> PathBuf {
        self.dir.join("console.log")
    }
    pub fn qmp(&self) -> PathBuf {
        self.dir.join("qmp.sock")
    }
    pub fn pidfile(&self) -> PathBuf {
        self.dir.join("qemu.pid")
    }
    pub fn relay_pidfile(&self) -> PathBuf {
        self.dir.join("relay.pid")
    }
    pub fn relay_ssh_port(&self) -> PathBuf {
        self.dir.join("relay.ssh-port")
    }
    pub fn relay_log(&self) -> PathBuf {
        self.dir.join("relay.log")
    }
    pub fn saved_state(&self) -> PathBuf {
        self.dir.join("suspended.state")
    }
}
