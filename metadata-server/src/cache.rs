//! Rendered trees, cached per instance and bounded by memory, with the entity tag of
//! each leaf asked so far.
//!
//! Rendering every instance up front costs tens of KiB each; with 100,000 instances
//! that is gigabytes for trees most guests read once at boot. So a tree is rendered
//! (from the stored document, parsed again) on an instance's first request, kept in a
//! sharded LRU keyed by uuid, and re-rendered when the entry's generation (its
//! document) changed. Each tree is charged what it holds once its first request is
//! answered (the parsed instance and the version directories built); versions read
//! later are not charged again, so the bound is approximate. A leaf's tag is computed
//! on its first request and kept with its tree, so answers do not hash their bytes.

use crate::etag::Etag;
use crate::store::InstanceEntry;
use compute::metadata::Entry;
use compute::{InstanceError, MetadataTree, Settings};
use lru::LruCache;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use uuid::Uuid;

const SHARDS: usize = 16;

/// One instance's rendered tree and the tags of its leaves asked so far.
pub struct CachedTree {
    tree: MetadataTree,
    /// By the address of the entry in `tree`: the tree is immutable and owns every
    /// entry it hands out, so an address stands for one entry while the tree lives.
    /// Bounded by the number of entries the tree has.
    etags: Mutex<HashMap<usize, Etag>>,
}

impl CachedTree {
    fn new(tree: MetadataTree) -> Self {
        CachedTree {
            tree,
            etags: Mutex::default(),
        }
    }

    /// The tag of `entry`, which must come from this tree's lookup: a file's, or
    /// a directory's listing; `None` for what has no bytes of its own.
    pub fn etag(&self, entry: &Entry) -> Option<Etag> {
        let key = entry as *const Entry as usize;
        let mut memo = self.etags.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(t) = memo.get(&key) {
            return Some(*t);
        }
        let tag = match entry {
            Entry::File(f) => Etag::of_body(&f.body),
            Entry::Dir(d) => Etag::of_bytes(d.listing.as_ref()?),
            Entry::Password | Entry::Live(_) => return None,
        };
        memo.insert(key, tag);
        Some(tag)
    }
}

impl std::ops::Deref for CachedTree {
    type Target = MetadataTree;
    fn deref(&self) -> &MetadataTree {
        &self.tree
    }
}

struct ShardInner {
    trees: LruCache<Uuid, (u64, Arc<CachedTree>, usize)>,
    /// What the trees held are charged, in all.
    bytes: usize,
}

type Shard = Mutex<ShardInner>;

/// The last tree one connection used and the tag of the last entry it answered
/// with (see [`RenderCache::tree_memo`]).
#[derive(Default)]
pub struct TreeMemo {
    tree: Option<(Uuid, u64, Arc<CachedTree>)>,
    tag: Option<(usize, Etag)>,
}

/// A connection's tree, borrowed from its memo.
pub struct MemoTree<'m> {
    pub tree: &'m CachedTree,
    tag: &'m mut Option<(usize, Etag)>,
}

impl MemoTree<'_> {
    /// [`CachedTree::etag`], asking the connection's last answer first: a guest that
    /// asks for the same file again skips the tree's shared tag table.
    pub fn etag(&mut self, entry: &Entry) -> Option<Etag> {
        let key = entry as *const Entry as usize;
        if let Some((k, t)) = *self.tag {
            if k == key {
                return Some(t);
            }
        }
        let t = self.tree.etag(entry)?;
        *self.tag = Some((key, t));
        Some(t)
    }
}

/// What a parsed instance costs beside its tree, per byte of its stored document
/// (strings, maps and derived fields).
const INSTANCE_BYTES_PER_DOCUMENT_BYTE: usize = 6;

/// What the process's resident memory grows by per byte counted: allocator
/// overhead, the parts every version shares, the tag memo. Measured with the scale
/// bench (10,000 trees of `meta_data.json` readers: 14 KiB each resident, 7 KiB
/// counted), so that the budget bounds resident memory, not a count.
const RESIDENT_PER_COUNTED_BYTE: usize = 2;

pub struct RenderCache {
    settings: Arc<Settings>,
    shards: Vec<Shard>,
    /// Bytes each shard may hold; the least recently used trees go first.
    shard_budget: usize,
}

impl RenderCache {
    /// A cache holding trees of about `max_bytes` in all (and at least one per shard).
    pub fn new(settings: Arc<Settings>, max_bytes: usize) -> Self {
        RenderCache {
            settings,
            shards: (0..SHARDS)
                .map(|_| {
                    Mutex::new(ShardInner {
                        trees: LruCache::unbounded(),
                        bytes: 0,
                    })
                })
                .collect(),
            shard_budget: max_bytes / SHARDS,
        }
    }

    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    fn shard(&self, uuid: &Uuid) -> &Shard {
        let b = uuid.as_bytes();
        &self.shards[usize::from(b[15] ^ b[7]) % SHARDS]
    }

    /// The instance's tree, rendered now if absent or stale; `first` is the path
    /// the request asks for, built before the tree is charged.
    pub fn tree<S: AsRef<str>>(
        &self,
        entry: &InstanceEntry,
        first: &[S],
    ) -> Result<Arc<CachedTree>, InstanceError> {
        let uuid = entry.uuid();
        let shard = self.shard(&uuid);
        {
            let mut g = shard.lock().unwrap_or_else(|p| p.into_inner());
            if let Some((generation, tree, _)) = g.trees.get(&uuid) {
                if *generation == entry.generation {
                    return Ok(tree.clone());
                }
            }
        }
        // Render outside the lock: other instances of the shard keep being served.
        let instance = entry.instance()?;
        let tree = Arc::new(CachedTree::new(MetadataTree::new(
            Arc::new(instance),
            self.settings.clone(),
        )));
        let _ = tree.lookup(first);
        let cost = (tree.built_bytes()
            + entry.document.json().len() * INSTANCE_BYTES_PER_DOCUMENT_BYTE)
            * RESIDENT_PER_COUNTED_BYTE;
        let mut g = shard.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((_, _, old)) = g.trees.put(uuid, (entry.generation, tree.clone(), cost)) {
            g.bytes -= old;
        }
        g.bytes += cost;
        while g.bytes > self.shard_budget && g.trees.len() > 1 {
            match g.trees.pop_lru() {
                Some((_, (_, _, c))) => g.bytes -= c,
                None => break,
            }
        }
        Ok(tree)
    }

    /// Like [`RenderCache::tree`], but first asks `memo`, one connection's last tree:
    /// a guest's connection keeps asking about the same instance, and this skips the
    /// shared shard lock and the tree's reference count then.
    pub fn tree_memo<'m, S: AsRef<str>>(
        &self,
        entry: &InstanceEntry,
        first: &[S],
        memo: &'m mut TreeMemo,
    ) -> Result<MemoTree<'m>, InstanceError> {
        let uuid = entry.uuid();
        let kept = memo
            .tree
            .take()
            .filter(|(u, generation, _)| *u == uuid && *generation == entry.generation);
        let tree = match kept {
            Some((_, _, tree)) => tree,
            None => {
                // Another tree: the remembered tag was an entry of the old one.
                memo.tag = None;
                self.tree(entry, first)?
            }
        };
        let (_, _, tree) = memo.tree.insert((uuid, entry.generation, tree));
        Ok(MemoTree {
            tree,
            tag: &mut memo.tag,
        })
    }

    /// Trees currently cached.
    pub fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.lock().unwrap_or_else(|p| p.into_inner()).trees.len())
            .sum()
    }

    /// What the cached trees are charged, in all.
    pub fn bytes(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.lock().unwrap_or_else(|p| p.into_inner()).bytes)
            .sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
