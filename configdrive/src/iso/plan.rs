//! The ISO's plan before any byte is placed: directories in path-table order with
//! their entries named for each tree, the Rock Ridge entries of every record, and
//! the sizes that the layout in `mod.rs` turns into block numbers.

use super::encode::{record_len, Record, BLOCK};
use super::names::{self, compare, compare_joliet};
use super::susp::{self, CE_LEN, DIR_MODE, FILE_MODE};
use super::IsoError;
use crate::options::DriveOptions;
use crate::tree::DirNode;
use bytes::Bytes;
use std::collections::VecDeque;

pub struct Entry {
    pub name: String,
    pub primary: Vec<u8>,
    pub joliet: Vec<u8>,
    pub target: Target,
}

#[derive(Clone, Copy)]
pub enum Target {
    Dir(usize),
    File(usize),
}

pub struct Dir {
    pub parent: usize,
    pub primary: Vec<u8>,
    pub joliet: Vec<u8>,
    pub nlink: u32,
    /// Entries in primary (ECMA-119) order.
    pub entries: Vec<Entry>,
    /// Indices into `entries`, in Joliet order.
    pub joliet_order: Vec<usize>,
    pub p_extent: u32,
    pub p_size: u32,
    pub j_extent: u32,
    pub j_size: u32,
}

/// The system-use bytes of one primary record: what stays in the record and what
/// goes to a continuation area (pointed at by a `CE` entry added when placed).
pub struct SystemUse {
    pub inline: Vec<u8>,
    pub cont: Vec<u8>,
    /// (block, offset) of the continuation bytes, once placed.
    pub cont_at: (u32, u32),
}

impl SystemUse {
    /// Bytes inside the record, `CE` included.
    pub fn len(&self) -> usize {
        self.inline.len() + if self.cont.is_empty() { 0 } else { CE_LEN }
    }
}

pub fn blocks(bytes: usize) -> u32 {
    bytes.div_ceil(BLOCK) as u32
}

/// Directories in breadth-first order with children sorted by primary identifier,
/// which is the order the primary path table wants; and every file's bytes.
pub fn collect(root: &DirNode) -> Result<(Vec<Dir>, Vec<Bytes>), IsoError> {
    let mut dirs = vec![new_dir(0, Vec::new(), Vec::new(), root)];
    let mut files = Vec::new();
    let mut queue = VecDeque::from([(0usize, root, String::new())]);
    while let Some((idx, node, path)) = queue.pop_front() {
        let mut items: Vec<(&str, bool)> = node.dirs.keys().map(|n| (n.as_str(), true)).collect();
        items.extend(node.files.keys().map(|n| (n.as_str(), false)));
        let collision = || IsoError::NameCollisions {
            dir: if path.is_empty() {
                "/".into()
            } else {
                path.clone()
            },
        };
        let primary = names::unique_all(&items, names::primary).ok_or_else(collision)?;
        let joliet =
            names::unique_all(&items, |n, _, u| names::joliet(n, u)).ok_or_else(collision)?;
        let mut entries: Vec<Entry> = Vec::with_capacity(items.len());
        for (((name, is_dir), p), j) in items.iter().zip(primary).zip(joliet) {
            let target = if *is_dir {
                Target::Dir(usize::MAX)
            } else {
                Target::File(usize::MAX)
            };
            entries.push(Entry {
                name: (*name).to_owned(),
                primary: p,
                joliet: j,
                target,
            });
        }
        entries.sort_by(|a, b| compare(&a.primary, &b.primary));
        for e in &mut entries {
            e.target = match e.target {
                Target::Dir(_) => {
                    let child = &node.dirs[&e.name];
                    let child_idx = dirs.len();
                    dirs.push(new_dir(idx, e.primary.clone(), e.joliet.clone(), child));
                    let child_path = if path.is_empty() {
                        e.name.clone()
                    } else {
                        format!("{path}/{}", e.name)
                    };
                    queue.push_back((child_idx, child, child_path));
                    Target::Dir(child_idx)
                }
                Target::File(_) => {
                    files.push(node.files[&e.name].clone());
                    Target::File(files.len() - 1)
                }
            };
        }
        let mut order: Vec<usize> = (0..entries.len()).collect();
        order.sort_by(|&a, &b| compare_joliet(&entries[a].joliet, &entries[b].joliet));
        dirs[idx].entries = entries;
        dirs[idx].joliet_order = order;
    }
    Ok((dirs, files))
}

fn new_dir(parent: usize, primary: Vec<u8>, joliet: Vec<u8>, node: &DirNode) -> Dir {
    Dir {
        parent,
        primary,
        joliet,
        nlink: 2 + node.dirs.len() as u32,
        entries: Vec::new(),
        joliet_order: Vec::new(),
        p_extent: 0,
        p_size: 0,
        j_extent: 0,
        j_size: 0,
    }
}

/// Joliet path-table numbers (1-based): breadth first, children in Joliet order.
pub fn joliet_numbering(dirs: &[Dir]) -> Vec<usize> {
    let mut numbers = vec![0; dirs.len()];
    let mut queue = VecDeque::from([0usize]);
    let mut n = 0;
    while let Some(i) = queue.pop_front() {
        n += 1;
        numbers[i] = n;
        for &k in &dirs[i].joliet_order {
            if let Target::Dir(c) = dirs[i].entries[k].target {
                queue.push_back(c);
            }
        }
    }
    numbers
}

pub fn path_table_len(idents: impl Iterator<Item = usize>) -> usize {
    idents.map(|l| 8 + l.max(1) + l.max(1) % 2).sum()
}

/// Rock Ridge entries of every record of every directory: `.`, `..`, then entries.
pub fn system_use(dirs: &[Dir], options: &DriveOptions) -> Vec<Vec<SystemUse>> {
    let tf = susp::tf(options.datetime());
    let plain = |parts: &[&[u8]]| SystemUse {
        inline: parts.concat(),
        cont: Vec::new(),
        cont_at: (0, 0),
    };
    dirs.iter()
        .enumerate()
        .map(|(i, dir)| {
            let own_px = susp::px(DIR_MODE, dir.nlink);
            let parent_px = susp::px(DIR_MODE, dirs[dir.parent].nlink);
            let mut out = Vec::with_capacity(dir.entries.len() + 2);
            if i == 0 {
                let mut dot = plain(&[&susp::sp(), &susp::rr(false), &own_px, &tf]);
                dot.cont = susp::er();
                out.push(dot);
            } else {
                out.push(plain(&[&susp::rr(false), &own_px, &tf]));
            }
            out.push(plain(&[&susp::rr(false), &parent_px, &tf]));
            for e in &dir.entries {
                let px = match e.target {
                    Target::Dir(c) => susp::px(DIR_MODE, dirs[c].nlink),
                    Target::File(_) => susp::px(FILE_MODE, 1),
                };
                let nm = susp::nm(&e.name);
                let mut su = plain(&[&susp::rr(true), &px, &tf]);
                if record_len(e.primary.len(), su.inline.len() + nm.len()) <= 255 {
                    su.inline.extend_from_slice(&nm);
                } else {
                    su.cont = nm;
                }
                out.push(su);
            }
            out
        })
        .collect()
}

/// Gives every continuation a place (block relative to the area, offset), never
/// across a block boundary; returns the blocks the area needs.
pub fn place_continuations(susp: &mut [Vec<SystemUse>]) -> u32 {
    let (mut block, mut offset) = (0u32, 0usize);
    let mut used = false;
    for su in susp.iter_mut().flatten().filter(|s| !s.cont.is_empty()) {
        if offset + su.cont.len() > BLOCK {
            block += 1;
            offset = 0;
        }
        su.cont_at = (block, offset as u32);
        offset += su.cont.len();
        used = true;
    }
    if used {
        block + 1
    } else {
        0
    }
}

/// The record's system-use bytes with the `CE` entry, once continuations are placed.
pub fn finish_system_use(su: &SystemUse) -> Vec<u8> {
    let mut out = su.inline.clone();
    if !su.cont.is_empty() {
        out.extend_from_slice(&susp::ce(su.cont_at.0, su.cont_at.1, su.cont.len() as u32));
    }
    out
}

/// A directory's size: records never straddle a block boundary.
pub fn dir_size(record_lens: impl Iterator<Item = usize>) -> u32 {
    let mut used = 0usize;
    for len in record_lens {
        let in_block = used % BLOCK;
        if in_block + len > BLOCK {
            used += BLOCK - in_block;
        }
        used += len;
    }
    (blocks(used) as usize * BLOCK) as u32
}

/// Appends a record, first padding to the next block when it would straddle one.
pub fn push_record(out: &mut Vec<u8>, record: &Record) {
    let len = record_len(record.ident.len(), record.system_use.len());
    let in_block = out.len() % BLOCK;
    if in_block + len > BLOCK {
        out.resize(out.len() + BLOCK - in_block, 0);
    }
    record.write(out);
}
