//! A document kept up to date tenant by tenant: [`IncrementalConfig`].
//!
//! The server keeps one per variant. When tenants change it re-renders only those
//! ([`IncrementalConfig::upsert`], [`IncrementalConfig::remove`]), and
//! [`IncrementalConfig::render`] assembles the document from cached chunks, rebuilding only the
//! buckets that changed (see `sections.rs` and `live.rs`). The result is byte for byte what
//! [`render_combined`](crate::render_combined) (or, in per-tenant mode, the per-tenant map) gives
//! for the same tenants, in both layouts, and is refused with the same error: the checks across
//! tenants run on the kept sections at every assembly.

use std::collections::BTreeMap;

use tenant_core::{AccountId, TenantId, TenantIdMap, TenantStatus};

use crate::checks::{check_tenant, id_hex};
use crate::fragments::{Ctx, base_members};
use crate::frame::{Sink, write_combined, write_tenant_map};
use crate::heap::{HeapParts, hash_map_bytes};
use crate::json::Writer;
use crate::live::{Chunk, Ids, Section};
use crate::render::{duplicate_error, first_failure, render_at};
use crate::sections::{Order, SectionId, id_text};
use crate::{ConfigError, Layout, Mode, RenderOptions, RenderedConfig, TenantSource};

/// An assembled document: its chunks in order. Concatenated, they are the document.
#[derive(Debug, Clone, Default)]
pub struct ChunkedConfig {
    chunks: Vec<Chunk>,
    len: usize,
}

impl ChunkedConfig {
    /// The chunks, in document order.
    pub fn chunks(&self) -> &[Chunk] {
        &self.chunks
    }

    /// The document's length in bytes.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the document is empty (it never is: it is at least `{}` and a newline).
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The document as one buffer (a copy).
    pub fn to_vec(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.len);
        for c in &self.chunks {
            out.extend_from_slice(c.bytes());
        }
        out
    }
}

/// What is known of a tenant the document holds.
#[derive(Debug)]
struct Held {
    /// Its ids' hex digits.
    agent: u32,
    account: u32,
    /// Bit `i`: it has an item in section `i`.
    sections: u8,
    /// Whether it failed its own checks (its key in `failed` is in `failed_keys`). A flag, not
    /// the key itself: every held tenant pays for this struct, few ever fail (with the key, an
    /// entry of the map of held tenants was 48 bytes instead of 28).
    failed: bool,
}

/// The document's skeleton for one set of non-empty sections.
#[derive(Debug)]
struct Frame {
    /// Bit `i`: section `i` has tenants.
    mask: u8,
    pieces: Vec<Piece>,
}

#[derive(Debug)]
enum Piece {
    Static(Chunk),
    /// A section's buckets; whether its container already has members before them.
    Slot {
        section: usize,
        after_members: bool,
    },
}

/// A gateway document kept up to date tenant by tenant, assembled from cached chunks.
///
/// Feed it every active tenant once ([`IncrementalConfig::upsert`]), then only the tenants that
/// changed (again `upsert`, or [`IncrementalConfig::remove`] for a deleted or suspended one), and
/// call [`IncrementalConfig::render`] for the current document. A tenant that fails its own checks
/// is kept as failed, so the document is refused (naming it) until it is fixed or removed.
#[derive(Debug)]
pub struct IncrementalConfig {
    opts: RenderOptions,
    mode: Mode,
    held: TenantIdMap<Held>,
    /// Tenants that failed their own checks, by (agent or account id, tenant id).
    failed: BTreeMap<(Box<str>, TenantId), ConfigError>,
    /// The agent (combined) or account (per-tenant) id of each tenant in `failed`.
    failed_keys: TenantIdMap<Box<str>>,
    sections: Vec<Section>,
    frame: Option<Frame>,
    ids: Ids,
    var: String,
    /// Reused for each tenant's own document (per-tenant mode).
    single: RenderedConfig,
}

impl IncrementalConfig {
    /// An empty document for `opts` in `mode` (combined, or the per-tenant map of
    /// `GET /config?mode=per-tenant`). Fails if the options are unusable or the base conflicts
    /// with them.
    pub fn new(opts: RenderOptions, mode: Mode) -> Result<Self, ConfigError> {
        opts.validate()?;
        let pretty = opts.layout == Layout::Pretty;
        let ids = Ids::default();
        let sections = match mode {
            Mode::Combined => {
                let (entries, accounts) = base_members(&opts, 0);
                let mut accounts = accounts.into_iter();
                SectionId::COMBINED
                    .iter()
                    .map(|&id| {
                        let base = match id {
                            SectionId::Agents => entries.clone(),
                            SectionId::Accounts(_) => accounts.next().unwrap_or_default(),
                            _ => Vec::new(),
                        };
                        Section::new(id, id.depth(), pretty, base)
                    })
                    .collect()
            }
            Mode::PerTenant => {
                let id = SectionId::Tenants;
                vec![Section::new(id, id.depth(), pretty, Vec::new())]
            }
        };
        Ok(Self {
            opts,
            mode,
            held: TenantIdMap::default(),
            failed: BTreeMap::new(),
            failed_keys: TenantIdMap::default(),
            sections,
            frame: None,
            ids,
            var: String::new(),
            single: RenderedConfig::default(),
        })
    }

    /// The number of tenants the document holds (active ones, failed ones included).
    pub fn len(&self) -> usize {
        self.held.len()
    }

    /// Whether it holds no tenant.
    pub fn is_empty(&self) -> bool {
        self.held.is_empty()
    }

    /// Whether it holds this tenant (an active tenant put in and not taken out since).
    pub fn contains(&self, tenant: &TenantId) -> bool {
        self.held.contains_key(tenant)
    }

    /// Prepares for about `tenants` more [`IncrementalConfig::upsert`]s before the next
    /// [`IncrementalConfig::render`] (a first fill, a mass change): memory is then sized once
    /// instead of grown step by step. Only a hint.
    pub fn reserve(&mut self, tenants: usize) {
        self.held.reserve(tenants);
        for section in &mut self.sections {
            section.expect(tenants);
        }
    }

    /// What the document holds on the heap, by part (for memory figures; see [`HeapParts`]).
    pub fn heap(&self) -> HeapParts {
        let mut parts = HeapParts::default();
        let failed: usize = self.failed_keys.values().map(|f| 2 * f.len()).sum();
        parts.add(
            "held tenants",
            hash_map_bytes(&self.held) + hash_map_bytes(&self.failed_keys) + failed,
        );
        for section in &self.sections {
            section.heap(&mut parts);
        }
        let frame = self.frame.as_ref().map_or(0, |f| {
            f.pieces.capacity() * size_of::<Piece>()
                + f.pieces
                    .iter()
                    .map(|p| match p {
                        Piece::Static(c) => c.bytes().len(),
                        Piece::Slot { .. } => 0,
                    })
                    .sum::<usize>()
        });
        parts.add(
            "frame and base",
            frame
                + self.sections.capacity() * size_of::<Section>()
                + self.var.capacity()
                + self.single.json.capacity(),
        );
        parts
    }

    /// Puts a tenant in (or replaces it), rendering its items now; a suspended tenant is taken
    /// out. Its problems are reported by [`IncrementalConfig::render`].
    pub fn upsert(&mut self, source: &TenantSource<'_>) {
        let tenant = source.tenant;
        self.remove(&tenant.id);
        if tenant.status != TenantStatus::Active {
            return;
        }
        match self.mode {
            Mode::Combined => self.add_combined(source),
            Mode::PerTenant => self.add_document(source),
        }
    }

    /// Takes a tenant out (deleted, or suspended).
    pub fn remove(&mut self, tenant: &TenantId) {
        let Some(held) = self.held.remove(tenant) else {
            return;
        };
        if held.failed
            && let Some(key) = self.failed_keys.remove(tenant)
        {
            self.failed.remove(&(key, *tenant));
        }
        for (i, section) in self.sections.iter_mut().enumerate() {
            if held.sections & (1 << i) != 0 {
                let key = match section.id {
                    SectionId::Agents | SectionId::Bindings => held.agent,
                    SectionId::Accounts(_) | SectionId::Tenants => held.account,
                };
                section.drop_tenant(key, *tenant);
            }
        }
    }

    fn add_combined(&mut self, source: &TenantSource<'_>) {
        let tenant = source.tenant;
        let checked = match check_tenant(source) {
            Ok(c) => c,
            Err(e) => {
                let key: Box<str> = tenant.agent_id.as_str().into();
                self.failed.insert((key.clone(), tenant.id), e);
                self.failed_keys.insert(tenant.id, key);
                self.held.insert(tenant.id, FAILED);
                return;
            }
        };
        let ctx = Ctx::new(&self.opts, 0);
        let var = &mut self.var;
        let mut mask = 0u8;
        let order = Order::tenant(checked.agent, 0, tenant.id);
        let mut add = |id: SectionId, order: Order, render: &mut dyn FnMut(&mut String)| {
            if let Some(section) = self.sections.get_mut(id.index()) {
                section.add(order, render);
                mask |= 1 << id.index();
            }
        };
        add(SectionId::Agents, order, &mut |out| ctx.agent(out, tenant));
        if checked.has_bindings() {
            add(SectionId::Bindings, order, &mut |out| {
                ctx.bindings(out, tenant, &checked.served)
            });
        }
        let order = Order::tenant(checked.account, checked.agent, tenant.id);
        for (rank, channel) in checked.served.iter().enumerate() {
            let Some(channel) = channel else { continue };
            add(SectionId::Accounts(rank), order, &mut |out| {
                ctx.account(out, None, var, tenant, channel)
            });
        }
        self.held.insert(
            tenant.id,
            Held {
                agent: checked.agent,
                account: checked.account,
                sections: mask,
                failed: false,
            },
        );
    }

    fn add_document(&mut self, source: &TenantSource<'_>) {
        let tenant = source.tenant;
        let account = tenant.account_id.as_str();
        self.single.json.clear();
        let rendered = render_at(
            std::slice::from_ref(source),
            &self.opts,
            &mut self.single,
            1,
        );
        let key = match rendered {
            // The tenant's own render checks its ids, so the account id has its hex digits.
            Ok(()) => id_hex(account, AccountId::PREFIX).ok_or(ConfigError::NonCanonicalId {
                tenant: tenant.id,
                what: "account id",
                id: account.to_owned(),
            }),
            Err(e) => Err(e),
        };
        let key = match key {
            Ok(key) => key,
            Err(e) => {
                let key: Box<str> = account.into();
                self.failed.insert((key.clone(), tenant.id), e);
                self.failed_keys.insert(tenant.id, key);
                self.held.insert(tenant.id, FAILED);
                return;
            }
        };
        let pretty = self.opts.layout == Layout::Pretty;
        let doc = &self.single.json;
        if let Some(section) = self.sections.first_mut() {
            section.add(Order::tenant(key, 0, tenant.id), |out| {
                let mut w = Writer::resume(std::mem::take(out), 1, pretty);
                w.item_key_raw(account);
                w.raw(doc);
                *out = w.into_inner();
            });
        }
        self.held.insert(
            tenant.id,
            Held {
                agent: 0,
                account: key,
                sections: 1,
                failed: false,
            },
        );
    }

    /// The current document, assembled from cached chunks (rebuilding those that changed), or
    /// the first problem in document order: in combined mode two tenants sharing an agent id,
    /// then the first tenant (by agent id) that failed its own checks, then two sharing an
    /// account id on one channel, then a problem of the base; in per-tenant mode the first
    /// tenant (by account id) whose document fails, then two sharing an account id.
    pub fn render(&mut self) -> Result<ChunkedConfig, ConfigError> {
        for section in &mut self.sections {
            section.rebuild(&mut self.ids);
        }
        self.check()?;
        let mask = self
            .sections
            .iter()
            .enumerate()
            .filter(|(_, s)| s.tenants > 0)
            .fold(0u8, |m, (i, _)| m | (1 << i));
        if self.frame.as_ref().is_none_or(|f| f.mask != mask) {
            self.frame = Some(self.build_frame(mask)?);
        }
        let mut out = ChunkedConfig::default();
        for piece in self.frame.iter().flat_map(|f| &f.pieces) {
            match piece {
                Piece::Static(c) => out.chunks.push(c.clone()),
                Piece::Slot {
                    section,
                    after_members,
                } => {
                    let Some(s) = self.sections.get(*section) else {
                        continue;
                    };
                    // Each bucket's text starts with a separator, but for the first where its
                    // container has nothing before it.
                    let mut first = !*after_members;
                    for text in s.buckets.iter().filter_map(|b| b.text.as_ref()) {
                        out.chunks
                            .push(if first { s.leading(text) } else { text.clone() });
                        first = false;
                    }
                }
            }
        }
        out.len = out.chunks.iter().map(|c| c.bytes().len()).sum();
        Ok(out)
    }

    fn check(&self) -> Result<(), ConfigError> {
        let section = |id: SectionId| self.sections.get(id.index());
        match self.mode {
            Mode::Combined => {
                if !self.failed.is_empty() {
                    let failed = self
                        .failed
                        .iter()
                        .map(|((agent, id), e)| (agent.to_string(), *id, e.clone()))
                        .collect();
                    let passed = section(SectionId::Agents)
                        .into_iter()
                        .flat_map(Section::orders);
                    if let Some(e) = first_failure(passed, failed) {
                        return Err(e);
                    }
                }
                if let Some(e) = duplicate_error(|id| section(id).and_then(Section::duplicate)) {
                    return Err(e);
                }
            }
            Mode::PerTenant => {
                if let Some(e) = self.failed.values().next() {
                    return Err(e.clone());
                }
                let id = SectionId::Tenants;
                if let Some((key, first, second)) = section(id).and_then(Section::duplicate) {
                    return Err(ConfigError::DuplicateDocument {
                        account_id: id_text(id.prefix(), key),
                        first,
                        second,
                    });
                }
            }
        }
        Ok(())
    }

    /// Writes the skeleton for the sections in `mask` and cuts it where the sections go.
    fn build_frame(&mut self, mask: u8) -> Result<Frame, ConfigError> {
        let mut w = Writer::into(String::new(), self.opts.layout == Layout::Pretty);
        let mut recorder = Recorder {
            sections: &self.sections,
            slots: Vec::new(),
        };
        match self.mode {
            Mode::Combined => write_combined(&mut w, &self.opts, &mut recorder)?,
            Mode::PerTenant => write_tenant_map(&mut w, &mut recorder),
        }
        let slots = recorder.slots;
        let text = w.finish();
        let mut pieces = Vec::with_capacity(slots.len() * 2 + 1);
        let mut at = 0;
        for (offset, section, after_members) in slots {
            let piece = text.get(at..offset).unwrap_or_default();
            if !piece.is_empty() {
                pieces.push(Piece::Static(self.ids.chunk(piece.to_owned().into())));
            }
            pieces.push(Piece::Slot {
                section,
                after_members,
            });
            at = offset;
        }
        let tail = text.get(at..).unwrap_or_default();
        pieces.push(Piece::Static(self.ids.chunk(tail.to_owned().into())));
        Ok(Frame { mask, pieces })
    }
}

/// What is held of a tenant that failed its own checks: no item in any section.
const FAILED: Held = Held {
    agent: 0,
    account: 0,
    sections: 0,
    failed: true,
};

/// Notes where each section goes while the skeleton is written.
struct Recorder<'s> {
    sections: &'s [Section],
    /// (offset, section index, whether the container has members before it).
    slots: Vec<(usize, usize, bool)>,
}

impl Sink for Recorder<'_> {
    fn has_tenants(&self, section: SectionId) -> bool {
        self.sections
            .get(section.index())
            .is_some_and(|s| s.tenants > 0)
    }

    fn members(&mut self, w: &mut Writer, section: SectionId) {
        let i = section.index();
        self.slots.push((w.len(), i, !w.is_first()));
        if self.sections.get(i).is_some_and(Section::has_items) {
            w.mark_member();
        }
    }
}
