//! [`IsoWriter`]: a drive tree to ISO9660 image bytes (ECMA-119, 2048-byte blocks),
//! with Rock Ridge entries on the primary tree and a Joliet supplementary volume of
//! the same tree, laid out the way genisoimage does with Nova's flags.
//!
//! Written here rather than with a crate: `hadris-iso` 2.x stamps descriptors and
//! records with the wall clock, and 3.x is a release candidate needing a newer Rust
//! than the workspace and mapping names differently from genisoimage. A config drive
//! needs only a small, fixed subset of the standard, which fits in a few hundred lines.
//!
//! Pure: no clock, no RNG, no I/O. Identical contents are stored once and shared.

mod encode;
mod names;
mod plan;
mod susp;

pub use encode::BLOCK;
pub use susp::{DIR_MODE, FILE_MODE};

use crate::options::DriveOptions;
use crate::tree::{DirNode, TreeError};
use bytes::Bytes;
use compute::metadata::DriveTree;
use encode::{dir_date, path_record, record_len, ucs2, Descriptor, Record};
use plan::{
    blocks, collect, dir_size, finish_system_use, joliet_numbering, path_table_len,
    place_continuations, push_record, system_use, Dir, Target,
};
use std::collections::HashMap;

/// Largest image this writer makes (Ironic's limit on a drive is 64 MiB; this bound
/// only keeps memory in check).
pub const MAX_IMAGE_BYTES: u64 = 1 << 30;

#[derive(Debug, thiserror::Error)]
pub enum IsoError {
    #[error(transparent)]
    Tree(#[from] TreeError),
    #[error(
        "more than a thousand names in drive directory `{dir}` map to the same ISO9660 identifier"
    )]
    NameCollisions { dir: String },
    #[error("the image would be {bytes} bytes, more than the {MAX_IMAGE_BYTES}-byte limit")]
    TooLarge { bytes: u64 },
}

/// Writes ISO9660 images of drive trees.
#[derive(Debug, Clone)]
pub struct IsoWriter {
    options: DriveOptions,
    publisher: String,
    application: String,
}

impl IsoWriter {
    pub fn new(options: DriveOptions) -> Self {
        IsoWriter {
            options,
            publisher: format!("nova-rs configdrive {}", env!("CARGO_PKG_VERSION")),
            application: "NOVA-RS CONFIGDRIVE".into(),
        }
    }

    /// The publisher identifier (Nova writes `OpenStack Nova <version>`).
    pub fn publisher(mut self, publisher: &str) -> Self {
        self.publisher = publisher.to_owned();
        self
    }

    /// The image of `tree`, as bytes.
    pub fn write(&self, tree: &DriveTree) -> Result<Vec<u8>, IsoError> {
        let root = DirNode::from_tree(tree)?;
        let (mut dirs, files) = collect(&root)?;
        let date = dir_date(self.options.datetime());
        let mut susp = system_use(&dirs, &self.options);

        // Fixed area, then path tables, continuation areas, directories, file data.
        let j_numbers = joliet_numbering(&dirs);
        let p_table_len = path_table_len(dirs.iter().map(|d| d.primary.len()));
        let j_table_len = path_table_len(dirs.iter().map(|d| d.joliet.len()));
        let mut next = 19u32;
        let mut take = |bytes: usize| {
            let at = next;
            next += blocks(bytes);
            at
        };
        let (p_l, p_m) = (take(p_table_len), take(p_table_len));
        let (j_l, j_m) = (take(j_table_len), take(j_table_len));
        let ce_blocks = place_continuations(&mut susp);
        let ce_start = take(ce_blocks as usize * BLOCK);
        for su in susp.iter_mut().flatten() {
            su.cont_at.0 += ce_start;
        }
        for (i, dir) in dirs.iter_mut().enumerate() {
            let idents = [1usize, 1]
                .into_iter()
                .chain(dir.entries.iter().map(|e| e.primary.len()));
            let size = dir_size(
                idents
                    .zip(&susp[i])
                    .map(|(ident, su)| record_len(ident, su.len())),
            );
            dir.p_size = size;
            dir.p_extent = take(size as usize);
        }
        for dir in dirs.iter_mut() {
            let lens = [1usize, 1]
                .into_iter()
                .chain(dir.entries.iter().map(|e| e.joliet.len()));
            let size = dir_size(lens.map(|ident| record_len(ident, 0)));
            dir.j_size = size;
            dir.j_extent = take(size as usize);
        }
        let mut file_extents = Vec::with_capacity(files.len());
        let mut stored: HashMap<&Bytes, u32> = HashMap::new();
        for f in &files {
            let extent = match stored.get(f) {
                Some(e) => *e,
                None if f.is_empty() => 0,
                None => {
                    let e = take(f.len());
                    stored.insert(f, e);
                    e
                }
            };
            file_extents.push(extent);
        }
        let total = next;
        let total_bytes = u64::from(total) * BLOCK as u64;
        if total_bytes > MAX_IMAGE_BYTES {
            return Err(IsoError::TooLarge { bytes: total_bytes });
        }

        let mut img = vec![0u8; total_bytes as usize];
        let put = |img: &mut Vec<u8>, block: u32, bytes: &[u8]| {
            let at = block as usize * BLOCK;
            img[at..at + bytes.len()].copy_from_slice(bytes);
        };

        // Path tables.
        let p_order: Vec<usize> = (0..dirs.len()).collect();
        let j_order = {
            let mut o: Vec<usize> = (0..dirs.len()).collect();
            o.sort_by_key(|&i| j_numbers[i]);
            o
        };
        for (big, at) in [(false, p_l), (true, p_m)] {
            let mut t = Vec::with_capacity(p_table_len);
            for &i in &p_order {
                let d = &dirs[i];
                let ident: &[u8] = if i == 0 { &[0] } else { &d.primary };
                path_record(&mut t, ident, d.p_extent, (d.parent + 1) as u16, big);
            }
            put(&mut img, at, &t);
        }
        for (big, at) in [(false, j_l), (true, j_m)] {
            let mut t = Vec::with_capacity(j_table_len);
            for &i in &j_order {
                let d = &dirs[i];
                let ident: &[u8] = if i == 0 { &[0] } else { &d.joliet };
                path_record(&mut t, ident, d.j_extent, j_numbers[d.parent] as u16, big);
            }
            put(&mut img, at, &t);
        }

        // Directories.
        for (i, dir) in dirs.iter().enumerate() {
            let parent = &dirs[dir.parent];
            let mut p = Vec::with_capacity(dir.p_size as usize);
            let mut j = Vec::with_capacity(dir.j_size as usize);
            let su_bytes: Vec<Vec<u8>> = susp[i].iter().map(finish_system_use).collect();
            let mut recs: Vec<(Record, Record)> = Vec::with_capacity(dir.entries.len() + 2);
            let own = |ident: &'static [u8], d: &Dir| {
                (
                    Record {
                        extent: d.p_extent,
                        size: d.p_size,
                        is_dir: true,
                        date,
                        ident,
                        system_use: &[],
                    },
                    Record {
                        extent: d.j_extent,
                        size: d.j_size,
                        is_dir: true,
                        date,
                        ident,
                        system_use: &[],
                    },
                )
            };
            recs.push(own(b"\0", dir));
            recs.push(own(b"\x01", parent));
            for e in &dir.entries {
                let (pe, ps, je, js, is_dir) = match e.target {
                    Target::Dir(c) => (
                        dirs[c].p_extent,
                        dirs[c].p_size,
                        dirs[c].j_extent,
                        dirs[c].j_size,
                        true,
                    ),
                    Target::File(f) => {
                        let len = files[f].len() as u32;
                        (file_extents[f], len, file_extents[f], len, false)
                    }
                };
                recs.push((
                    Record {
                        extent: pe,
                        size: ps,
                        is_dir,
                        date,
                        ident: &e.primary,
                        system_use: &[],
                    },
                    Record {
                        extent: je,
                        size: js,
                        is_dir,
                        date,
                        ident: &e.joliet,
                        system_use: &[],
                    },
                ));
            }
            for (k, (rp, _)) in recs.iter_mut().enumerate() {
                rp.system_use = &su_bytes[k];
            }
            for (rp, _) in &recs {
                push_record(&mut p, rp);
            }
            let mut jrecs: Vec<&Record> = vec![&recs[0].1, &recs[1].1];
            jrecs.extend(dir.joliet_order.iter().map(|&k| &recs[k + 2].1));
            for rj in jrecs {
                push_record(&mut j, rj);
            }
            put(&mut img, dir.p_extent, &p);
            put(&mut img, dir.j_extent, &j);
            for su in &susp[i] {
                if !su.cont.is_empty() {
                    let at = su.cont_at.0 as usize * BLOCK + su.cont_at.1 as usize;
                    img[at..at + su.cont.len()].copy_from_slice(&su.cont);
                }
            }
        }

        // File data.
        for (f, bytes) in files.iter().enumerate() {
            if !bytes.is_empty() {
                put(&mut img, file_extents[f], bytes);
            }
        }

        // Volume descriptors.
        let root = &dirs[0];
        let mut p_root = Vec::with_capacity(34);
        Record {
            extent: root.p_extent,
            size: root.p_size,
            is_dir: true,
            date,
            ident: b"\0",
            system_use: &[],
        }
        .write(&mut p_root);
        let mut j_root = Vec::with_capacity(34);
        Record {
            extent: root.j_extent,
            size: root.j_size,
            is_dir: true,
            date,
            ident: b"\0",
            system_use: &[],
        }
        .write(&mut j_root);
        let t = self.options.datetime();
        let pvd = Descriptor {
            kind: 1,
            system_id: b"LINUX",
            volume_id: self.options.label().as_bytes(),
            publisher: self.publisher.as_bytes(),
            application: self.application.as_bytes(),
            volume_blocks: total,
            path_table_len: p_table_len as u32,
            l_table: p_l,
            m_table: p_m,
            root: &p_root,
            date: t,
            pad: b" ",
        };
        let (sys, vol, publ, app) = (
            ucs2("LINUX"),
            ucs2(self.options.label()),
            ucs2(&self.publisher),
            ucs2(&self.application),
        );
        let svd = Descriptor {
            kind: 2,
            system_id: &sys,
            volume_id: &vol,
            publisher: &publ,
            application: &app,
            volume_blocks: total,
            path_table_len: j_table_len as u32,
            l_table: j_l,
            m_table: j_m,
            root: &j_root,
            date: t,
            pad: &[0, b' '],
        };
        put(&mut img, 16, &pvd.write());
        put(&mut img, 17, &svd.write());
        put(&mut img, 18, &encode::terminator());
        Ok(img)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use uuid::Uuid;

    fn writer() -> IsoWriter {
        IsoWriter::new(DriveOptions::new("config-2", 1_768_465_800, Uuid::nil()).unwrap())
    }

    #[test]
    fn same_tree_same_bytes() {
        let mut tree = DriveTree::new();
        tree.insert(
            "openstack/latest/meta_data.json".into(),
            Bytes::from_static(b"{}"),
        );
        tree.insert(
            "ec2/latest/meta-data.json".into(),
            Bytes::from_static(b"{}"),
        );
        let a = writer().write(&tree).unwrap();
        assert_eq!(a, writer().write(&tree).unwrap());
        assert_eq!(a.len() % BLOCK, 0);
        assert_eq!(&a[16 * BLOCK + 1..16 * BLOCK + 6], b"CD001");
        assert_eq!(&a[16 * BLOCK + 40..16 * BLOCK + 48], b"config-2");
    }

    #[test]
    fn long_names_continue_in_a_ce_area() {
        let mut tree = DriveTree::new();
        let name = format!("{}é", "x".repeat(63));
        tree.insert(format!("d/{name}"), Bytes::from_static(b"data"));
        let img = writer().write(&tree).unwrap();
        let nm = [&b"NM"[..], &[5 + name.len() as u8, 1, 0], name.as_bytes()].concat();
        assert!(img.windows(nm.len()).any(|w| w == nm.as_slice()));
    }

    #[test]
    fn empty_tree_is_a_valid_volume() {
        let img = writer().write(&DriveTree::new()).unwrap();
        assert_eq!(img[18 * BLOCK], 255);
    }
}
