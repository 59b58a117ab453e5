//! Images: import a qcow2 or raw disk (format probed, never guessed from the name),
//! with an optional kernel, ramdisk and command line for direct kernel boot;
//! delete (refused while in use); snapshot an instance into a new image.

use super::layout::Layout;
use super::{io_err, now, DriverError, Host};
use crate::qemu::img;
use compute::lifecycle::Action;
use compute_io::atomic;
use compute_store::Image;
use compute_store::Store;
use sha2::{Digest, Sha256};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use tracing::instrument;

/// What `image-import` takes.
#[derive(Debug, Clone)]
pub struct ImageImport {
    pub name: String,
    pub disk: PathBuf,
    pub kernel: Option<PathBuf>,
    pub ramdisk: Option<PathBuf>,
    pub cmdline: Option<String>,
}

/// Copies `src` to `dst` (whole or not at all), returning size and SHA-256.
fn copy_hashed(src: &Path, dst: &Path) -> Result<(u64, String), DriverError> {
    let mut input = std::fs::File::open(src).map_err(io_err(src))?;
    atomic::replace_with(dst, 0o644, |out| {
        let mut hasher = Sha256::new();
        let mut buf = vec![0u8; 1 << 20];
        let mut size = 0u64;
        loop {
            let n = input.read(&mut buf).map_err(io_err(src))?;
            if n == 0 {
                break;
            }
            hasher.update(&buf[..n]);
            out.write_all(&buf[..n]).map_err(io_err(dst))?;
            size += n as u64;
        }
        Ok((size, hex::encode(hasher.finalize())))
    })
}

/// Imports an image into `layout`'s `images/` and records it in `store` (what
/// [`Host::import_image`] does, for a command that has no host open: against a
/// shared database, the files are this machine's).
pub fn import(layout: &Layout, store: &dyn Store, req: &ImageImport) -> Result<Image, DriverError> {
    if req.name.is_empty() || req.name.len() > 255 {
        return Err(DriverError::Invalid(
            "image name must be 1 to 255 bytes".into(),
        ));
    }
    let info = img::info(&req.disk)?;
    let id = uuid::Uuid::new_v4().hyphenated().to_string();
    let dir = layout.image_dir(&id);
    std::fs::create_dir_all(&dir).map_err(io_err(&dir))?;
    let result = (|| {
        let (size, checksum) = copy_hashed(&req.disk, &layout.image_disk(&id))?;
        if let Some(k) = &req.kernel {
            copy_hashed(k, &layout.image_kernel(&id))?;
        }
        if let Some(r) = &req.ramdisk {
            if req.kernel.is_none() {
                return Err(DriverError::Invalid("--ramdisk needs --kernel".into()));
            }
            copy_hashed(r, &layout.image_ramdisk(&id))?;
        }
        let image = Image {
            id: id.clone(),
            name: req.name.clone(),
            format: info.format.as_str().to_owned(),
            size,
            virtual_size: info.virtual_size,
            checksum,
            has_kernel: req.kernel.is_some(),
            has_ramdisk: req.ramdisk.is_some(),
            cmdline: req.cmdline.clone(),
            created_at: now(),
        };
        store.add_image(&image)?;
        Ok(image)
    })();
    if result.is_err() {
        let _ = std::fs::remove_dir_all(&dir);
    }
    result
}

/// Forgets an image (refused while in use) and removes its files from `layout`
/// (those of this machine; none is fine).
pub fn delete(layout: &Layout, store: &mut dyn Store, key: &str) -> Result<Image, DriverError> {
    let image = store.image(key)?;
    store.delete_image(&image.id)?;
    let dir = layout.image_dir(&image.id);
    match std::fs::remove_dir_all(&dir) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(io_err(&dir)(e)),
        _ => {}
    }
    Ok(image)
}

impl Host {
    pub fn import_image(&mut self, req: &ImageImport) -> Result<Image, DriverError> {
        import(&self.layout, self.store.as_ref(), req)
    }

    pub fn delete_image(&mut self, key: &str) -> Result<Image, DriverError> {
        delete(&self.layout, self.store.as_mut(), key)
    }

    /// `image-create`: flattens the instance's root disk into a new image (pausing
    /// a running guest meanwhile), keeping its kernel, ramdisk and command line.
    #[instrument(skip_all, fields(uuid))]
    pub fn snapshot(&mut self, key: &str, name: &str) -> Result<Image, DriverError> {
        let uuid = self.store.find_instance(key)?.uuid;
        tracing::Span::current().record("uuid", tracing::field::display(&uuid));
        let id = uuid::Uuid::new_v4().hyphenated().to_string();
        let mut made = None;
        let outcome = self.act(&uuid, Action::Snapshot, |host, rec| {
            let base = host.store.image(&rec.image_id)?;
            let dir = host.layout.image_dir(&id);
            std::fs::create_dir_all(&dir).map_err(io_err(&dir))?;
            let running = rec.state.vm == compute::lifecycle::VmState::Active;
            let mut qmp = if running {
                Some(host.qmp(&rec.uuid)?)
            } else {
                None
            };
            if let Some(q) = qmp.as_mut() {
                q.execute("stop", None)?;
            }
            let converted = img::convert(
                &host.layout.instance(&rec.uuid).root_disk(),
                &host.layout.image_disk(&id),
            );
            if let Some(q) = qmp.as_mut() {
                q.execute("cont", None)?;
            }
            let res = converted.map_err(DriverError::from).and_then(|()| {
                if base.has_kernel {
                    copy_hashed(
                        &host.layout.image_kernel(&base.id),
                        &host.layout.image_kernel(&id),
                    )?;
                }
                if base.has_ramdisk {
                    copy_hashed(
                        &host.layout.image_ramdisk(&base.id),
                        &host.layout.image_ramdisk(&id),
                    )?;
                }
                let disk = host.layout.image_disk(&id);
                let info = img::info(&disk)?;
                let (size, checksum) = {
                    let mut h = Sha256::new();
                    let bytes = std::fs::read(&disk).map_err(io_err(&disk))?;
                    h.update(&bytes);
                    (bytes.len() as u64, hex::encode(h.finalize()))
                };
                let image = Image {
                    id: id.clone(),
                    name: name.to_owned(),
                    format: info.format.as_str().to_owned(),
                    size,
                    virtual_size: info.virtual_size,
                    checksum,
                    has_kernel: base.has_kernel,
                    has_ramdisk: base.has_ramdisk,
                    cmdline: base.cmdline.clone(),
                    created_at: now(),
                };
                host.store.add_image(&image)?;
                made = Some(image);
                Ok(())
            });
            if res.is_err() {
                let _ = std::fs::remove_dir_all(&dir);
            }
            res
        });
        outcome?;
        made.ok_or_else(|| DriverError::Invalid("snapshot produced no image".into()))
    }
}
