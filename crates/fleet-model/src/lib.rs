//! A model check of the gateway fleet's move protocol (`tenant_service::fleet::placement`, the
//! heartbeat of `ControlPlane::heartbeat`, `config sync`'s acknowledgement and fence, and the
//! lease sweep of `tenant_service::fleet::leases`; `docs/fleet.md`): every interleaving of move
//! requests, gateways fetching and swapping their files, heartbeats processed step by step by two
//! control-plane replicas, file syncs acknowledging, replica restarts, leases lapsing on a gateway
//! (which fences itself), leases expiring at the control plane and the sweep acting on them
//! (completing a move away from the silent gateway, failing its tenant over), explored
//! exhaustively by [`explore`]. The property: in no reachable state is the account in two
//! gateways' served files.
//!
//! The model keeps what the implementation stores (the placement row, the gateways' last
//! heartbeats) apart from what each replica holds in memory (its cached documents and a
//! heartbeat in flight, lost on restart) and what each gateway serves (its file). Each step is
//! one transaction or one cache operation of the code, so a step of one replica can fall between
//! two steps of another:
//! - a heartbeat records the lease and reads the moving rows (step 1), brings its cached
//!   document up to date (step 2), compares the tag and lists the absent tenants (step 3,
//!   possibly after another request refreshed the cache again), and completes the moves still
//!   moving from that gateway (step 4);
//! - heartbeats come from two kinds of sender. `config sync`'s: its answer renews the gateway's
//!   own lease, and the sync loop waits for it (fetch, swap, heartbeat never overlap: the checker
//!   found the double serve when a fetch made while the lease was lapsed was swapped in after an
//!   older heartbeat's answer renewed it, after the tenant had failed over). And any other client
//!   of `POST /gateway/heartbeat` with the gateway's token (the bridge plugin, a script): at any
//!   moment, even in the middle of the sync's pass, with the tag and revision of the file the
//!   gateway serves then; its answer renews nothing the fence watches;
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
//! after it committed, and only a document at that revision or later acknowledges it. Without
//! that rule the checker finds a double serve (a heartbeat of another sender, sent while the
//! tenant was away, processed after it came back, fetched again, and left again). The mutants
//! without the fence, without the margin, or without the revision rule are caught; the one
//! without the tag comparison is not: with honest revision labels the revision rule already
//! proves what the tag comparison does (it stays, as a second check on what a sender claims).
//!
//! Nothing bounds the exploration: any number of move requests, restarts and lapses, in any
//! order. It ends because the reachable states are finite once three exact reductions are
//! applied:
//! - a revision only ever matters by whether it is the current one. A move's stamp is the
//!   revision read after it committed, and every later placement change both bumps the revision
//!   and ends or restarts the move (clearing the stamp); so while a stamp exists it is the
//!   current revision, and "rendered at the stamp or later" is "rendered at the current
//!   revision". Each revision in a state is replaced by that one bit (the cached documents' by
//!   nothing: the protocol compares their content only);
//! - the two replicas are interchangeable, and so are the two gateways (every rule treats them
//!   alike, and so does the property): a state and its mirror images are one state.
//!
//! A state then packs into 54 bits ([`State::pack`]), so the explored set of tens of millions of
//! states fits in well under a gigabyte. Every kind of step is checked to happen somewhere in
//! the exploration (a restart in the middle of a heartbeat, a fence dropping a fetched document,
//! a sweep failing a tenant over, …), so no part of the model is dead.

use std::collections::HashSet;
use std::hash::{BuildHasherDefault, Hasher};

/// A gateway: `A` (0) or `B` (1).
type G = u8;

/// Gateways `A` (0) and `B` (1).
const GATEWAYS: [G; 2] = [0, 1];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
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

/// Which rules the protocol applies (the real one, [`REAL`], applies all).
#[derive(Debug, Clone, Copy)]
pub struct Rules {
    /// A heartbeat releases only with the tag of the current document.
    pub tag: bool,
    /// Only a document rendered at the move's revision or later acknowledges it.
    pub revision: bool,
    /// A gateway whose lease lapsed writes a document without tenants and swaps in nothing
    /// fetched before.
    pub fence: bool,
    /// The control plane acts on a lease only after the gateway's own lapse.
    pub margin: bool,
}

/// Who sends heartbeats.
#[derive(Debug, Clone, Copy)]
pub struct Senders {
    /// Besides `config sync`, another client of `POST /gateway/heartbeat` (the bridge plugin, a
    /// script), at any moment.
    pub others: bool,
}

/// `config sync` alone: the setup `docs/fleet.md` describes (its state space is small enough
/// for every `cargo test`).
pub const SYNC_ONLY: Senders = Senders { others: false };

/// `config sync` and any other sender (tens of millions of states: minutes, optimised).
pub const EVERY_SENDER: Senders = Senders { others: true };

/// The protocol as implemented.
pub const REAL: Rules = Rules {
    tag: true,
    revision: true,
    fence: true,
    margin: true,
};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
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

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Replica {
    /// Per gateway, the cached document (`None`: not cached).
    cache: [Option<Doc>; 2],
    beat: Beat,
    /// Whether the heartbeat in flight is `config sync`'s (its loop waits for the answer).
    sync: bool,
    /// Whether the answer to the heartbeat in flight renews the gateway's lease: only a sync's,
    /// and not once the control plane saw the lease expired after recording it (the renewal
    /// runs from when it was sent, so by then it is over too).
    renews: bool,
}

const FRESH: Replica = Replica {
    cache: [None, None],
    beat: Beat::Idle,
    sync: false,
    renews: false,
};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
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

/// One state of the system: the stored rows, each replica's memory, each gateway's files.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct State {
    place: Place,
    /// The config revision (every placement change bumps it).
    rev: u8,
    gateways: [Gateway; 2],
    replicas: [Replica; 2],
    /// The control plane sees the gateway's lease expired (its last heartbeat is older than
    /// the lease plus the margin).
    expired: [bool; 2],
}

impl State {
    fn initial() -> Self {
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

    /// The same state with each revision replaced by whether it is the current one (the
    /// cached documents' by nothing) and its replicas sorted.
    fn normal(mut self) -> Self {
        let current = self.rev;
        let rev = |r: u8| u8::from(r == current);
        let doc = |d: Doc| (d.0, rev(d.1));
        debug_assert!(
            !matches!(self.place, Place::Moving { rev: Some(m), .. } if m != current),
            "a stamp is the current revision"
        );
        self.rev = rev(self.rev);
        if let Place::Moving {
            from,
            to,
            rev: stamp,
        } = self.place
        {
            self.place = Place::Moving {
                from,
                to,
                rev: stamp.map(rev),
            };
        }
        for g in &mut self.gateways {
            g.file = doc(g.file);
            g.fetched = g.fetched.map(|(d, stale)| (doc(d), stale));
            g.written = g.written.map(doc);
        }
        for r in &mut self.replicas {
            r.cache = r.cache.map(|c| c.map(|(holds, _)| (holds, 0)));
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
                Beat::Compared {
                    from,
                    release,
                    rev: r,
                } => Beat::Compared {
                    from,
                    release,
                    rev: rev(r),
                },
            };
        }
        self.replicas.sort_unstable();
        self
    }

    /// The same state with the gateways' names swapped.
    fn mirrored(mut self) -> Self {
        let flip = |g: G| 1 - g;
        self.place = match self.place {
            Place::Placed(g) => Place::Placed(flip(g)),
            Place::Moving { from, to, rev } => Place::Moving {
                from: flip(from),
                to: flip(to),
                rev,
            },
        };
        self.gateways.swap(0, 1);
        self.expired.swap(0, 1);
        for r in &mut self.replicas {
            r.cache.swap(0, 1);
            r.beat = match r.beat {
                Beat::Idle => Beat::Idle,
                Beat::Read { from, tag, moving } => Beat::Read {
                    from: flip(from),
                    tag,
                    moving,
                },
                Beat::Refreshed { from, tag, moving } => Beat::Refreshed {
                    from: flip(from),
                    tag,
                    moving,
                },
                Beat::Compared { from, release, rev } => Beat::Compared {
                    from: flip(from),
                    release,
                    rev,
                },
            };
        }
        self
    }

    /// The key of the state's class (it, its mirror image, and the same with the revisions and
    /// replicas reduced): the packed form of the one whose tenant is placed on, or moving from,
    /// gateway 0.
    fn key(self) -> u64 {
        let (Place::Placed(g) | Place::Moving { from: g, .. }) = self.place;
        let oriented = if g == 0 { self } else { self.mirrored() };
        oriented.normal().pack()
    }

    /// The state in 54 bits; [`State::unpack`] is its inverse on reduced states.
    fn pack(&self) -> u64 {
        let mut w = Bits::default();
        w.put(
            match self.place {
                Place::Placed(g) => u64::from(g),
                Place::Moving {
                    from, rev: None, ..
                } => 2 + u64::from(from),
                Place::Moving {
                    from, rev: Some(m), ..
                } => 4 + 2 * u64::from(from) + u64::from(m),
            },
            3,
        );
        w.put(u64::from(self.rev), 1);
        for g in &self.gateways {
            w.put(doc_bits(g.file), 2);
            w.put(
                g.fetched
                    .map_or(0, |(d, stale)| 1 + 2 * doc_bits(d) + u64::from(stale)),
                4,
            );
            w.put(opt_doc_bits(g.written), 3);
            w.put(u64::from(g.lapsed), 1);
        }
        for r in &self.replicas {
            w.put(opt_doc_bits(r.cache[0]), 3);
            w.put(opt_doc_bits(r.cache[1]), 3);
            w.put(
                match r.beat {
                    Beat::Idle => 0,
                    Beat::Read { from, tag, moving } => {
                        1 + 2 * (4 * u64::from(from) + doc_bits(tag)) + u64::from(moving)
                    }
                    Beat::Refreshed { from, tag, moving } => {
                        17 + 2 * (4 * u64::from(from) + doc_bits(tag)) + u64::from(moving)
                    }
                    Beat::Compared { from, release, rev } => {
                        33 + 4 * u64::from(from) + 2 * u64::from(release) + u64::from(rev)
                    }
                },
                6,
            );
            w.put(u64::from(r.sync), 1);
            w.put(u64::from(r.renews), 1);
        }
        w.put(u64::from(self.expired[0]), 1);
        w.put(u64::from(self.expired[1]), 1);
        w.0
    }

    /// The state [`State::pack`] packed.
    fn unpack(bits: u64) -> Self {
        let mut r = Bits(bits, 0);
        let place = match r.take(3) {
            g @ 0..2 => Place::Placed(g as G),
            p @ 2..4 => {
                let from = (p - 2) as G;
                Place::Moving {
                    from,
                    to: 1 - from,
                    rev: None,
                }
            }
            p => {
                let from = ((p - 4) / 2) as G;
                Place::Moving {
                    from,
                    to: 1 - from,
                    rev: Some(((p - 4) % 2) as u8),
                }
            }
        };
        let rev = r.take(1) as u8;
        let gateway = |r: &mut Bits| Gateway {
            file: bits_doc(r.take(2)),
            fetched: match r.take(4) {
                0 => None,
                f => Some((bits_doc((f - 1) / 2), (f - 1) % 2 == 1)),
            },
            written: bits_opt_doc(r.take(3)),
            lapsed: r.take(1) == 1,
        };
        let gateways = [gateway(&mut r), gateway(&mut r)];
        let replica = |r: &mut Bits| {
            let cache = [bits_opt_doc(r.take(3)), bits_opt_doc(r.take(3))];
            let beat = match r.take(6) {
                0 => Beat::Idle,
                b @ 1..33 => {
                    let v = (b - 1) % 16;
                    let (from, tag, moving) = ((v / 8) as G, bits_doc((v / 2) % 4), v % 2 == 1);
                    if b < 17 {
                        Beat::Read { from, tag, moving }
                    } else {
                        Beat::Refreshed { from, tag, moving }
                    }
                }
                b => {
                    let v = b - 33;
                    Beat::Compared {
                        from: (v / 4) as G,
                        release: (v / 2) % 2 == 1,
                        rev: (v % 2) as u8,
                    }
                }
            };
            Replica {
                cache,
                beat,
                sync: r.take(1) == 1,
                renews: r.take(1) == 1,
            }
        };
        let replicas = [replica(&mut r), replica(&mut r)];
        let expired = [r.take(1) == 1, r.take(1) == 1];
        State {
            place,
            rev,
            gateways,
            replicas,
            expired,
        }
    }

    /// Every state one step away, each with the kind of step that leads to it, into `out`.
    fn next(&self, rules: Rules, senders: Senders, out: &mut Vec<(Step, State)>) {
        out.clear();
        // An operator asks for the tenant on `to` (`placement::request`, capacity aside; an
        // expired gateway is refused as down).
        for to in GATEWAYS {
            if self.expired[usize::from(to)] {
                continue;
            }
            let mut s = *self;
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
            out.push((Step::Request, s));
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
            out.push((Step::Stamp, s));
        }
        for g in GATEWAYS {
            let gw = self.gateways[usize::from(g)];
            // The sync loop is sequential: a fetch, a swap, a heartbeat (awaiting its answer),
            // a database pass and its acknowledgement never overlap.
            let beating = self
                .replicas
                .iter()
                .any(|r| r.sync && r.beat.from() == Some(g));
            let busy = gw.fetched.is_some() || gw.written.is_some() || beating;
            // `GET /config` through replica r: the cache is brought to the current revision.
            for r in 0..2 {
                if !busy {
                    let mut s = *self;
                    let doc = self.render(g);
                    s.replicas[r].cache[usize::from(g)] = Some(doc);
                    s.gateways[usize::from(g)].fetched = Some((doc, false));
                    out.push((Step::Fetch, s));
                }
            }
            // The atomic swap of the fetched file, under the fence's lock: only with a valid
            // lease and no fence since the fetch (else the document is dropped).
            if let Some((doc, stale)) = gw.fetched {
                let mut s = *self;
                let step = if !rules.fence || (!gw.lapsed && !stale) {
                    s.gateways[usize::from(g)].file = doc;
                    Step::Swap
                } else {
                    Step::SwapDropped
                };
                s.gateways[usize::from(g)].fetched = None;
                out.push((step, s));
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
                out.push((Step::SyncWrite, s));
            }
            // Step 2: moves away from g that the written file does not hold complete.
            if let Some(doc) = gw.written {
                let mut s = *self;
                s.gateways[usize::from(g)].written = None;
                let mut step = Step::SyncAck;
                if let Place::Moving { from, to, .. } = self.place
                    && from == g
                    && (!doc.0 || !rules.tag)
                    && self.proves(rules, doc.1)
                {
                    s.rev += 1;
                    s.place = Place::Placed(to);
                    step = Step::SyncAckCompletes;
                }
                out.push((step, s));
            }
            // A heartbeat from g reaching replica r: step 1 records the lease. The sync's comes
            // after its swap and renews the gateway's lease; another sender's comes at any
            // moment and renews nothing the fence watches.
            for r in 0..2 {
                if self.replicas[r].beat != Beat::Idle {
                    continue;
                }
                for sync in [true, false] {
                    if (sync && busy) || (!sync && !senders.others) {
                        continue;
                    }
                    let mut s = *self;
                    let moving = matches!(self.place, Place::Moving { from, .. } if from == g);
                    s.expired[usize::from(g)] = false;
                    s.replicas[r].sync = sync;
                    s.replicas[r].renews = sync;
                    s.replicas[r].beat = Beat::Read {
                        from: g,
                        tag: gw.file,
                        moving,
                    };
                    let step = if sync {
                        Step::BeatRecords
                    } else {
                        Step::OtherBeatRecords
                    };
                    out.push((step, s));
                }
            }
            // The gateway's lease lapses on its own clock: the watchdog fences the file.
            if !gw.lapsed {
                let mut s = *self;
                s.gateways[usize::from(g)].lapsed = true;
                if rules.fence {
                    s.gateways[usize::from(g)].file.0 = false;
                    if let Some((doc, _)) = gw.fetched {
                        s.gateways[usize::from(g)].fetched = Some((doc, true));
                    }
                }
                out.push((Step::Lapse, s));
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
                out.push((Step::Expire, s));
            }
            // The sweep, one transaction under the fleet lock on whichever replica: a move
            // away from the expired gateway completes; its tenant fails over to the other
            // gateway when that one is not expired too.
            if self.expired[usize::from(g)] {
                let other = 1 - g;
                let next = match self.place {
                    Place::Moving { from, to, .. } if from == g => {
                        Some((Step::SweepCompletes, Place::Placed(to)))
                    }
                    Place::Placed(p) if p == g && !self.expired[usize::from(other)] => {
                        Some((Step::SweepFailsOver, Place::Placed(other)))
                    }
                    _ => None,
                };
                if let Some((step, place)) = next {
                    let mut s = *self;
                    s.rev += 1;
                    s.place = place;
                    out.push((step, s));
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
                    out.push((Step::BeatRefreshes, s));
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
                    out.push((Step::BeatCompares, s));
                }
                // Step 4: the moves still moving from that gateway complete; the answer
                // renews the gateway's own lease.
                Beat::Compared { from, release, rev } => {
                    let mut s = *self;
                    s.replicas[r].beat = Beat::Idle;
                    s.replicas[r].sync = false;
                    s.replicas[r].renews = false;
                    if replica.renews {
                        s.gateways[usize::from(from)].lapsed = false;
                    }
                    let mut step = Step::BeatAnswers;
                    if release
                        && let Place::Moving { from: f, to, .. } = self.place
                        && f == from
                        && self.proves(rules, rev)
                    {
                        s.rev += 1;
                        s.place = Place::Placed(to);
                        step = Step::BeatCompletes;
                    }
                    out.push((step, s));
                }
            }
            // A restart loses the replica's memory (the rows stay).
            let mut s = *self;
            s.replicas[r] = FRESH;
            let step = if replica.beat == Beat::Idle {
                Step::Restart
            } else {
                Step::RestartMidBeat
            };
            out.push((step, s));
        }
    }
}

/// The kinds of step, to check that each happens somewhere.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// An operator asks for the tenant on a gateway (a move, or a move undone).
    Request,
    /// A move's row is stamped with the revision read after it committed.
    Stamp,
    /// A gateway fetches its document (`GET /config`).
    Fetch,
    /// A fetched document is swapped in as the served file.
    Swap,
    /// A swap that drops its document: the lease lapsed, or a fence came since the fetch.
    SwapDropped,
    /// `config sync` renews the lease and writes the file.
    SyncWrite,
    /// `config sync` acknowledges its file, completing nothing.
    SyncAck,
    /// `config sync` acknowledges its file and a move away from its gateway completes.
    SyncAckCompletes,
    /// `config sync`'s heartbeat reaches a replica.
    BeatRecords,
    /// Another sender's heartbeat reaches a replica.
    OtherBeatRecords,
    /// A heartbeat brings the replica's cached document up to date.
    BeatRefreshes,
    /// A heartbeat compares its tag with the cached document.
    BeatCompares,
    /// A heartbeat is answered, completing nothing.
    BeatAnswers,
    /// A heartbeat is answered and a move away from its gateway completes.
    BeatCompletes,
    /// A gateway's lease lapses on its own clock (it fences).
    Lapse,
    /// The control plane sees a gateway's lease expired.
    Expire,
    /// The sweep completes a move away from an expired gateway.
    SweepCompletes,
    /// The sweep fails a tenant over from an expired gateway.
    SweepFailsOver,
    /// A replica restarts with no heartbeat in flight.
    Restart,
    /// A replica restarts in the middle of a heartbeat.
    RestartMidBeat,
}

/// Every kind of step.
pub const EVERY_STEP: [Step; 20] = [
    Step::Request,
    Step::Stamp,
    Step::Fetch,
    Step::Swap,
    Step::SwapDropped,
    Step::SyncWrite,
    Step::SyncAck,
    Step::SyncAckCompletes,
    Step::BeatRecords,
    Step::OtherBeatRecords,
    Step::BeatRefreshes,
    Step::BeatCompares,
    Step::BeatAnswers,
    Step::BeatCompletes,
    Step::Lapse,
    Step::Expire,
    Step::SweepCompletes,
    Step::SweepFailsOver,
    Step::Restart,
    Step::RestartMidBeat,
];

/// A document's two bits: whether it holds the tenant, and its (reduced) revision.
fn doc_bits((holds, rev): Doc) -> u64 {
    debug_assert!(rev < 2, "a reduced revision is one bit");
    2 * u64::from(holds) + u64::from(rev)
}

fn bits_doc(b: u64) -> Doc {
    (b / 2 == 1, (b % 2) as u8)
}

/// `None` as 0, a document as 1 + its bits.
fn opt_doc_bits(d: Option<Doc>) -> u64 {
    d.map_or(0, |d| 1 + doc_bits(d))
}

fn bits_opt_doc(b: u64) -> Option<Doc> {
    b.checked_sub(1).map(bits_doc)
}

/// A little-endian bit field writer and reader: the value and the next free bit.
#[derive(Default)]
struct Bits(u64, u32);

impl Bits {
    fn put(&mut self, v: u64, width: u32) {
        debug_assert!(v < 1 << width, "{v} does not fit in {width} bits");
        self.0 |= v << self.1;
        self.1 += width;
        debug_assert!(self.1 <= 64);
    }

    fn take(&mut self, width: u32) -> u64 {
        let v = (self.0 >> self.1) & ((1 << width) - 1);
        self.1 += width;
        v
    }
}

/// The hash of a packed state: the SplitMix64 finaliser (the states differ in few bits, and the
/// set's table indexes by the low bits and tags by the high ones).
#[derive(Default)]
struct Mix(u64);

impl Hasher for Mix {
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }

    fn write_u64(&mut self, v: u64) {
        self.0 = v;
    }

    fn finish(&self) -> u64 {
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}

/// What an exploration found.
#[derive(Debug)]
pub struct Outcome {
    /// How many states (reduced) were reached.
    pub states: usize,
    /// The first unsafe state found, with the states leading to it from the start (shortest:
    /// the exploration is breadth first).
    pub unsafe_trace: Option<Vec<State>>,
    /// The kinds of step taken somewhere.
    pub steps: Vec<Step>,
}

/// Explores every reachable state (up to the reductions) breadth first, and stops at the first
/// in which an account is served twice.
pub fn explore(rules: Rules, senders: Senders) -> Outcome {
    // Every state reached, in the order reached (so the breadth-first queue is a cursor into
    // it), with the index of the one it was first reached from; and the same states as a set.
    let start = State::initial().key();
    let mut order: Vec<u64> = vec![start];
    let mut parents: Vec<u32> = vec![u32::MAX];
    let mut seen: HashSet<u64, BuildHasherDefault<Mix>> = HashSet::default();
    seen.insert(start);
    let mut taken = 0u32;
    let mut cursor = 0;
    let mut next_states = Vec::new();
    let steps = |taken: u32| -> Vec<Step> {
        EVERY_STEP
            .into_iter()
            .filter(|&s| taken & (1 << s as u32) != 0)
            .collect()
    };
    while let Some(&key) = order.get(cursor) {
        let state = State::unpack(key);
        debug_assert_eq!(state.pack(), key, "packing is exact: {state:?}");
        if !state.safe() {
            let mut trace = Vec::new();
            let mut at = cursor;
            while let Some(&k) = order.get(at) {
                trace.push(State::unpack(k));
                at = parents[at] as usize;
            }
            trace.reverse();
            return Outcome {
                states: seen.len(),
                unsafe_trace: Some(trace),
                steps: steps(taken),
            };
        }
        let Ok(parent) = u32::try_from(cursor) else {
            panic!("more than 2^32 states: widen the parent index");
        };
        state.next(rules, senders, &mut next_states);
        for &(step, next) in &next_states {
            taken |= 1 << step as u32;
            let next = next.key();
            if seen.insert(next) {
                order.push(next);
                parents.push(parent);
            }
        }
        cursor += 1;
    }
    Outcome {
        states: seen.len(),
        unsafe_trace: None,
        steps: steps(taken),
    }
}
