//! A model check of the move protocol (`tenant_service::fleet::placement`, the heartbeat of
//! `ControlPlane::heartbeat`, `config sync`'s acknowledgement and fence, and the lease sweep of
//! `tenant_service::fleet::leases`): every interleaving of move requests, gateways fetching and
//! swapping their files, heartbeats processed step by step by two control-plane replicas, file
//! syncs acknowledging, replica restarts, leases lapsing on a gateway (which fences itself),
//! leases expiring at the control plane and the sweep acting on them (completing a move away
//! from the silent gateway, failing its tenant over), explored exhaustively. In every reachable
//! state no account is in two gateways' served files.
//!
//! The model keeps what the implementation stores (the placement row, the gateways' last
//! heartbeats) apart from what each replica holds in memory (its cached documents and a
//! heartbeat in flight, lost on restart) and what each gateway serves (its file). Each step is
//! one transaction or one cache operation of the code, so a step of one replica can fall between
//! two steps of another:
//! - a heartbeat records the lease and reads the moving rows (step 1), brings its cached
//!   document up to date (step 2), compares the tag and lists the absent tenants (step 3,
//!   possibly after another request refreshed the cache again), and completes the moves still
//!   moving from that gateway (step 4); its answer renews the gateway's own lease, and the
//!   gateway's sync loop waits for it (fetch, swap, heartbeat never overlap: the checker found
//!   the double serve when a fetch made while the lease was lapsed was swapped in after an older
//!   heartbeat's answer renewed it, after the tenant had failed over);
//! - `config sync` renews the lease and writes a file from the rows it read (step 1), then
//!   completes the moves away from it that the written file does not hold (step 2);
//! - a gateway's lease may lapse at any moment (no renewal for a lease, on its own clock): its
//!   sync then writes a document without tenants (the fence) and never swaps in a document
//!   fetched before, until a renewal;
//! - the control plane sees the lease expired only after the gateway's own lapse (the lease plus
//!   the safety margin, `docs/fleet.md`), and until a heartbeat renews it; the sweep then
//!   completes a move away from it, or fails its tenant over to the other gateway when that one
//!   is not expired too.
//!
//! Documents carry the revision they were rendered at; a move is stamped with the revision read
//! after it committed, and only a document at that revision or later acknowledges it. (Without
//! that rule the checker finds a double serve: a heartbeat sent while the tenant was away,
//! processed after it came back, was fetched again, and left again.) Four mutants — no tag
//! comparison, no revision rule, no fence, no margin — are checked too, so the checker is seen
//! to find violations.
//!
//! The state space is kept small by two exact reductions: revisions are replaced by their rank
//! among the revisions in the state (the protocol only compares them), and the two replicas are
//! sorted (they are interchangeable).

use std::collections::HashSet;

/// A gateway: `A` (0) or `B` (1). A byte, not a `usize`, to keep the states small: the full
/// bounds hold tens of millions of them.
type G = u8;

/// Gateways `A` (0) and `B` (1).
const GATEWAYS: [G; 2] = [0, 1];

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Place {
    Placed(G),
    /// `rev`: the move's stamped revision (`None` until stamped after its commit).
    Moving {
        from: G,
        to: G,
        rev: Option<u8>,
    },
}

impl Place {
    /// Whether a document of `g` rendered now holds the tenant (its account).
    fn holds(self, g: G) -> bool {
        self == Place::Placed(g)
    }
}

/// A document: whether it holds the tenant, and the revision it was rendered at.
type Doc = (bool, u8);

/// Which rules the protocol applies (the real one applies all).
#[derive(Debug, Clone, Copy)]
struct Rules {
    /// A heartbeat releases only with the tag of the current document.
    tag: bool,
    /// Only a document rendered at the move's revision or later acknowledges it.
    revision: bool,
    /// A gateway whose lease lapsed writes a document without tenants and swaps in nothing
    /// fetched before.
    fence: bool,
    /// The control plane acts on a lease only after the gateway's own lapse.
    margin: bool,
}

const REAL: Rules = Rules {
    tag: true,
    revision: true,
    fence: true,
    margin: true,
};

/// How far the exploration goes.
#[derive(Debug, Clone, Copy)]
struct Bounds {
    requests: u8,
    restarts: u8,
    lapses: u8,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum Beat {
    Idle,
    /// Step 1 done: the document the gateway said it serves (its tag and revision), and
    /// whether the tenant was moving from it.
    Read {
        from: G,
        tag: Doc,
        moving: bool,
    },
    /// Step 2 done: the cached document is at least as new as step 1.
    Refreshed {
        from: G,
        tag: Doc,
        moving: bool,
    },
    /// Step 3 done: whether the tenant is to be released, and the revision the gateway's
    /// document was labelled with.
    Compared {
        from: G,
        release: bool,
        rev: u8,
    },
}

impl Beat {
    /// The gateway whose heartbeat is in flight.
    fn from(self) -> Option<G> {
        match self {
            Beat::Idle => None,
            Beat::Read { from, .. }
            | Beat::Refreshed { from, .. }
            | Beat::Compared { from, .. } => Some(from),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
struct Replica {
    /// Per gateway, the cached document (`None`: not cached).
    cache: [Option<Doc>; 2],
    beat: Beat,
    /// Whether the answer to the heartbeat in flight renews the gateway's lease: not once the
    /// control plane saw the lease expired after recording it (the renewal runs from when it
    /// was sent, so by then it is over too).
    renews: bool,
}

const FRESH: Replica = Replica {
    cache: [None, None],
    beat: Beat::Idle,
    renews: false,
};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct Gateway {
    /// The served file.
    file: Doc,
    /// A document fetched over HTTP and not yet swapped in (the sync loop is sequential), and
    /// whether a fence happened since it was fetched.
    fetched: Option<(Doc, bool)>,
    /// A file written by `config sync` whose acknowledgement has not run yet.
    written: Option<Doc>,
    /// Its lease lapsed on its own clock (and, with the fence, its file holds no tenant).
    lapsed: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct State {
    place: Place,
    /// The config revision (every placement change bumps it).
    rev: u8,
    gateways: [Gateway; 2],
    replicas: [Replica; 2],
    /// The control plane sees the gateway's lease expired (its last heartbeat is older than
    /// the lease plus the margin).
    expired: [bool; 2],
    requests_left: u8,
    restarts_left: u8,
    lapses_left: u8,
}

impl State {
    fn initial(bounds: Bounds) -> Self {
        let gw = |holds| Gateway {
            file: (holds, 0),
            fetched: None,
            written: None,
            lapsed: false,
        };
        State {
            place: Place::Placed(0),
            rev: 0,
            gateways: [gw(true), gw(false)],
            replicas: [FRESH, FRESH],
            expired: [false, false],
            requests_left: bounds.requests,
            restarts_left: bounds.restarts,
            lapses_left: bounds.lapses,
        }
    }

    /// No account in two served files.
    fn safe(&self) -> bool {
        !(self.gateways[0].file.0 && self.gateways[1].file.0)
    }

    /// A document of `g` rendered now.
    fn render(&self, g: G) -> Doc {
        (self.place.holds(g), self.rev)
    }

    /// Whether a document labelled `rev` acknowledges the current move.
    fn proves(&self, rules: Rules, rev: u8) -> bool {
        match self.place {
            Place::Moving { rev: Some(m), .. } => !rules.revision || rev >= m,
            Place::Moving { rev: None, .. } => !rules.revision,
            Place::Placed(_) => false,
        }
    }

    /// The same state with its revisions replaced by their ranks and its replicas sorted.
    fn canonical(mut self) -> Self {
        let mut revs = vec![self.rev];
        let mut note = |d: Option<Doc>| {
            if let Some((_, r)) = d {
                revs.push(r);
            }
        };
        for g in &self.gateways {
            note(Some(g.file));
            note(g.fetched.map(|(d, _)| d));
            note(g.written);
        }
        for r in &self.replicas {
            note(r.cache[0]);
            note(r.cache[1]);
            match r.beat {
                Beat::Idle => {}
                Beat::Read { tag, .. } | Beat::Refreshed { tag, .. } => note(Some(tag)),
                Beat::Compared { rev, .. } => note(Some((false, rev))),
            }
        }
        if let Place::Moving { rev: Some(m), .. } = self.place {
            revs.push(m);
        }
        revs.sort_unstable();
        revs.dedup();
        let rank = |r: u8| revs.iter().position(|&x| x == r).unwrap_or(0) as u8;
        let doc = |d: Doc| (d.0, rank(d.1));
        self.rev = rank(self.rev);
        if let Place::Moving { from, to, rev } = self.place {
            self.place = Place::Moving {
                from,
                to,
                rev: rev.map(rank),
            };
        }
        for g in &mut self.gateways {
            g.file = doc(g.file);
            g.fetched = g.fetched.map(|(d, stale)| (doc(d), stale));
            g.written = g.written.map(doc);
        }
        for r in &mut self.replicas {
            r.cache = r.cache.map(|c| c.map(doc));
            r.beat = match r.beat {
                Beat::Idle => Beat::Idle,
                Beat::Read { from, tag, moving } => Beat::Read {
                    from,
                    tag: doc(tag),
                    moving,
                },
                Beat::Refreshed { from, tag, moving } => Beat::Refreshed {
                    from,
                    tag: doc(tag),
                    moving,
                },
                Beat::Compared { from, release, rev } => Beat::Compared {
                    from,
                    release,
                    rev: rank(rev),
                },
            };
        }
        self.replicas.sort_unstable();
        self
    }

    /// Every state one step away.
    fn next(&self, rules: Rules) -> Vec<State> {
        let mut out = Vec::new();
        // An operator asks for the tenant on `to` (`placement::request`, capacity aside; an
        // expired gateway is refused as down).
        if self.requests_left > 0 {
            for to in GATEWAYS {
                if self.expired[usize::from(to)] {
                    continue;
                }
                let mut s = *self;
                s.requests_left -= 1;
                s.rev += 1;
                s.place = match self.place {
                    Place::Placed(g) if g == to => continue,
                    Place::Placed(from) => Place::Moving {
                        from,
                        to,
                        rev: None,
                    },
                    Place::Moving { from, .. } if from == to => Place::Placed(from),
                    Place::Moving { from, .. } => Place::Moving {
                        from,
                        to,
                        rev: None,
                    },
                };
                out.push(s);
            }
        }
        // The stamp, in its own transaction after the move committed: the revision read now.
        if let Place::Moving {
            from,
            to,
            rev: None,
        } = self.place
        {
            let mut s = *self;
            s.place = Place::Moving {
                from,
                to,
                rev: Some(self.rev),
            };
            out.push(s);
        }
        for g in GATEWAYS {
            let gw = self.gateways[usize::from(g)];
            // The sync loop is sequential: a fetch, a swap, a heartbeat (awaiting its answer),
            // a database pass and its acknowledgement never overlap.
            let beating = self.replicas.iter().any(|r| r.beat.from() == Some(g));
            let busy = gw.fetched.is_some() || gw.written.is_some() || beating;
            // `GET /config` through replica r: the cache is brought to the current revision.
            for r in 0..2 {
                if !busy {
                    let mut s = *self;
                    let doc = self.render(g);
                    s.replicas[r].cache[usize::from(g)] = Some(doc);
                    s.gateways[usize::from(g)].fetched = Some((doc, false));
                    out.push(s);
                }
            }
            // The atomic swap of the fetched file, under the fence's lock: only with a valid
            // lease and no fence since the fetch (else the document is dropped).
            if let Some((doc, stale)) = gw.fetched {
                let mut s = *self;
                if !rules.fence || (!gw.lapsed && !stale) {
                    s.gateways[usize::from(g)].file = doc;
                }
                s.gateways[usize::from(g)].fetched = None;
                out.push(s);
            }
            // `config sync --gateway g`, step 1: the lease renewed (a heartbeat row), then the
            // file from the rows read now.
            if !busy {
                let mut s = *self;
                s.expired[usize::from(g)] = false;
                s.gateways[usize::from(g)].lapsed = false;
                let doc = s.render(g);
                s.gateways[usize::from(g)].file = doc;
                s.gateways[usize::from(g)].written = Some(doc);
                out.push(s);
            }
            // Step 2: moves away from g that the written file does not hold complete.
            if let Some(doc) = gw.written {
                let mut s = *self;
                s.gateways[usize::from(g)].written = None;
                if let Place::Moving { from, to, .. } = self.place
                    && from == g
                    && (!doc.0 || !rules.tag)
                    && self.proves(rules, doc.1)
                {
                    s.rev += 1;
                    s.place = Place::Placed(to);
                }
                out.push(s);
            }
            // A heartbeat from g (after its swap) reaching replica r: step 1 records the lease.
            for r in 0..2 {
                if !busy && self.replicas[r].beat == Beat::Idle {
                    let mut s = *self;
                    let moving = matches!(self.place, Place::Moving { from, .. } if from == g);
                    s.expired[usize::from(g)] = false;
                    s.replicas[r].renews = true;
                    s.replicas[r].beat = Beat::Read {
                        from: g,
                        tag: gw.file,
                        moving,
                    };
                    out.push(s);
                }
            }
            // The gateway's lease lapses on its own clock: the watchdog fences the file.
            if self.lapses_left > 0 && !gw.lapsed {
                let mut s = *self;
                s.lapses_left -= 1;
                s.gateways[usize::from(g)].lapsed = true;
                if rules.fence {
                    s.gateways[usize::from(g)].file.0 = false;
                    if let Some((doc, _)) = gw.fetched {
                        s.gateways[usize::from(g)].fetched = Some((doc, true));
                    }
                }
                out.push(s);
            }
            // The control plane sees the lease expired: only after the gateway's own lapse (the
            // margin), and until its next heartbeat.
            if !self.expired[usize::from(g)] && (gw.lapsed || !rules.margin) {
                let mut s = *self;
                s.expired[usize::from(g)] = true;
                for replica in &mut s.replicas {
                    if replica.beat.from() == Some(g) {
                        replica.renews = false;
                    }
                }
                out.push(s);
            }
            // The sweep, one transaction under the fleet lock on whichever replica: a move
            // away from the expired gateway completes; its tenant fails over to the other
            // gateway when that one is not expired too.
            if self.expired[usize::from(g)] {
                let other = 1 - g;
                let next = match self.place {
                    Place::Moving { from, to, .. } if from == g => Some(Place::Placed(to)),
                    Place::Placed(p) if p == g && !self.expired[usize::from(other)] => {
                        Some(Place::Placed(other))
                    }
                    _ => None,
                };
                if let Some(place) = next {
                    let mut s = *self;
                    s.rev += 1;
                    s.place = place;
                    out.push(s);
                }
            }
        }
        for r in 0..2 {
            let replica = self.replicas[r];
            match replica.beat {
                Beat::Idle => {}
                // Step 2: the cache of that gateway brought to the current revision.
                Beat::Read { from, tag, moving } => {
                    let mut s = *self;
                    s.replicas[r].cache[usize::from(from)] = Some(self.render(from));
                    s.replicas[r].beat = Beat::Refreshed { from, tag, moving };
                    out.push(s);
                }
                // Step 3: under the cache's lock, the tag compared with the cached document
                // (which another request may have refreshed since step 2).
                Beat::Refreshed { from, tag, moving } => {
                    let mut s = *self;
                    // Tags compare content: the revision label is not part of the document.
                    let cached = replica.cache[usize::from(from)].map(|(holds, _)| holds);
                    let matches = cached == Some(tag.0) || !rules.tag;
                    let release =
                        moving && matches && cached.is_some_and(|holds| !holds || !rules.tag);
                    s.replicas[r].beat = Beat::Compared {
                        from,
                        release,
                        rev: tag.1,
                    };
                    out.push(s);
                }
                // Step 4: the moves still moving from that gateway complete; the answer
                // renews the gateway's own lease.
                Beat::Compared { from, release, rev } => {
                    let mut s = *self;
                    s.replicas[r].beat = Beat::Idle;
                    s.replicas[r].renews = false;
                    if replica.renews {
                        s.gateways[usize::from(from)].lapsed = false;
                    }
                    if release
                        && let Place::Moving { from: f, to, .. } = self.place
                        && f == from
                        && self.proves(rules, rev)
                    {
                        s.rev += 1;
                        s.place = Place::Placed(to);
                    }
                    out.push(s);
                }
            }
            // A restart loses the replica's memory (the rows stay).
            if self.restarts_left > 0 {
                let mut s = *self;
                s.restarts_left -= 1;
                s.replicas[r] = FRESH;
                out.push(s);
            }
        }
        out
    }
}

/// What an exploration found.
#[derive(Debug)]
struct Outcome {
    states: usize,
    /// The first unsafe state found, with the states leading to it from the start.
    unsafe_trace: Option<Vec<State>>,
    /// B came to serve the tenant in some state (the protocol is not vacuous).
    moved: bool,
    /// A sweep placed the tenant on B while A's lease was expired (failover happens).
    failed_over: bool,
}

/// Explores every reachable state (up to the reductions) breadth first.
fn explore(rules: Rules, bounds: Bounds) -> Outcome {
    let start = State::initial(bounds).canonical();
    // Every state reached, in the order reached (so the breadth-first queue is a cursor into
    // it), with the index of the one it was first reached from; and the same states as a set.
    // No state is stored more than twice: the full bounds reach tens of millions.
    let mut reached: Vec<(State, u32)> = vec![(start, u32::MAX)];
    let mut seen: HashSet<State> = HashSet::from([start]);
    let mut moved = false;
    let mut failed_over = false;
    let mut cursor = 0;
    while let Some(&(state, _)) = reached.get(cursor) {
        if !state.safe() {
            let mut trace = Vec::new();
            let mut at = cursor;
            while let Some(&(s, parent)) = reached.get(at) {
                trace.push(s);
                at = parent as usize;
            }
            trace.reverse();
            return Outcome {
                states: seen.len(),
                unsafe_trace: Some(trace),
                moved,
                failed_over,
            };
        }
        moved |= state.gateways[1].file.0;
        failed_over |= state.expired[0] && state.place == Place::Placed(1);
        let Ok(parent) = u32::try_from(cursor) else {
            panic!("more than 2^32 states: raise the parent index's width");
        };
        for next in state.next(rules) {
            let next = next.canonical();
            if seen.insert(next) {
                reached.push((next, parent));
            }
        }
        cursor += 1;
    }
    Outcome {
        states: seen.len(),
        unsafe_trace: None,
        moved,
        failed_over,
    }
}

/// The bounds CI explores on every test run: one move and one lapse, no restart.
const REDUCED: Bounds = Bounds {
    requests: 1,
    restarts: 0,
    lapses: 1,
};

/// The full bounds: three moves, a restart and two lapses.
const FULL: Bounds = Bounds {
    requests: 3,
    restarts: 1,
    lapses: 2,
};

fn check_real(bounds: Bounds) {
    let o = explore(REAL, bounds);
    if let Some(trace) = &o.unsafe_trace {
        let steps: Vec<String> = trace.iter().map(|s| format!("{s:?}")).collect();
        panic!(
            "a double serve after exploring {} states:\n{}",
            o.states,
            steps.join("\n")
        );
    }
    assert!(o.moved, "a move completes in some interleaving");
    assert!(o.failed_over, "a failover happens in some interleaving");
    assert!(
        o.states > 1_000,
        "the model explores a real state space: {}",
        o.states
    );
    eprintln!("{bounds:?}: {} states, no double serve", o.states);
}

fn check_mutant(rules: Rules, bounds: Bounds) {
    let o = explore(rules, bounds);
    assert!(
        o.unsafe_trace.is_some(),
        "the mutant {rules:?} must be caught ({} states explored)",
        o.states
    );
}

#[test]
fn no_account_is_ever_in_two_served_files_reduced() {
    check_real(REDUCED);
}

#[test]
fn the_reduced_check_catches_the_lease_mutants() {
    for rules in [
        Rules {
            fence: false,
            ..REAL
        },
        Rules {
            margin: false,
            ..REAL
        },
    ] {
        check_mutant(rules, REDUCED);
    }
}

#[test]
#[ignore = "exhaustive at the full bounds: run in release, cargo test --release -p tenant-service --test move_protocol -- --ignored"]
fn no_account_is_ever_in_two_served_files() {
    check_real(FULL);
}

#[test]
#[ignore = "exhaustive at the full bounds: run in release, cargo test --release -p tenant-service --test move_protocol -- --ignored"]
fn at_the_full_bounds_the_checker_catches_every_mutant() {
    for rules in [
        Rules {
            revision: false,
            ..REAL
        },
        Rules { tag: false, ..REAL },
        Rules {
            fence: false,
            ..REAL
        },
        Rules {
            margin: false,
            ..REAL
        },
    ] {
        check_mutant(rules, FULL);
    }
}
