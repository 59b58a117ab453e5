//! Images: import a qcow2 or raw disk (format probed, never guessed from the name),
//! with an optional kernel, ramdisk and command line for direct kernel boot;
//! delete (refused while in use); snapshot an instance into a new image.
//!
//! Where the files live depends on the store. A state folder keeps them in
//! `images/<id>/`. A shared database keeps them itself (every host may boot any
//! image): import and snapshot send the bytes there, and a host fetches an image
//! into its own `images/<id>/` the first time it needs it, checking each file's
//! SHA-256 before it is renamed into place.

use super::layout::Layout;
use super::{io_err, now, DriverError, Host};
use crate::qemu::command::DiskFormat;
use crate::qemu::img;
use compute::lifecycle::Action;
use compute_io::atomic;
use compute_store::{Image, ImagePart, Store};
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

/// A writer that hashes and counts what passes through it.
struct Hashing<W> {
    inner: W,
    hasher: Sha256,
    size: u64,
}

impl<W: Write> Write for Hashing<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.size += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// The path of one file of an image in `layout`.
pub fn part_path(layout: &Layout, id: &str, part: ImagePart) -> PathBuf {
    match part {
        ImagePart::Disk => layout.image_disk(id),
        ImagePart::Kernel => layout.image_kernel(id),
        ImagePart::Ramdisk => layout.image_ramdisk(id),
    }
}

/// Makes sure `image`'s files are in `layout`: with a store that keeps image files
/// (a shared database), each missing one is fetched, checked against its recorded
/// SHA-256 (and the disk against the image's checksum) and renamed into place; a
/// file that does not match is never kept. With a state folder they are there since
/// the import (a missing one is reported by whoever opens it).
pub fn fetch(layout: &Layout, store: &dyn Store, image: &Image) -> Result<(), DriverError> {
    if !store.keeps_image_files() {
        return Ok(());
    }
    for part in ImagePart::of(image) {
        let path = part_path(layout, &image.id, part);
        if path.exists() {
            continue;
        }
        let dir = layout.image_dir(&image.id);
        std::fs::create_dir_all(&dir).map_err(io_err(&dir))?;
        let started = std::time::Instant::now();
        let size = atomic::replace_with(&path, 0o644, |out| {
            let mut hashing = Hashing {
                inner: std::io::BufWriter::new(out),
                hasher: Sha256::new(),
                size: 0,
            };
            let file = store.read_image_file(&image.id, part, &mut hashing)?;
            hashing.flush().map_err(io_err(&path))?;
            let got = hex::encode(hashing.hasher.clone().finalize());
            let expected = if part == ImagePart::Disk && file.sha256 != image.checksum {
                image.checksum.clone()
            } else {
                file.sha256.clone()
            };
            if got != expected || hashing.size != file.size {
                return Err(DriverError::ImageChecksum {
                    id: image.id.clone(),
                    part: part.name(),
                    expected,
                    got,
                });
            }
            Ok(hashing.size)
        })?;
        tracing::info!(
            image = image.id,
            part = part.name(),
            bytes = size,
            ms = started.elapsed().as_millis() as u64,
            "image file fetched from the database"
        );
    }
    Ok(())
}

/// Records `image` with the files at `paths` in a store that keeps image files;
/// returns it as recorded (size and checksum of the disk as stored).
fn upload(
    store: &mut dyn Store,
    image: &Image,
    paths: &[(ImagePart, PathBuf)],
) -> Result<Image, DriverError> {
    let mut opened = Vec::new();
    for (part, path) in paths {
        opened.push((*part, std::fs::File::open(path).map_err(io_err(path))?));
    }
    let mut readers: Vec<(ImagePart, std::io::BufReader<std::fs::File>)> = opened
        .into_iter()
        .map(|(p, f)| (p, std::io::BufReader::with_capacity(1 << 20, f)))
        .collect();
    let mut files: Vec<(ImagePart, &mut dyn Read)> = readers
        .iter_mut()
        .map(|(p, r)| (*p, r as &mut dyn Read))
        .collect();
    Ok(store.add_image_with_files(image, &mut files)?)
}

/// Imports an image and records it in `store`: into `layout`'s `images/` with a
/// state folder; into the database itself when it keeps image files (a shared one:
/// then nothing is written here, and every host fetches it on first use).
pub fn import(
    layout: &Layout,
    store: &mut dyn Store,
    req: &ImageImport,
) -> Result<Image, DriverError> {
    let id = uuid::Uuid::new_v4().hyphenated().to_string();
    let owner = ImageOwner {
        project_id: compute_store::DEFAULT_PROJECT_ID.to_owned(),
        visibility: compute_store::Visibility::Public,
    };
    import_as(layout, store, req, &id, &owner)
}

/// Who an imported image belongs to and who may see it.
#[derive(Debug, Clone)]
pub struct ImageOwner {
    pub project_id: String,
    pub visibility: compute_store::Visibility,
}

/// [`import`] with the id the image gets and its owner (an upload through the
/// Image API, whose id was handed out before its bytes came).
pub fn import_as(
    layout: &Layout,
    store: &mut dyn Store,
    req: &ImageImport,
    id: &str,
    owner: &ImageOwner,
) -> Result<Image, DriverError> {
    let id = id.to_owned();
    if req.name.is_empty() || req.name.len() > 255 {
        return Err(DriverError::Invalid(
            "image name must be 1 to 255 bytes".into(),
        ));
    }
    if req.ramdisk.is_some() && req.kernel.is_none() {
        return Err(DriverError::Invalid("--ramdisk needs --kernel".into()));
    }
    let info = img::info(&req.disk)?;
    if info.format == DiskFormat::Qcow2 {
        img::check_qcow2(&req.disk)?;
    }
    if store.keeps_image_files() {
        let mut paths = vec![(ImagePart::Disk, req.disk.clone())];
        if let Some(k) = &req.kernel {
            paths.push((ImagePart::Kernel, k.clone()));
        }
        if let Some(r) = &req.ramdisk {
            paths.push((ImagePart::Ramdisk, r.clone()));
        }
        let image = Image {
            id,
            name: req.name.clone(),
            format: info.format.as_str().to_owned(),
            size: 0,
            virtual_size: info.virtual_size,
            checksum: String::new(),
            has_kernel: req.kernel.is_some(),
            has_ramdisk: req.ramdisk.is_some(),
            cmdline: req.cmdline.clone(),
            created_at: now(),
            owner: owner.project_id.clone(),
            visibility: owner.visibility,
        };
        let image = upload(store, &image, &paths)?;
        tracing::info!(
            image = image.id,
            bytes = image.size,
            location = store.location(),
            "image stored in the database"
        );
        return Ok(image);
    }
    let dir = layout.image_dir(&id);
    std::fs::create_dir_all(&dir).map_err(io_err(&dir))?;
    let result = (|| {
        let (size, checksum) = copy_hashed(&req.disk, &layout.image_disk(&id))?;
        if let Some(k) = &req.kernel {
            copy_hashed(k, &layout.image_kernel(&id))?;
        }
        if let Some(r) = &req.ramdisk {
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
            owner: owner.project_id.clone(),
            visibility: owner.visibility,
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
        import(&self.layout, self.store.as_mut(), req)
    }

    /// Makes sure `image`'s files are here (see [`fetch`]).
    pub(crate) fn local_image(&self, image: &Image) -> Result<(), DriverError> {
        fetch(&self.layout, self.store.as_ref(), image)
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
            host.local_image(&base)?;
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
                    // As Nova's: a snapshot belongs to the instance's project.
                    owner: rec.project_id.clone(),
                    visibility: compute_store::Visibility::Private,
                };
                let image = if host.store.keeps_image_files() {
                    let paths: Vec<(ImagePart, PathBuf)> = ImagePart::of(&image)
                        .into_iter()
                        .map(|p| (p, part_path(&host.layout, &id, p)))
                        .collect();
                    upload(host.store.as_mut(), &image, &paths)?
                } else {
                    host.store.add_image(&image)?;
                    image
                };
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
