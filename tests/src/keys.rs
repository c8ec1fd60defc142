//! The key ring every test server and test store call uses, so rows written directly through the
//! store open through the API and the CLI binary, and the other way round.

use std::sync::Arc;

use tenant_store::crypto::KeyRing;

/// `SAAS_ENCRYPTION_KEYS` of the test servers and CLI processes: one key, id `test`.
pub const TEST_ENCRYPTION_KEYS: &str = "test:dGVzdC1rZXktbm90LWZvci1wcm9kdWN0aW9uLTMyYnk=";

/// The ring of [`TEST_ENCRYPTION_KEYS`].
pub fn test_keys() -> Arc<KeyRing> {
    Arc::new(KeyRing::parse(TEST_ENCRYPTION_KEYS).expect("the test key ring is valid"))
}
