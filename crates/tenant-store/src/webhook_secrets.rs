//! Webhook signing secrets at rest: sealed with the key ring like channel credentials.
//!
//! The `webhook_endpoints.secret` column holds one envelope whose plaintext is the current secret
//! and, during a rotation's overlap window, the previous one (space-separated);
//! `secret_key_id` names the key that sealed it (NULL: a plaintext value left by a version
//! before sealing, sealed on the next start or by `moltbot-saas keys rotate`). The associated
//! data binds the envelope to the endpoint's tenant and id, so a value copied to another row does
//! not open.

use zeroize::Zeroizing;

use crate::crypto::{Envelope, KeyRing};
use crate::{StoreError, StoreResult};

/// The owner named in an operator endpoint's associated data (a tenant's is its UUID, so the two
/// never meet).
pub const OPERATOR_OWNER: &str = "operator";

/// Whose secret a row's is: its tenant's id, or [`OPERATOR_OWNER`] for an endpoint with no
/// tenant.
pub fn owner(tenant_id: Option<&str>) -> &str {
    tenant_id.unwrap_or(OPERATOR_OWNER)
}

/// The associated data binding a sealed secret to its endpoint.
pub fn secret_aad(tenant_id: &str, endpoint_id: &str) -> Vec<u8> {
    let mut aad = Vec::with_capacity(tenant_id.len() + endpoint_id.len() + 28);
    aad.extend_from_slice(b"webhook_endpoints.secret\0");
    aad.extend_from_slice(tenant_id.as_bytes());
    aad.push(0);
    aad.extend_from_slice(endpoint_id.as_bytes());
    aad
}

/// A stored secret column pair: the value and the key id that sealed it.
#[derive(Clone, PartialEq, Eq)]
pub struct StoredSecret {
    /// The envelope (or a legacy plaintext value).
    pub value: String,
    /// The sealing key's id; `None` for a legacy plaintext value.
    pub key_id: Option<String>,
}

impl std::fmt::Debug for StoredSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoredSecret")
            .field("key_id", &self.key_id)
            .finish_non_exhaustive()
    }
}

fn fail(tenant_id: &str, endpoint_id: &str, reason: String) -> StoreError {
    StoreError::WebhookSecret {
        tenant_id: tenant_id.to_owned(),
        endpoint_id: endpoint_id.to_owned(),
        reason,
    }
}

/// Seals `plaintext` (the space-separated secrets) for the endpoint under the active key.
pub fn seal(
    ring: &KeyRing,
    tenant_id: &str,
    endpoint_id: &str,
    plaintext: &str,
) -> StoreResult<StoredSecret> {
    let value = ring
        .seal(&secret_aad(tenant_id, endpoint_id), plaintext.as_bytes())
        .map_err(|e| fail(tenant_id, endpoint_id, e.to_string()))?;
    Ok(StoredSecret {
        value,
        key_id: Some(ring.active_id().to_owned()),
    })
}

/// Opens a stored secret of the endpoint: the envelope, or a legacy plaintext value (only when no
/// key id is recorded).
pub fn open(
    ring: &KeyRing,
    tenant_id: &str,
    endpoint_id: &str,
    stored: &StoredSecret,
) -> StoreResult<Zeroizing<String>> {
    if !Envelope::is_envelope(&stored.value) {
        return match stored.key_id {
            None if stored.value.starts_with("whsec_") => Ok(Zeroizing::new(stored.value.clone())),
            None => Err(fail(
                tenant_id,
                endpoint_id,
                "the stored value is neither sealed nor a secret".into(),
            )),
            Some(_) => Err(fail(
                tenant_id,
                endpoint_id,
                "a key id is recorded but the value is not sealed".into(),
            )),
        };
    }
    let envelope =
        Envelope::parse(&stored.value).map_err(|e| fail(tenant_id, endpoint_id, e.to_string()))?;
    if stored.key_id.as_deref() != Some(envelope.key_id) {
        return Err(fail(
            tenant_id,
            endpoint_id,
            "the recorded key id does not match the envelope's".into(),
        ));
    }
    let bytes = ring
        .open(&secret_aad(tenant_id, endpoint_id), &stored.value)
        .map_err(|e| fail(tenant_id, endpoint_id, e.to_string()))?;
    String::from_utf8(bytes.to_vec())
        .map(Zeroizing::new)
        .map_err(|_| {
            fail(
                tenant_id,
                endpoint_id,
                "the opened value is not UTF-8".into(),
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ring(id: &str, byte: u8) -> KeyRing {
        KeyRing::new([(id.to_owned(), Zeroizing::new(vec![byte; 32]))]).unwrap()
    }

    #[test]
    fn sealed_secrets_open_only_for_their_row() {
        let ring = ring("k1", 7);
        let stored = seal(&ring, "t1", "e1", "whsec_new whsec_old").unwrap();
        assert!(!stored.value.contains("whsec_"));
        assert_eq!(stored.key_id.as_deref(), Some("k1"));
        let opened = open(&ring, "t1", "e1", &stored).unwrap();
        assert_eq!(opened.as_str(), "whsec_new whsec_old");
        assert!(
            open(&ring, "t1", "e2", &stored).is_err(),
            "another endpoint"
        );
        assert!(open(&ring, "t2", "e1", &stored).is_err(), "another tenant");
        let relabelled = StoredSecret {
            key_id: None,
            ..stored.clone()
        };
        assert!(open(&ring, "t1", "e1", &relabelled).is_err());
        assert!(open(&self::ring("k2", 8), "t1", "e1", &stored).is_err());
        assert!(!format!("{stored:?}").contains(&stored.value));
    }

    #[test]
    fn legacy_plaintext_opens_only_without_a_key_id() {
        let ring = ring("k1", 7);
        let legacy = StoredSecret {
            value: "whsec_abc".into(),
            key_id: None,
        };
        assert_eq!(
            open(&ring, "t", "e", &legacy).unwrap().as_str(),
            "whsec_abc"
        );
        let claimed = StoredSecret {
            key_id: Some("k1".into()),
            ..legacy
        };
        assert!(open(&ring, "t", "e", &claimed).is_err());
    }
}
