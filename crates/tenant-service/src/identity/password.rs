//! Passwords: the rules a new password must meet, and argon2id hashing with OWASP's parameters
//! (m = 19456 KiB, t = 2, p = 1). Hashing and verifying take tens of milliseconds of CPU by
//! design, so callers run them on the blocking pool.

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use rand::RngCore;
use tenant_core::{Secret, ValidationError};

/// Fewest characters in a new password.
pub const MIN_CHARS: usize = 12;
/// Most bytes in any password (argon2 would take more, but nothing legitimate needs it).
pub const MAX_BYTES: usize = 1024;

fn argon2() -> Result<Argon2<'static>, String> {
    let params = Params::new(19 * 1024, 2, 1, None).map_err(|e| e.to_string())?;
    Ok(Argon2::new(Algorithm::Argon2id, Version::V0x13, params))
}

/// Checks a new password against the rules; `field` names it in the error.
pub fn validate_new(field: &'static str, password: &Secret) -> Result<(), ValidationError> {
    let p = password.expose();
    if p.len() > MAX_BYTES {
        return Err(ValidationError::new(
            field,
            "too_long",
            format!("must be at most {MAX_BYTES} bytes"),
        ));
    }
    if p.chars().count() < MIN_CHARS {
        return Err(ValidationError::new(
            field,
            "too_short",
            format!("must be at least {MIN_CHARS} characters"),
        ));
    }
    if p.trim().is_empty() {
        return Err(ValidationError::new(field, "blank", "must not be blank"));
    }
    Ok(())
}

/// Hashes a password into an argon2id PHC string with a fresh 16-byte salt.
pub fn hash(password: &Secret) -> Result<String, String> {
    let mut salt = [0u8; 16];
    rand::rng().fill_bytes(&mut salt);
    let salt = SaltString::encode_b64(&salt).map_err(|e| e.to_string())?;
    argon2()?
        .hash_password(password.expose().as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| format!("password hashing failed: {e}"))
}

/// Whether `password` matches the PHC string `stored`. A malformed stored hash matches nothing.
/// Passwords longer than [`MAX_BYTES`] match nothing, without hashing.
pub fn verify(password: &Secret, stored: &str) -> bool {
    if password.expose().len() > MAX_BYTES {
        return false;
    }
    let (Ok(parsed), Ok(argon)) = (PasswordHash::new(stored), argon2()) else {
        return false;
    };
    argon
        .verify_password(password.expose().as_bytes(), &parsed)
        .is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_verify_and_carry_owasp_parameters() {
        let pw = Secret::new("correct horse battery");
        let h = hash(&pw).unwrap();
        assert!(h.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{h}");
        assert!(verify(&pw, &h));
        assert!(!verify(&Secret::new("wrong horse battery"), &h));
        assert!(!verify(&pw, "not a hash"));
        assert_ne!(hash(&pw).unwrap(), h, "salted");
    }

    #[test]
    fn rules() {
        assert!(validate_new("password", &Secret::new("long enough pw")).is_ok());
        assert_eq!(
            validate_new("password", &Secret::new("short"))
                .unwrap_err()
                .code,
            "too_short"
        );
        assert_eq!(
            validate_new("password", &Secret::new("x".repeat(1025)))
                .unwrap_err()
                .code,
            "too_long"
        );
        assert_eq!(
            validate_new("password", &Secret::new(" ".repeat(20)))
                .unwrap_err()
                .code,
            "blank"
        );
    }
}
