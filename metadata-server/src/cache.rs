//! Rendered trees, cached per instance and bounded, with the entity tag of each
//! leaf asked so far.
//!
//! Rendering every instance up front costs tens of KiB each; with 100,000 instances
//! that is gigabytes for trees most guests read once at boot. So a tree is rendered
//! on an instance's first request, kept in a sharded LRU keyed by uuid, and re-rendered
//! when the entry's generation (its document) changed. A leaf's tag is computed on
//! its first request and kept with its tree, so answers do not hash their bytes.

use crate::etag::Etag;
use crate::store::InstanceEntry;
use compute::metadata::Entry;
use compute::{render_service, MetadataTree, Settings};
use lru::LruCache;
use std::collections::HashMap;
use std::num::NonZeroUsize;
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

type Shard = Mutex<LruCache<Uuid, (u64, Arc<CachedTree>)>>;

/// The last tree one connection used (see [`RenderCache::tree_memo`]).
#[derive(Default)]
pub struct TreeMemo(Option<(Uuid, u64, Arc<CachedTree>)>);

pub struct RenderCache {
    settings: Arc<Settings>,
    shards: Vec<Shard>,
}

impl RenderCache {
    /// A cache holding at most about `capacity` trees (at least one per shard).
    pub fn new(settings: Arc<Settings>, capacity: usize) -> Self {
        let per = NonZeroUsize::new(capacity.div_ceil(SHARDS).max(1)).unwrap_or(NonZeroUsize::MIN);
        RenderCache {
            settings,
            shards: (0..SHARDS)
                .map(|_| Mutex::new(LruCache::new(per)))
                .collect(),
        }
    }

    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    fn shard(&self, uuid: &Uuid) -> &Shard {
        let b = uuid.as_bytes();
        &self.shards[usize::from(b[15] ^ b[7]) % SHARDS]
    }

    /// The instance's tree, rendered now if absent or stale.
    pub fn tree(&self, entry: &InstanceEntry) -> Arc<CachedTree> {
        let uuid = entry.instance.uuid();
        let shard = self.shard(&uuid);
        {
            let mut g = shard.lock().unwrap_or_else(|p| p.into_inner());
            if let Some((generation, tree)) = g.get(&uuid) {
                if *generation == entry.generation {
                    return tree.clone();
                }
            }
        }
        // Render outside the lock: other instances of the shard keep being served.
        let tree = Arc::new(CachedTree::new(render_service(
            &entry.instance,
            &self.settings,
        )));
        let mut g = shard.lock().unwrap_or_else(|p| p.into_inner());
        g.put(uuid, (entry.generation, tree.clone()));
        tree
    }

    /// Like [`RenderCache::tree`], but first asks `memo`, one connection's last tree:
    /// a guest's connection keeps asking about the same instance, and this skips the
    /// shared shard lock then.
    pub fn tree_memo(&self, entry: &InstanceEntry, memo: &mut TreeMemo) -> Arc<CachedTree> {
        let uuid = entry.instance.uuid();
        if let Some((u, generation, tree)) = &memo.0 {
            if *u == uuid && *generation == entry.generation {
                return tree.clone();
            }
        }
        let tree = self.tree(entry);
        memo.0 = Some((uuid, entry.generation, tree.clone()));
        tree
    }

    /// Trees currently cached.
    pub fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.lock().unwrap_or_else(|p| p.into_inner()).len())
            .sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
