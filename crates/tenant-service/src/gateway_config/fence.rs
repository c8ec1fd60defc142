//! Fencing for `config sync`: a gateway cut off from the control plane stops serving before the
//! control plane gives its tenants to another gateway.
//!
//! The sync renews the gateway's lease (a heartbeat) as it goes. When it has not renewed for one
//! lease — measured on this host's monotonic clock from the moment the last successful renewal
//! was *sent* — a watchdog thread writes a document with **no tenants** over the served file and
//! logs it (the gateway hot-reloads it within about a second). The control plane acts on the
//! lease only once the gateway's last heartbeat, as it *received* it, is older than the lease
//! plus a safety margin (`fleet::FleetConfig::lease_expired`), so the fenced document is in place
//! first as long as the margin covers this clock running slow over one lease, the file swap and
//! the gateway's reload, and the clock offset between the control plane's hosts (`docs/fleet.md`).
//!
//! Every write of the served file goes through [`Fence::write`] under one lock, and only when
//! the lease is valid *and* no fence happened since the pass began ([`Fence::epoch`]): a document
//! fetched or rendered before a fence may hold tenants the control plane has given away since,
//! so it is never written after one.

use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use super::atomic_file::write_if_changed;

/// How often the watchdog looks at the lease.
const WATCHDOG_TICK: Duration = Duration::from_millis(200);

#[derive(Debug)]
struct FenceState {
    lease: Duration,
    started: Instant,
    renewed_at: Option<Instant>,
    epoch: u64,
    fenced: bool,
}

impl FenceState {
    /// Whether a document with tenants may be written: a renewal within the lease (none yet:
    /// not before the first, since the control plane may have expired an earlier lease).
    fn valid(&self, now: Instant) -> bool {
        self.renewed_at
            .is_some_and(|at| now.saturating_duration_since(at) < self.lease)
    }

    /// Whether the lease lapsed: no renewal for a lease (counted from the start before the first
    /// one, which gives a starting sync one lease to renew before it fences).
    fn lapsed(&self, now: Instant) -> bool {
        now.saturating_duration_since(self.renewed_at.unwrap_or(self.started)) >= self.lease
    }
}

/// The fence of one served file (see the module documentation).
#[derive(Debug)]
pub struct Fence {
    out: PathBuf,
    /// The document with no tenants, and its env file (if its secrets mode has one).
    empty: (String, Option<String>),
    state: Mutex<FenceState>,
}

impl Fence {
    /// A fence for the file `out`, writing `empty` (a document with no tenants as the gateway's
    /// sync would write it, with its env file if any) when the lease lapses. Nothing with
    /// tenants is written before the first renewal; the watchdog fences if none comes within a
    /// lease from now.
    pub fn new(out: PathBuf, empty: (String, Option<String>), lease: Duration) -> Arc<Self> {
        Arc::new(Self {
            out,
            empty,
            state: Mutex::new(FenceState {
                lease,
                started: Instant::now(),
                renewed_at: None,
                epoch: 0,
                fenced: false,
            }),
        })
    }

    fn state(&self) -> MutexGuard<'_, FenceState> {
        // A panic while holding the lock left plain data: keep going with it.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The lease (the control plane's answer may change it).
    pub fn set_lease(&self, lease: Duration) {
        self.state().lease = lease;
    }

    /// The lease.
    pub fn lease(&self) -> Duration {
        self.state().lease
    }

    /// Fences so far: take it before renewing, fetching or rendering, and hand it to
    /// [`Fence::write`].
    pub fn epoch(&self) -> u64 {
        self.state().epoch
    }

    /// Whether the served file is the fenced (empty) document.
    pub fn is_fenced(&self) -> bool {
        self.state().fenced
    }

    /// Whether a renewal is due: none yet, or the last one is older than a fifth of the lease.
    pub fn renewal_due(&self) -> bool {
        let s = self.state();
        s.renewed_at.is_none_or(|at| at.elapsed() >= s.lease / 5)
    }

    /// A renewal sent at `sent_at` succeeded: the lease runs from then.
    pub fn renewed(&self, sent_at: Instant) {
        let mut s = self.state();
        if s.renewed_at.is_none_or(|at| at < sent_at) {
            s.renewed_at = Some(sent_at);
        }
    }

    /// Runs `write` (writing the served file) under the fence's lock, if the lease is valid and
    /// no fence happened since `epoch`; `None` (nothing written) otherwise.
    pub fn write<T, E>(
        &self,
        epoch: u64,
        write: impl FnOnce() -> Result<T, E>,
    ) -> Option<Result<T, E>> {
        let mut s = self.state();
        if s.epoch != epoch || !s.valid(Instant::now()) {
            return None;
        }
        let result = write();
        if result.is_ok() && s.fenced {
            s.fenced = false;
            tracing::info!(path = %self.out.display(), "lease renewed: the gateway serves its tenants again");
        }
        Some(result)
    }

    fn fence_locked(&self, s: &mut FenceState) -> std::io::Result<()> {
        // The epoch first: even if the write fails, no document from before goes in after.
        s.epoch += 1;
        // The env file first (a gateway reloading on the document's change must find it), or
        // none: no credentials linger beside a document without tenants.
        let mut env_file = self.out.clone().into_os_string();
        env_file.push(".env");
        match &self.empty.1 {
            Some(env) => {
                write_if_changed(std::path::Path::new(&env_file), env.as_bytes())?;
            }
            None => {
                if let Err(e) = std::fs::remove_file(&env_file)
                    && e.kind() != std::io::ErrorKind::NotFound
                {
                    return Err(e);
                }
            }
        }
        write_if_changed(&self.out, self.empty.0.as_bytes())?;
        s.fenced = true;
        Ok(())
    }

    /// Fences when the lease has lapsed and the file is not fenced yet; returns whether it
    /// wrote the empty document now.
    pub fn check(&self) -> std::io::Result<bool> {
        let mut s = self.state();
        if s.fenced || !s.lapsed(Instant::now()) {
            return Ok(false);
        }
        self.fence_locked(&mut s)?;
        tracing::error!(
            path = %self.out.display(),
            lease_secs = s.lease.as_secs(),
            "fenced: the gateway's lease could not be renewed for a whole lease, so its config now holds no tenant (the control plane may give them to another gateway); it serves them again once the lease is renewed"
        );
        Ok(true)
    }

    /// Fences now, whatever the lease (the sync is stopping: nobody will renew; or starting
    /// without knowing what the control plane did since the file was written), saying `why`.
    pub fn fence_now(&self, why: &str) -> std::io::Result<()> {
        let mut s = self.state();
        self.fence_locked(&mut s)?;
        tracing::warn!(path = %self.out.display(), "{why}: fenced, the gateway's config now holds no tenant");
        Ok(())
    }

    /// Starts the watchdog thread, which fences the file once the lease lapses (even while the
    /// sync loop is stuck on a database or a request).
    pub fn spawn_watchdog(self: &Arc<Self>) -> std::thread::JoinHandle<()> {
        let fence = Arc::clone(self);
        std::thread::spawn(move || {
            let mut failing = false;
            loop {
                std::thread::sleep(WATCHDOG_TICK);
                match fence.check() {
                    Ok(_) => failing = false,
                    Err(e) if !failing => {
                        failing = true;
                        tracing::error!(error = %e, "fencing the gateway's config failed; retrying");
                    }
                    Err(_) => {}
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lapsed_lease_fences_and_refuses_older_documents() {
        let dir = std::env::temp_dir().join(format!("fence-{}", uuid::Uuid::new_v4().simple()));
        let expected = "{\"empty\":true}".to_owned();
        let f = Fence::new(
            dir.join("openclaw.json"),
            (expected.clone(), None),
            Duration::from_secs(1),
        );
        let epoch = f.epoch();
        let ok = || Ok::<(), std::io::Error>(());
        assert!(f.write(epoch, ok).is_none(), "not before a renewal");
        assert!(!f.check().unwrap(), "a starting sync has a lease to renew");
        f.renewed(Instant::now());
        assert!(f.write(epoch, ok).is_some(), "valid: written");
        std::thread::sleep(Duration::from_millis(1_100));
        assert!(f.write(epoch, ok).is_none(), "lapsed: refused");
        assert!(f.check().unwrap(), "lapsed: fenced");
        let served = std::fs::read_to_string(dir.join("openclaw.json")).unwrap();
        assert_eq!(served, expected);
        assert!(f.is_fenced());
        assert!(!f.check().unwrap(), "once");
        // Renewed again: a document from before the fence stays out, a new pass goes in.
        f.renewed(Instant::now());
        assert!(f.write(epoch, ok).is_none(), "older than the fence");
        assert!(f.write(f.epoch(), ok).is_some());
        assert!(!f.is_fenced());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
