//! The sections of an incrementally kept document: per bucket, its items in order and their
//! text as one shared chunk, plus the changes waiting for the next assembly.
//!
//! A change marks the tenant's old items dropped and queues its new ones; assembling rebuilds
//! only the buckets that changed, by merging the kept items (copied out of the old chunk) with
//! the queued ones. Nothing else is touched, so one tenant's change costs a few buckets' worth of
//! copying (a 256th of each section it appears in), whatever the number of tenants.

use bytes::Bytes;
use tenant_core::TenantId;

use crate::heap::HeapParts;
use crate::json::separator;
use crate::sections::{BUCKETS, Order, SectionId, base_bucket, first_duplicate, tenant_bucket};

/// A piece of an assembled document: shared bytes, and an id that is never reused within one
/// [`IncrementalConfig`](crate::IncrementalConfig), so that a caller can cache what it derives
/// from a chunk (a digest, a compressed form) by id.
#[derive(Debug, Clone)]
pub struct Chunk {
    id: u64,
    bytes: Bytes,
}

impl Chunk {
    pub(crate) fn new(id: u64, bytes: Bytes) -> Self {
        Self { id, bytes }
    }

    /// The id: equal ids mean equal bytes.
    pub fn id(&self) -> u64 {
        self.id
    }

    /// The bytes (UTF-8 JSON text, a part of the document).
    pub fn bytes(&self) -> &Bytes {
        &self.bytes
    }
}

/// The bit of a chunk id that marks a bucket's text without its leading comma (see
/// [`Section::leading`]); [`Ids`] counts up from 1 and never reaches it.
const WITHOUT_COMMA: u64 = 1 << 63;

/// Hands out chunk ids.
#[derive(Debug, Default)]
pub(crate) struct Ids(u64);

impl Ids {
    pub(crate) fn chunk(&mut self, bytes: Bytes) -> Chunk {
        self.0 += 1;
        Chunk::new(self.0, bytes)
    }
}

#[derive(Debug, Clone, Copy)]
struct Item {
    order: Order,
    len: usize,
}

#[derive(Debug, Clone, Copy)]
struct Queued {
    order: Order,
    start: usize,
    len: usize,
}

/// One bucket of a section. A document has a few sections of 257 buckets each, whatever its
/// size, so a bucket at rest is kept small (its pending changes and a duplicate are boxed, and
/// exist only when there are some): 50 gateways' documents would otherwise each pay ~0.2 MB of
/// empty queues.
#[derive(Debug, Default)]
pub(crate) struct Bucket {
    /// The items of `text`, in order.
    items: Box<[Item]>,
    /// The items, each after the section's separator; `None` when there are none.
    pub text: Option<Chunk>,
    /// What changes at the next rebuild; `None`: nothing (the bucket is clean).
    pending: Option<Box<Pending>>,
    /// The first two tenants with the same key (see [`first_duplicate`]).
    duplicate: Option<Box<(u32, TenantId, TenantId)>>,
}

/// A bucket's changes waiting for the next rebuild.
#[derive(Debug, Default)]
struct Pending {
    /// Items to add, their text in `queued_text`.
    queued: Vec<Queued>,
    queued_text: String,
    /// Tenants whose items in `items` are gone.
    dropped: Vec<TenantId>,
}

/// One section of an incrementally kept document.
#[derive(Debug)]
pub(crate) struct Section {
    pub id: SectionId,
    pub buckets: Vec<Bucket>,
    /// Items of tenants (not of the operator).
    pub tenants: usize,
    /// The operator items' keys, sorted.
    base_keys: Vec<String>,
    /// What goes before every item (between items and between buckets): each bucket's text
    /// starts with it, so that a document holds one chunk per bucket, not a separator chunk
    /// besides each (a handle and a digest each, per gateway's document).
    sep: String,
    /// How many bytes of `sep` (its comma) the section's first item goes without when its
    /// container has nothing before it: what is left is the pretty layout's line break and
    /// indentation, nothing in the compact one.
    lead_skip: usize,
    /// How many items a bucket is expected to receive before its next rebuild (see
    /// [`Section::expect`]).
    per_bucket: usize,
}

impl Section {
    /// An empty section at `depth` (its items' depth) holding the operator's `base` items
    /// (`(key, text)`, sorted by key).
    pub(crate) fn new(
        id: SectionId,
        depth: usize,
        pretty: bool,
        base: Vec<(String, String)>,
    ) -> Self {
        let sep = separator(depth, pretty);
        let lead = sep.strip_prefix(',').unwrap_or_default();
        let mut section = Self {
            id,
            buckets: Vec::new(),
            tenants: 0,
            base_keys: Vec::with_capacity(base.len()),
            lead_skip: sep.len() - lead.len(),
            sep,
            per_bucket: 0,
        };
        for (i, (key, text)) in base.into_iter().enumerate() {
            let bucket = base_bucket(&key, id.prefix());
            if let Some(b) = section.bucket_mut(bucket) {
                b.queue(Order::base(i), |out| out.push_str(&text));
            }
            section.base_keys.push(key);
        }
        section
    }

    /// Bucket `i`, created (with the ones before it) on first use: a document of a few tenants
    /// (one tenant's own) needs only a few. The vector grows by doubling up to exactly
    /// [`BUCKETS`] (doubling past it, each section of a gateway's document held 512 slots for
    /// its 257 buckets).
    fn bucket_mut(&mut self, i: usize) -> Option<&mut Bucket> {
        if i >= BUCKETS {
            return None;
        }
        let len = self.buckets.len();
        if len <= i {
            let want = (i + 1).max(self.buckets.capacity() * 2).min(BUCKETS);
            self.buckets.reserve_exact(want.saturating_sub(len));
            self.buckets.resize_with(i + 1, Bucket::default);
        }
        self.buckets.get_mut(i)
    }

    /// The chunk of a bucket's `text` where it opens the section's items in a container with
    /// nothing before them: without the separator's comma. The same bytes as `text` less a
    /// prefix, so its id is `text`'s with [`WITHOUT_COMMA`] set (ids never reach that bit).
    pub(crate) fn leading(&self, text: &Chunk) -> Chunk {
        Chunk::new(
            text.id | WITHOUT_COMMA,
            text.bytes.slice(self.lead_skip.min(text.bytes.len())..),
        )
    }

    /// Whether the section holds any item, the operator's included.
    pub(crate) fn has_items(&self) -> bool {
        self.tenants > 0 || !self.base_keys.is_empty()
    }

    /// Expects about `tenants` items before the next rebuild: a bucket's queue is then sized
    /// once from its first item, instead of doubling its way up. (Filling every queue of a
    /// 100k-tenant document by doubling left up to twice its size allocated at the peak, and
    /// much of that retained by the allocator afterwards.)
    pub(crate) fn expect(&mut self, tenants: usize) {
        self.per_bucket = tenants.div_ceil(BUCKETS - 1);
    }

    /// Queues a tenant's item, rendered by `render`.
    pub(crate) fn add(&mut self, order: Order, render: impl FnOnce(&mut String)) {
        let per_bucket = self.per_bucket;
        if let Some(b) = self.bucket_mut(tenant_bucket(order.key())) {
            b.queue(order, render);
            if let Some(p) = b.pending.as_deref_mut()
                && p.queued.len() == 1
                && per_bucket > 1
            {
                // A little over the expected share: buckets are not all equally full.
                let more = per_bucket + per_bucket / 4;
                let len = p.queued_text.len();
                p.queued_text.reserve(len * more);
                p.queued.reserve(more);
            }
            self.tenants += 1;
        }
    }

    /// Drops the item of `tenant`, which sorts under `key`.
    pub(crate) fn drop_tenant(&mut self, key: u32, tenant: TenantId) {
        if let Some(b) = self.buckets.get_mut(tenant_bucket(key)) {
            let p = b.pending.get_or_insert_default();
            p.queued
                .retain(|q| !(q.order.is_tenant() && q.order.tenant == tenant));
            p.dropped.push(tenant);
            self.tenants = self.tenants.saturating_sub(1);
        }
    }

    /// Rebuilds the buckets that changed.
    pub(crate) fn rebuild(&mut self, ids: &mut Ids) {
        self.per_bucket = 0;
        let prefix = self.id.prefix();
        for b in &mut self.buckets {
            if let Some(pending) = b.pending.take() {
                b.rebuild(*pending, self.sep.as_bytes(), prefix, &self.base_keys, ids);
            }
        }
    }

    /// The first duplicate key of the section, in order.
    pub(crate) fn duplicate(&self) -> Option<(u32, TenantId, TenantId)> {
        self.buckets
            .iter()
            .find_map(|b| b.duplicate.as_deref().copied())
    }

    /// Adds what the section holds on the heap to `parts`.
    pub(crate) fn heap(&self, parts: &mut HeapParts) {
        parts.add("buckets", self.buckets.capacity() * size_of::<Bucket>());
        let (mut items, mut text, mut chunks, mut pending) = (0, 0, 0, 0);
        for b in &self.buckets {
            items += b.items.len() * size_of::<Item>();
            if let Some(c) = &b.text {
                text += c.bytes().len();
                chunks += 1;
            }
            if let Some(p) = &b.pending {
                pending += size_of::<Pending>()
                    + p.queued.capacity() * size_of::<Queued>()
                    + p.queued_text.capacity()
                    + p.dropped.capacity() * size_of::<TenantId>();
            }
            if b.duplicate.is_some() {
                pending += size_of::<(u32, TenantId, TenantId)>();
            }
        }
        parts.add("bucket items", items);
        parts.add("bucket text", text);
        // Each shared chunk's header (`bytes`' `Shared`: buffer, capacity, count), allocated
        // when it is first cloned into a document.
        parts.add("chunk headers", chunks * 3 * size_of::<usize>());
        parts.add("pending changes", pending);
        let base: usize = self.base_keys.iter().map(String::capacity).sum();
        parts.add(
            "frame and base",
            base + self.base_keys.capacity() * size_of::<String>() + self.sep.capacity(),
        );
    }

    /// Every item's order, in document order (for the rare full check with failed tenants).
    pub(crate) fn orders(&self) -> impl Iterator<Item = Order> + '_ {
        self.buckets
            .iter()
            .flat_map(|b| b.items.iter().map(|i| i.order))
    }
}

impl Bucket {
    fn queue(&mut self, order: Order, render: impl FnOnce(&mut String)) {
        let p = self.pending.get_or_insert_default();
        let start = p.queued_text.len();
        render(&mut p.queued_text);
        p.queued.push(Queued {
            order,
            start,
            len: p.queued_text.len() - start,
        });
    }

    /// Applies `pending`, which is freed afterwards (kept, the queues of every bucket would hold
    /// a second document's worth of capacity after the first assembly).
    fn rebuild(
        &mut self,
        pending: Pending,
        sep: &[u8],
        prefix: &str,
        base_keys: &[String],
        ids: &mut Ids,
    ) {
        let Pending {
            mut queued,
            queued_text,
            mut dropped,
        } = pending;
        queued.sort_unstable_by(|a, b| a.order.cmp_in(&b.order, prefix, base_keys));
        dropped.sort_unstable();
        let old_items = std::mem::take(&mut self.items);
        let old_chunk = self.text.take();
        let old: &[u8] = old_chunk.as_ref().map_or(&[], |c| c.bytes());

        // Each item comes after a separator.
        let kept = old_items.iter().scan(0usize, |offset, item| {
            let start = *offset + sep.len();
            *offset = start + item.len;
            Some((
                item.order,
                old.get(start..start + item.len).unwrap_or_default(),
            ))
        });
        let kept = kept.filter(|(order, _)| {
            !(order.is_tenant() && dropped.binary_search(&order.tenant).is_ok())
        });
        let added = queued.iter().map(|q| {
            let text = queued_text
                .get(q.start..q.start + q.len)
                .unwrap_or_default();
            (q.order, text.as_bytes())
        });

        let capacity = old.len() + queued_text.len() + queued.len() * sep.len();
        let mut text = Vec::with_capacity(capacity);
        let mut items = Vec::with_capacity(old_items.len() + queued.len());
        let mut kept = kept.peekable();
        let mut added = added.peekable();
        loop {
            let take_kept = match (kept.peek(), added.peek()) {
                (Some(k), Some(a)) => k.0.cmp_in(&a.0, prefix, base_keys).is_le(),
                (Some(_), None) => true,
                (None, Some(_)) => false,
                (None, None) => break,
            };
            let next = if take_kept { kept.next() } else { added.next() };
            let Some((order, bytes)) = next else { break };
            text.extend_from_slice(sep);
            text.extend_from_slice(bytes);
            items.push(Item {
                order,
                len: bytes.len(),
            });
        }
        self.duplicate = first_duplicate(items.iter().map(|i| i.order)).map(Box::new);
        self.items = items.into_boxed_slice();
        // A tenant re-rendered with the same items (a change elsewhere in it) keeps the chunk,
        // and with it whatever callers derived from it.
        self.text = match old_chunk {
            Some(c) if c.bytes().as_ref() == text.as_slice() => Some(c),
            _ => (!text.is_empty()).then(|| ids.chunk(Bytes::from(text))),
        };
    }
}
