//! The keyed requests running in this process: a second request with a key that is still
//! running is refused at once rather than left to wait on the database's unique key.

use std::collections::HashSet;
use std::sync::{Arc, Mutex, PoisonError};

use tenant_store::idempotency::KeyScope;

/// The scopes of the keyed requests running now.
#[derive(Debug, Default)]
pub struct InFlight {
    running: Mutex<HashSet<KeyScope>>,
}

/// A running request's hold on its key, released when dropped (after its transaction ended).
#[derive(Debug)]
pub(crate) struct Held {
    registry: Arc<InFlight>,
    scope: KeyScope,
}

impl InFlight {
    /// Holds `scope`; `None` if a request holds it already.
    pub(crate) fn hold(self: &Arc<Self>, scope: &KeyScope) -> Option<Held> {
        let mut running = self.running.lock().unwrap_or_else(PoisonError::into_inner);
        running.insert(scope.clone()).then(|| Held {
            registry: Arc::clone(self),
            scope: scope.clone(),
        })
    }

    /// How many keyed requests are running.
    pub fn len(&self) -> usize {
        self.running
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }

    /// Whether none is.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        self.registry
            .running
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&self.scope);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_is_held_once_until_released() {
        let registry = Arc::new(InFlight::default());
        let scope = KeyScope {
            caller: "api_key:1".into(),
            method: "POST".into(),
            path: "/tenants".into(),
            key: "k".into(),
        };
        let held = registry.hold(&scope).unwrap();
        assert!(registry.hold(&scope).is_none());
        let other = KeyScope {
            caller: "api_key:2".into(),
            ..scope.clone()
        };
        assert!(registry.hold(&other).is_some());
        drop(held);
        assert!(registry.hold(&scope).is_some());
        assert!(registry.is_empty());
    }
}
