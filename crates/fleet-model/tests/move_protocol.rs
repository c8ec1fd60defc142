//! The model check of the move protocol (`fleet_model`): every interleaving, of any length, of
//! moves, syncs, heartbeats on two replicas, restarts, lapses, expiries and sweeps; no account is
//! ever in two served files, and the checker finds the double serve when a rule of the protocol
//! is taken away.
//!
//! With `config sync` as the only heartbeat sender it runs on every `cargo test` (seconds: the
//! crate is optimised in the dev profile). With any other sender too it takes minutes, so it is
//! ignored there and CI runs it once: `cargo test -p fleet-model -- --ignored`.

use fleet_model::{EVERY_SENDER, EVERY_STEP, REAL, Rules, SYNC_ONLY, Senders, Step, explore};

fn check(senders: Senders, at_least: usize) {
    let o = explore(REAL, senders);
    if let Some(trace) = &o.unsafe_trace {
        let steps: Vec<String> = trace.iter().map(|s| format!("{s:?}")).collect();
        panic!(
            "a double serve after exploring {} states:\n{}",
            o.states,
            steps.join("\n")
        );
    }
    let missing: Vec<Step> = EVERY_STEP
        .into_iter()
        .filter(|s| !o.steps.contains(s))
        .filter(|&s| senders.others || s != Step::OtherBeatRecords)
        .collect();
    assert!(missing.is_empty(), "steps never taken: {missing:?}");
    assert!(
        o.states >= at_least,
        "the model explores a real state space: {} states",
        o.states
    );
    eprintln!("{senders:?}: {} states, no double serve", o.states);
}

/// The double serve the checker finds without `rules` (the shortest, breadth first).
fn caught(rules: Rules, senders: Senders) {
    let o = explore(rules, senders);
    let Some(trace) = o.unsafe_trace else {
        panic!(
            "the mutant {rules:?} must be caught with {senders:?} ({} states explored)",
            o.states
        );
    };
    eprintln!(
        "{rules:?}: a double serve after {} steps ({} states explored)",
        trace.len() - 1,
        o.states
    );
}

#[test]
fn with_config_sync_no_account_is_ever_in_two_served_files() {
    check(SYNC_ONLY, 100_000);
}

#[test]
fn with_config_sync_the_checker_catches_the_lease_mutants() {
    caught(
        Rules {
            fence: false,
            ..REAL
        },
        SYNC_ONLY,
    );
    caught(
        Rules {
            margin: false,
            ..REAL
        },
        SYNC_ONLY,
    );
}

#[test]
#[ignore = "minutes, optimised: CI runs it once (cargo test -p fleet-model -- --ignored)"]
fn with_every_sender_no_account_is_ever_in_two_served_files() {
    check(EVERY_SENDER, 10_000_000);
}

/// Another sender's heartbeat, sent while the tenant was away and processed after it came back,
/// must not complete its next move: the revision rule is what stops it.
#[test]
#[ignore = "tens of seconds, optimised: CI runs it once (cargo test -p fleet-model -- --ignored)"]
fn with_every_sender_the_checker_catches_the_revision_mutant() {
    caught(
        Rules {
            revision: false,
            ..REAL
        },
        EVERY_SENDER,
    );
}
