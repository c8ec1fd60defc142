//! The incrementally kept document equals a from-scratch rendering after any sequence of
//! changes: same bytes in both layouts and dialects, and the same error when there is one.

use std::collections::BTreeMap;

use tenant_configgen::{IncrementalConfig, Mode};
use tenant_core::{AccountId, AgentId, Channel, TenantId, TenantName};

use super::*;

/// A small deterministic generator (xorshift64*), so a failing sequence can be replayed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// A base whose operator items fall before, between and inside the tenants' buckets.
fn interleaving_base(dialect: Dialect) -> BaseConfig {
    let agents = match dialect {
        Dialect::Current => {
            "entries: {'_first': {name: 'F'}, 'agent-0g': {name: 'G'}, 'agent-4000-ops': {name: 'Ops'}, ops: {name: 'O'}}"
        }
        Dialect::Legacy => "list: [{id: 'ops', name: 'Ops', default: true}]",
    };
    BaseConfig::parse(&format!(
        "{{gateway: {{port: 1}}, agents: {{{agents}}},
          bindings: [{{agentId: 'ops', match: {{channel: 'telegram', accountId: 'ops-bot'}}}}],
          channels: {{telegram: {{dmPolicy: 'pairing', accounts: {{'ops-bot': {{name: 'Ops'}}, 'tenant-7-x': {{name: 'X'}}}}}}, irc: {{enabled: false}}}}}}"
    ))
    .unwrap()
}

/// Every kind of change a tenant can go through, chosen at random; the tenants changed.
fn mutate(rng: &mut Rng, all: &mut Vec<Owned>, next_id: &mut u32) -> Vec<TenantId> {
    let kinds = ChannelKind::ALL;
    if all.is_empty() || rng.below(6) == 0 {
        *next_id += 1;
        // Spread over the whole id space, so every bucket sees tenants.
        let n = next_id.wrapping_mul(0x9e37_79b1);
        let t = tenant(n, &format!("New tenant {n} «${{X}}»"), TenantStatus::Active);
        let k = kinds[rng.below(kinds.len())];
        let channels = vec![channel(&t, k, true, None, creds(k, n))];
        let id = t.id;
        all.push(Owned {
            tenant: t,
            channels,
        });
        return vec![id];
    }
    let i = rng.below(all.len());
    let id = all[i].tenant.id;
    match rng.below(12) {
        0 => {
            all.swap_remove(i);
        }
        1 => {
            let o = &mut all[i];
            o.tenant.status = match o.tenant.status {
                TenantStatus::Active => TenantStatus::Suspended,
                _ => TenantStatus::Active,
            };
        }
        2 => {
            let name = format!(
                "Renamed {} \"q\" {}",
                rng.below(1000),
                "ü".repeat(rng.below(3))
            );
            all[i].tenant.name = TenantName::parse(&name).unwrap();
        }
        3 => {
            if let Some(c) = all[i].channels.first_mut() {
                c.enabled = !c.enabled;
            }
        }
        4 => {
            let k = kinds[rng.below(kinds.len())];
            let o = &mut all[i];
            if !o.channels.iter().any(|c| c.kind == k) {
                let c = channel(&o.tenant, k, true, Some("Shown ${N}"), creds(k, 7));
                o.channels.push(c);
            }
        }
        5 => {
            all[i].channels.pop();
        }
        6 => {
            // A Slack channel in http mode without its signing secret: a per-tenant error.
            let o = &mut all[i];
            o.channels.retain(|c| c.kind != ChannelKind::Slack);
            let c: Channel = channel(
                &o.tenant,
                ChannelKind::Slack,
                true,
                None,
                json!({"mode": "http", "botToken": "xoxb-1", "appToken": "xapp-1"}),
            );
            o.channels.push(c);
        }
        7 => {
            // Another tenant's agent or account id: a duplicate across tenants.
            let j = rng.below(all.len());
            let (agent, account) = (
                all[j].tenant.agent_id.clone(),
                all[j].tenant.account_id.clone(),
            );
            let o = &mut all[i];
            if rng.below(2) == 0 {
                o.tenant.agent_id = agent;
            } else {
                o.tenant.account_id = account;
            }
        }
        8 => {
            // Every tenant back to its own ids and good channels (undoes 6 and 7), as after an
            // operator's bulk fix.
            let mut changed = Vec::new();
            for o in all.iter_mut() {
                let (agent, account) = (
                    AgentId::for_tenant(&o.tenant.id),
                    AccountId::for_tenant(&o.tenant.id),
                );
                let slack = o.channels.len();
                o.channels.retain(|c| {
                    c.kind != ChannelKind::Slack
                        || c.credentials.get("signingSecret").is_some()
                        || c.credentials.slack_mode() != Some(tenant_core::SlackMode::Http)
                });
                if o.tenant.agent_id != agent
                    || o.tenant.account_id != account
                    || slack != o.channels.len()
                {
                    o.tenant.agent_id = agent;
                    o.tenant.account_id = account;
                    changed.push(o.tenant.id);
                }
            }
            return changed;
        }
        _ => {
            // Its display name: only its accounts change.
            if let Some(c) = all[i].channels.last_mut() {
                c.display_name = Some(
                    tenant_core::DisplayName::parse(&format!("Display {}", rng.below(50))).unwrap(),
                );
            }
        }
    }
    vec![id]
}

fn reference(all: &[Owned], o: &RenderOptions, mode: Mode) -> Result<String, ConfigError> {
    let sources = fixture::sources(all);
    match mode {
        Mode::Combined => render_combined(&sources, o).map(|r| r.json),
        Mode::PerTenant => per_tenant_reference(&sources, o),
    }
}

/// The per-tenant map as the server built it before: each active tenant's own document under its
/// account id, in account-id order.
fn per_tenant_reference(
    sources: &[TenantSource<'_>],
    o: &RenderOptions,
) -> Result<String, ConfigError> {
    let mut active: Vec<_> = sources
        .iter()
        .filter(|s| s.tenant.status == TenantStatus::Active)
        .collect();
    active.sort_by(|a, b| {
        (&a.tenant.account_id, a.tenant.id).cmp(&(&b.tenant.account_id, b.tenant.id))
    });
    let mut map = BTreeMap::new();
    let mut duplicate = None;
    for s in &active {
        let doc: Value = serde_json::from_str(&render_tenant(s, o)?.json).unwrap();
        if let Some(prev) = map.insert(s.tenant.account_id.to_string(), (s.tenant.id, doc)) {
            duplicate.get_or_insert(ConfigError::DuplicateDocument {
                account_id: s.tenant.account_id.to_string(),
                first: prev.0,
                second: s.tenant.id,
            });
        }
    }
    if let Some(e) = duplicate {
        return Err(e);
    }
    let map: serde_json::Map<String, Value> = map.into_iter().map(|(k, (_, v))| (k, v)).collect();
    let v = Value::Object(map);
    Ok(match o.layout {
        Layout::Compact => serde_json::to_string(&v).unwrap(),
        Layout::Pretty => serde_json::to_string_pretty(&v).unwrap(),
    } + "\n")
}

/// Checks the kept document against a fresh one; whether it was a document (or an error).
fn assert_same(
    live: &mut IncrementalConfig,
    all: &[Owned],
    o: &RenderOptions,
    mode: Mode,
    step: usize,
) -> bool {
    let expected = reference(all, o, mode);
    let got = live
        .render()
        .map(|d| String::from_utf8(d.to_vec()).unwrap());
    match (&expected, &got) {
        (Ok(a), Ok(b)) if a == b => true,
        (Err(a), Err(b)) if a == b => false,
        _ => panic!(
            "step {step}, {mode} {:?} {:?}: incremental differs from scratch:\n{:?}\n{:?}",
            o.dialect,
            o.layout,
            expected.map(|s| s.len()),
            got.map(|s| s.len())
        ),
    }
}

/// Runs `steps` rounds of random changes; how many rounds ended in an error and in a document.
fn run(seed: u64, o: &RenderOptions, mode: Mode, start: Vec<Owned>, steps: usize) -> [usize; 2] {
    let mut rng = Rng(seed);
    let mut all = start;
    let mut live = IncrementalConfig::new(o.clone(), mode).unwrap();
    for s in fixture::sources(&all) {
        live.upsert(&s);
    }
    assert_same(&mut live, &all, o, mode, 0);
    let mut next_id = 0x100;
    let mut outcomes = [0usize; 2];
    for step in 1..=steps {
        // A few changes per assembly, as between two polls.
        for _ in 0..=rng.below(3) {
            for id in mutate(&mut rng, &mut all, &mut next_id) {
                match all.iter().find(|x| x.tenant.id == id) {
                    Some(x) => live.upsert(&TenantSource {
                        tenant: &x.tenant,
                        channels: &x.channels,
                    }),
                    None => live.remove(&id),
                }
            }
        }
        outcomes[usize::from(assert_same(&mut live, &all, o, mode, step))] += 1;
    }
    outcomes
}

/// Runs every variant; the runs together must see documents and refusals, or they test less
/// than they seem to.
fn run_all(mode: Mode, seed: u64, steps: usize, variants: &[RenderOptions]) {
    let mut total = [0usize; 2];
    for (i, o) in variants.iter().enumerate() {
        let [errors, documents] = run(seed + i as u64, o, mode, fixture::varied(), steps);
        total[0] += errors;
        total[1] += documents;
    }
    assert!(total[0] > steps && total[1] > steps, "{total:?}");
}

fn variants() -> Vec<RenderOptions> {
    let mut out = Vec::new();
    for (dialect, secrets) in [
        (Dialect::Current, SecretsMode::Inline),
        (Dialect::Current, SecretsMode::SecretRef),
        (Dialect::Legacy, SecretsMode::Env),
    ] {
        for layout in [Layout::Compact, Layout::Pretty] {
            for base in [None, Some(interleaving_base(dialect))] {
                out.push(RenderOptions {
                    dialect,
                    secrets,
                    layout,
                    base,
                    ..RenderOptions::default()
                });
            }
        }
    }
    out
}

#[test]
fn random_changes_keep_the_document_equal_to_a_fresh_render() {
    run_all(Mode::Combined, 0x5eed, 60, &variants());
}

#[test]
fn random_changes_keep_the_per_tenant_map_equal_to_its_documents() {
    let variants: Vec<_> = variants().into_iter().step_by(2).collect();
    run_all(Mode::PerTenant, 0xfeed, 30, &variants);
}

#[test]
fn many_tenants_use_every_bucket_in_both_renderers() {
    // Enough tenants for the one-shot renderer's bucketed path too.
    for o in [
        RenderOptions::default(),
        RenderOptions {
            layout: Layout::Pretty,
            base: Some(interleaving_base(Dialect::Current)),
            ..RenderOptions::default()
        },
    ] {
        let mut start = fixture::bulk(3000);
        start.extend(fixture::varied());
        run(0xb16, &o, Mode::Combined, start, 8);
    }
}

#[test]
fn unchanged_buckets_keep_their_chunks() {
    let owned = fixture::bulk(3000);
    let mut live = IncrementalConfig::new(RenderOptions::default(), Mode::Combined).unwrap();
    for s in fixture::sources(&owned) {
        live.upsert(&s);
    }
    let before = live.render().unwrap();
    let mut renamed = owned[17].tenant.clone();
    renamed.name = TenantName::parse("Renamed").unwrap();
    live.upsert(&TenantSource {
        tenant: &renamed,
        channels: &owned[17].channels,
    });
    let after = live.render().unwrap();
    let ids = |d: &tenant_configgen::ChunkedConfig| -> Vec<u64> {
        d.chunks().iter().map(|c| c.id()).collect()
    };
    let (a, b) = (ids(&before), ids(&after));
    assert_eq!(a.len(), b.len());
    let changed = a.iter().zip(&b).filter(|(x, y)| x != y).count();
    // Its agent and two accounts (named after it): one bucket each; its bindings hold no name.
    assert_eq!(changed, 3, "{changed} chunks changed");
    assert_eq!(
        after.len(),
        before.len() - "Tenant number 17 GmbH & Co. KG".len() * 3 + "Renamed".len() * 3
    );
}

#[test]
fn suspended_and_unknown_tenants_leave_no_trace() {
    let owned = fixture::varied();
    let o = RenderOptions::default();
    let mut live = IncrementalConfig::new(o.clone(), Mode::Combined).unwrap();
    for s in fixture::sources(&owned) {
        live.upsert(&s);
    }
    live.remove(&fixture::tenant_id(0x7777_7777));
    let empty = IncrementalConfig::new(o.clone(), Mode::Combined)
        .unwrap()
        .render()
        .unwrap();
    let active = owned
        .iter()
        .filter(|x| x.tenant.status == TenantStatus::Active)
        .count();
    assert_eq!(live.len(), active);
    for x in &owned {
        live.remove(&x.tenant.id);
    }
    assert!(live.is_empty());
    assert_eq!(live.render().unwrap().to_vec(), empty.to_vec());
    assert_eq!(
        String::from_utf8(empty.to_vec()).unwrap(),
        render_combined(&[], &o).unwrap().json
    );
}

#[test]
fn a_kept_document_holds_one_chunk_per_bucket_and_nothing_pending_at_rest() {
    let owned = fixture::bulk(3000);
    let mut live = IncrementalConfig::new(RenderOptions::default(), Mode::Combined).unwrap();
    for s in fixture::sources(&owned) {
        live.upsert(&s);
    }
    let part = |live: &IncrementalConfig, name: &str| {
        live.heap()
            .parts()
            .iter()
            .find(|(p, _)| *p == name)
            .map(|(_, b)| *b)
    };
    assert!(part(&live, "pending changes").unwrap() > 0);
    let doc = live.render().unwrap();
    // No separator chunks between buckets: every chunk is a different piece of text.
    let mut ids: Vec<u64> = doc.chunks().iter().map(|c| c.id()).collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), doc.chunks().len());
    assert_eq!(part(&live, "pending changes"), Some(0));
    let buckets = part(&live, "buckets").unwrap();
    let text = part(&live, "bucket text").unwrap();
    assert!(
        text <= doc.len() && text > doc.len() * 9 / 10,
        "{text} of {}",
        doc.len()
    );
    // A change queues, and the assembly frees the queue again; the buckets stay as they were.
    let mut renamed = owned[5].tenant.clone();
    renamed.name = TenantName::parse("Renamed").unwrap();
    live.upsert(&TenantSource {
        tenant: &renamed,
        channels: &owned[5].channels,
    });
    assert!(part(&live, "pending changes").unwrap() > 0);
    live.render().unwrap();
    assert_eq!(part(&live, "pending changes"), Some(0));
    assert_eq!(part(&live, "buckets"), Some(buckets));
}
