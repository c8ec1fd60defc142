//! Rendering a document from scratch, in two passes over memory that stays local.
//!
//! First every tenant is read once, in input order (the order it lies in memory), checked, and
//! its items are rendered into its buckets (see `sections.rs`): each bucket keeps its items'
//! text together. Then, bucket by bucket, only that bucket's items are sorted and copied into
//! the document. Reading the input in document order instead costs cache and TLB misses per
//! tenant at 100k tenants, where they dominated the time (see `docs/benchmarks.md`).

use tenant_core::{TenantId, TenantStatus};

use crate::accounts::EnvFile;
use crate::bridge::BRIDGE_TOKEN_VAR;
use crate::checks::{KINDS, check_tenant};
use crate::fragments::{Ctx, base_members};
use crate::frame::{Sink, write_combined};
use crate::json::Writer;
use crate::sections::{
    BUCKETS, Order, SectionId, base_bucket, first_duplicate, id_text, tenant_bucket,
};
use crate::{ConfigError, Layout, RenderOptions, RenderedConfig, SecretsMode, TenantSource};

/// Below this many tenants every section is one bucket: sorting a few items needs no buckets,
/// and a single tenant's document (rendered once per tenant in per-tenant mode) should not pay
/// for 257 of them.
const FEW: usize = 2048;

/// From this many tenants on, the first pass runs on every CPU (at most [`MAX_THREADS`]): each
/// thread reads its share of the input into buckets of its own, which are then appended to the
/// first thread's. Below it a thread costs more than it saves.
const PARALLEL_MIN: usize = 16_384;

/// The most threads of one render.
const MAX_THREADS: usize = 8;

/// One item in a bucket of the one-shot renderer: where it sorts and where its text is.
#[derive(Clone, Copy)]
struct Item {
    order: Order,
    start: usize,
    len: usize,
    env_start: usize,
    env_len: usize,
}

#[derive(Default)]
struct Bucket {
    /// In the order they were added.
    items: Vec<Item>,
    /// The items' sort ranks and indexes in `items`, sorted: small pairs sort much faster
    /// than the items themselves.
    sorted: Vec<(u64, usize)>,
    /// The items' text, in the order they were added.
    text: String,
    /// Their environment file lines (account sections, `env` and `secret-ref` modes).
    env: String,
}

impl Bucket {
    fn str(&self, start: usize, len: usize) -> &str {
        self.text.get(start..start + len).unwrap_or_default()
    }

    /// The items in document order.
    fn in_order(&self) -> impl Iterator<Item = &Item> + '_ {
        self.sorted.iter().filter_map(|&(_, i)| self.items.get(i))
    }

    fn sort(&mut self, prefix: &str, base_keys: &[String]) {
        let items = &self.items;
        self.sorted.clear();
        self.sorted.extend(
            items
                .iter()
                .enumerate()
                .map(|(i, item)| (item.order.rank(), i)),
        );
        let tenant = |&(_, i): &(u64, usize)| items.get(i).map(|it| it.order.tenant);
        if items.iter().all(|i| i.order.is_tenant()) {
            // The usual bucket: tenants only, ordered by a number. Equal numbers (tenants
            // sharing an id, reported as duplicates) then go by tenant id.
            self.sorted.sort_unstable();
            for run in self.sorted.chunk_by_mut(|a, b| a.0 == b.0) {
                if run.len() > 1 {
                    run.sort_by_key(tenant);
                }
            }
        } else {
            let order = |&(_, i): &(u64, usize)| items.get(i).map(|it| it.order);
            self.sorted
                .sort_unstable_by(|a, b| match (order(a), order(b)) {
                    (Some(x), Some(y)) => x.cmp_in(&y, prefix, base_keys),
                    _ => a.1.cmp(&b.1),
                });
        }
    }
}

#[derive(Default)]
struct Section {
    buckets: Vec<Bucket>,
    /// Items of tenants (not of the operator).
    tenants: usize,
    /// The operator items' keys, sorted.
    base_keys: Vec<String>,
}

impl Section {
    fn reset(&mut self, buckets: usize) {
        self.buckets.resize_with(buckets, Bucket::default);
        self.buckets.truncate(buckets);
        for b in &mut self.buckets {
            b.items.clear();
            b.sorted.clear();
            b.text.clear();
            b.env.clear();
        }
        self.tenants = 0;
        self.base_keys.clear();
    }

    /// Appends the items of `other` (a section of the same bucket count), bucket by bucket.
    fn append(&mut self, other: &Section) {
        for (into, from) in self.buckets.iter_mut().zip(&other.buckets) {
            let (text, env) = (into.text.len(), into.env.len());
            into.text.push_str(&from.text);
            into.env.push_str(&from.env);
            into.items.extend(from.items.iter().map(|item| Item {
                start: item.start + text,
                env_start: item.env_start + env,
                ..*item
            }));
        }
        self.tenants += other.tenants;
    }

    fn bucket(&mut self, index: usize) -> Option<&mut Bucket> {
        let last = self.buckets.len().checked_sub(1)?;
        self.buckets.get_mut(index.min(last))
    }

    fn sort(&mut self, prefix: &str) {
        for b in &mut self.buckets {
            b.sort(prefix, &self.base_keys);
        }
    }

    fn orders(&self) -> impl Iterator<Item = Order> + '_ {
        self.buckets
            .iter()
            .flat_map(|b| b.in_order().map(|i| i.order))
    }

    fn duplicate(&self) -> Option<(u32, TenantId, TenantId)> {
        // Equal keys share a bucket, so a duplicate is always within one.
        self.buckets
            .iter()
            .find_map(|b| first_duplicate(b.in_order().map(|i| i.order)))
    }
}

/// The renderer's working memory, kept in a [`RenderedConfig`] between calls so that a caller
/// rendering repeatedly reuses it instead of page-faulting it in afresh.
#[derive(Default)]
pub(crate) struct Scratch {
    /// In the order of [`SectionId::COMBINED`].
    sections: [Section; 7],
    var: String,
    /// The working memory of the other threads of a parallel first pass.
    helpers: Vec<Scratch>,
}

/// One section's place among the renderer's buckets.
fn section_of(sections: &mut [Section; 7], id: SectionId) -> &mut Section {
    &mut sections[id.index()]
}

struct OneShot<'s> {
    sections: &'s [Section; 7],
}

impl Sink for OneShot<'_> {
    fn has_tenants(&self, section: SectionId) -> bool {
        self.sections[section.index()].tenants > 0
    }

    fn members(&mut self, w: &mut Writer, section: SectionId) {
        let s = &self.sections[section.index()];
        for b in &s.buckets {
            for item in b.in_order() {
                w.member();
                w.raw(b.str(item.start, item.len));
            }
        }
    }
}

/// Renders the combined document of `sources` into `out`, reusing its buffers.
pub(crate) fn render(
    sources: &[TenantSource<'_>],
    opts: &RenderOptions,
    out: &mut RenderedConfig,
) -> Result<(), ConfigError> {
    out.json.clear();
    render_at(sources, opts, out, 0)?;
    out.json.push('\n');
    Ok(())
}

/// [`render`] for a document nested `depth` containers deep (a per-tenant map's member), without
/// the final newline; `out.json` is appended to.
pub(crate) fn render_at(
    sources: &[TenantSource<'_>],
    opts: &RenderOptions,
    out: &mut RenderedConfig,
    depth: usize,
) -> Result<(), ConfigError> {
    render_on(sources, opts, out, depth, threads_for(sources.len()))
}

/// [`render_at`] with the first pass on `threads` threads.
fn render_on(
    sources: &[TenantSource<'_>],
    opts: &RenderOptions,
    out: &mut RenderedConfig,
    depth: usize,
    threads: usize,
) -> Result<(), ConfigError> {
    opts.validate()?;
    let scratch = &mut out.scratch;
    let with_env = opts.secrets != SecretsMode::Inline;
    fill(sources, opts, scratch, with_env, depth, threads)?;

    let sections = &scratch.sections;
    let estimate: usize = sections
        .iter()
        .flat_map(|s| &s.buckets)
        .map(|b| b.text.len() + b.items.len() * 16)
        .sum();
    let json = std::mem::take(&mut out.json);
    let mut w = Writer::resume(json, depth, opts.layout == Layout::Pretty);
    w.reserve(estimate + 4096);
    let written = write_combined(&mut w, opts, &mut OneShot { sections });
    out.json = w.into_inner();
    written?;

    out.env_file = with_env.then(|| {
        // The lines in document order: kinds by name, accounts by id.
        let mut env = EnvFile::into(out.env_file.take().unwrap_or_default(), 0);
        for rank in 0..KINDS.len() {
            for b in &sections[SectionId::Accounts(rank).index()].buckets {
                for item in b.in_order() {
                    let line = b.env.get(item.env_start..item.env_start + item.env_len);
                    env.text.push_str(line.unwrap_or_default());
                }
            }
        }
        // `plugins` comes after `channels` in the document.
        if let Some(token) = opts.bridge.as_ref().and_then(|b| b.token.as_ref()) {
            env.push(BRIDGE_TOKEN_VAR, token.expose());
        }
        env.text
    });
    Ok(())
}

/// How many threads the first pass over `tenants` tenants runs on.
fn threads_for(tenants: usize) -> usize {
    if tenants < PARALLEL_MIN {
        return 1;
    }
    std::thread::available_parallelism().map_or(1, |n| n.get().min(MAX_THREADS))
}

/// Reads every tenant once, checks it, renders its items into their buckets, sorts the
/// buckets and runs the checks across tenants. The first pass runs on `threads` threads; the
/// result does not depend on how many: every bucket is sorted afterwards, and failures are
/// reported in agent-id order.
fn fill(
    sources: &[TenantSource<'_>],
    opts: &RenderOptions,
    scratch: &mut Scratch,
    with_env: bool,
    nest: usize,
    threads: usize,
) -> Result<(), ConfigError> {
    let buckets = if sources.len() < FEW { 1 } else { BUCKETS };
    let share = sources.len().div_ceil(threads.max(1)).max(1);
    let mut shares = sources.chunks(share);
    let own = shares.next().unwrap_or_default();
    let shares: Vec<_> = shares.collect();
    let Scratch {
        sections,
        var,
        helpers,
    } = scratch;
    helpers.resize_with(shares.len(), Scratch::default);
    helpers.truncate(shares.len());
    // Tenants that failed their own checks, reported in agent-id order after duplicate agents.
    let (mut failed, not_started) = std::thread::scope(|scope| {
        let mut started = Vec::new();
        let mut not_started = Vec::new();
        for (i, (share, helper)) in shares.iter().zip(helpers.iter_mut()).enumerate() {
            let Scratch { sections, var, .. } = helper;
            let spawned = std::thread::Builder::new()
                .name("config-render".into())
                .spawn_scoped(scope, move || {
                    read_share(share, opts, sections, var, with_env, nest, buckets)
                });
            match spawned {
                Ok(thread) => started.push(thread),
                // No thread to be had: that share is read here, afterwards.
                Err(_) => not_started.push(i),
            }
        }
        let mut failed = read_share(own, opts, sections, var, with_env, nest, buckets);
        for thread in started {
            match thread.join() {
                Ok(f) => failed.extend(f),
                Err(panic) => std::panic::resume_unwind(panic),
            }
        }
        (failed, not_started)
    });
    for i in not_started {
        if let (Some(share), Some(helper)) = (shares.get(i), helpers.get_mut(i)) {
            let Scratch { sections, var, .. } = helper;
            failed.extend(read_share(
                share, opts, sections, var, with_env, nest, buckets,
            ));
        }
    }
    for helper in helpers.iter() {
        for (into, from) in sections.iter_mut().zip(&helper.sections) {
            into.append(from);
        }
    }

    let (entries, accounts) = base_members(opts, nest);
    add_base(
        section_of(sections, SectionId::Agents),
        SectionId::Agents,
        entries,
    );
    for (rank, items) in accounts.into_iter().enumerate() {
        let id = SectionId::Accounts(rank);
        add_base(section_of(sections, id), id, items);
    }
    for id in SectionId::COMBINED {
        section_of(sections, id).sort(id.prefix());
    }
    check_across(sections, failed)
}

/// The first pass over one share of the input: checks each tenant and renders its items into
/// `sections` (reset to `buckets` buckets each first). Returns the tenants that failed.
fn read_share(
    sources: &[TenantSource<'_>],
    opts: &RenderOptions,
    sections: &mut [Section; 7],
    var: &mut String,
    with_env: bool,
    nest: usize,
    buckets: usize,
) -> Vec<(String, TenantId, ConfigError)> {
    for s in sections.iter_mut() {
        s.reset(buckets);
    }
    let ctx = Ctx::new(opts, nest);
    let mut failed = Vec::new();
    for source in sources {
        let tenant = source.tenant;
        if tenant.status != TenantStatus::Active {
            continue;
        }
        let checked = match check_tenant(source) {
            Ok(c) => c,
            Err(e) => {
                failed.push((tenant.agent_id.as_str().to_owned(), tenant.id, e));
                continue;
            }
        };
        let order = Order::tenant(checked.agent, 0, tenant.id);
        add(section_of(sections, SectionId::Agents), order, |text, _| {
            ctx.agent(text, tenant)
        });
        if checked.has_bindings() {
            add(
                section_of(sections, SectionId::Bindings),
                order,
                |text, _| ctx.bindings(text, tenant, &checked.served),
            );
        }
        let order = Order::tenant(checked.account, checked.agent, tenant.id);
        for (rank, channel) in checked.served.iter().enumerate() {
            let Some(channel) = channel else { continue };
            add(
                section_of(sections, SectionId::Accounts(rank)),
                order,
                |text, env| {
                    let mut lines = EnvFile {
                        text: std::mem::take(env),
                    };
                    let lines_ref = with_env.then_some(&mut lines);
                    ctx.account(text, lines_ref, var, tenant, channel);
                    *env = lines.text;
                },
            );
        }
    }
    failed
}

/// Adds a tenant's item, rendered by `render` into its bucket's text (and env lines).
fn add(section: &mut Section, order: Order, render: impl FnOnce(&mut String, &mut String)) {
    let Some(bucket) = section.bucket(tenant_bucket(order.key())) else {
        return;
    };
    let (start, env_start) = (bucket.text.len(), bucket.env.len());
    render(&mut bucket.text, &mut bucket.env);
    bucket.items.push(Item {
        order,
        start,
        len: bucket.text.len() - start,
        env_start,
        env_len: bucket.env.len() - env_start,
    });
    section.tenants += 1;
}

/// Adds the operator's items of a section (sorted by key).
fn add_base(section: &mut Section, id: SectionId, items: Vec<(String, String)>) {
    for (i, (key, text)) in items.into_iter().enumerate() {
        let index = base_bucket(&key, id.prefix());
        if let Some(bucket) = section.bucket(index) {
            let start = bucket.text.len();
            bucket.text.push_str(&text);
            bucket.items.push(Item {
                order: Order::base(i),
                start,
                len: text.len(),
                env_start: 0,
                env_len: 0,
            });
        }
        section.base_keys.push(key);
    }
}

/// The checks across tenants, in the order a reader of the document would meet the problems:
/// two tenants sharing an agent id, then the first tenant (in agent-id order) that failed its
/// own checks, then two tenants sharing an account id on one channel (kinds by name).
fn check_across(
    sections: &[Section; 7],
    failed: Vec<(String, TenantId, ConfigError)>,
) -> Result<(), ConfigError> {
    let agents = &sections[SectionId::Agents.index()];
    if !failed.is_empty()
        && let Some(e) = first_failure(agents.orders(), failed)
    {
        return Err(e);
    }
    match duplicate_error(|id| sections[id.index()].duplicate()) {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

/// The first duplicate id of a combined document, as a reader would meet it: two tenants sharing
/// an agent id, then two sharing an account id on one channel (kinds by name). `duplicate` finds
/// the first pair in one section.
pub(crate) fn duplicate_error(
    duplicate: impl Fn(SectionId) -> Option<(u32, TenantId, TenantId)>,
) -> Option<ConfigError> {
    if let Some((key, first, second)) = duplicate(SectionId::Agents) {
        return Some(ConfigError::DuplicateAgent {
            agent_id: id_text(SectionId::Agents.prefix(), key),
            first,
            second,
        });
    }
    KINDS.iter().enumerate().find_map(|(rank, kind)| {
        let id = SectionId::Accounts(rank);
        let (key, first, second) = duplicate(id)?;
        Some(ConfigError::DuplicateAccount {
            channel: *kind,
            account_id: id_text(id.prefix(), key),
            first,
            second,
        })
    })
}

/// With tenants that failed their own checks: a duplicate agent id among all active tenants
/// (as if the failed ones were in place), else the first failure in agent-id order; `None` only
/// when nothing failed.
pub(crate) fn first_failure(
    passed: impl Iterator<Item = Order>,
    failed: Vec<(String, TenantId, ConfigError)>,
) -> Option<ConfigError> {
    let prefix = SectionId::Agents.prefix();
    let mut all: Vec<(String, TenantId)> = passed
        .filter(Order::is_tenant)
        .map(|o| (id_text(prefix, o.key()), o.tenant))
        .chain(failed.iter().map(|(agent, id, _)| (agent.clone(), *id)))
        .collect();
    all.sort();
    for pair in all.windows(2) {
        if let [(a, first), (b, second)] = pair
            && a == b
        {
            return Some(ConfigError::DuplicateAgent {
                agent_id: a.clone(),
                first: *first,
                second: *second,
            });
        }
    }
    failed
        .into_iter()
        .min_by(|a, b| (&a.0, a.1).cmp(&(&b.0, b.1)))
        .map(|(_, _, e)| e)
}

#[cfg(test)]
#[path = "../tests/fixture/mod.rs"]
mod fixture;

#[cfg(test)]
mod tests {
    use tenant_core::{ChannelKind, TenantStatus};

    use super::fixture::{self, Owned};
    use super::*;
    use crate::{Dialect, Layout};

    fn render_with(
        sources: &[TenantSource<'_>],
        opts: &RenderOptions,
        threads: usize,
    ) -> RenderedConfig {
        let mut out = RenderedConfig::default();
        render_on(sources, opts, &mut out, 0, threads).expect("renders");
        out
    }

    fn error_with(sources: &[TenantSource<'_>], threads: usize) -> String {
        let mut out = RenderedConfig::default();
        render_on(sources, &RenderOptions::default(), &mut out, 0, threads)
            .expect_err("refused")
            .to_string()
    }

    #[test]
    fn the_document_does_not_depend_on_the_threads() {
        // Enough tenants for buckets; the varied set at the end, in the last thread's share.
        let mut owned = fixture::bulk(3000);
        owned.extend(fixture::varied());
        let sources = fixture::sources(&owned);
        let options = [
            RenderOptions::default(),
            RenderOptions {
                secrets: SecretsMode::Env,
                layout: Layout::Pretty,
                ..RenderOptions::default()
            },
            RenderOptions {
                dialect: Dialect::Legacy,
                ..RenderOptions::default()
            },
        ];
        for opts in &options {
            let one = render_with(&sources, opts, 1);
            assert!(one.json.contains("agent-"), "a real document");
            for threads in [2, 3, 8] {
                let many = render_with(&sources, opts, threads);
                assert!(one.json == many.json, "{threads} threads: another document");
                assert_eq!(one.env_file, many.env_file, "{threads} threads");
            }
            // Working memory reused from a render on more threads changes nothing either.
            let mut out = RenderedConfig::default();
            render_on(&sources, opts, &mut out, 0, 3).expect("renders");
            out.json.clear(); // `render_on` appends, like `render_at`
            render_on(&sources, opts, &mut out, 0, 1).expect("renders");
            assert!(out.json == one.json, "reused working memory");
        }
    }

    #[test]
    fn failures_are_the_same_whatever_the_threads() {
        let mut owned = fixture::bulk(3000);
        // A channel passed with another tenant (in the first share) and two tenants sharing an
        // agent id (one in the first share, one in the last).
        let first = owned[10].tenant.clone();
        let stranger = owned[20].tenant.clone();
        owned[10].channels.push(fixture::channel(
            &stranger,
            ChannelKind::Signal,
            true,
            None,
            fixture::creds(ChannelKind::Signal, 1),
        ));
        let mut twin = fixture::tenant(0xfeed_0001, "Twin", TenantStatus::Active);
        twin.agent_id = owned[5].tenant.agent_id.clone();
        owned.push(Owned {
            tenant: twin,
            channels: vec![],
        });
        let sources = fixture::sources(&owned);
        let one = error_with(&sources, 1);
        assert!(one.contains("agent"), "{one}");
        for threads in [2, 3, 8] {
            assert_eq!(error_with(&sources, threads), one, "{threads} threads");
        }
        // Without the twin, the foreign channel is what is reported.
        let sources = &sources[..sources.len() - 1];
        let one = error_with(sources, 1);
        assert!(one.contains(&first.id.to_string()), "{one}");
        for threads in [2, 3, 8] {
            assert_eq!(error_with(sources, threads), one, "{threads} threads");
        }
    }
}
