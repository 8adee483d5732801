//! Password hashing with argon2id (the crate's recommended parameters).

use std::sync::LazyLock;

use argon2::{Argon2, PasswordHash, PasswordHasher, PasswordVerifier};

use crate::error::{Error, FieldError, Result};

pub const MIN_LENGTH: usize = 12;
pub const MAX_LENGTH: usize = 256;

pub fn check_strength(password: &str) -> Result<(), FieldError> {
    let len = password.chars().count();
    if len < MIN_LENGTH {
        return Err(FieldError::new(
            "password",
            format!("must be at least {MIN_LENGTH} characters"),
        ));
    }
    if len > MAX_LENGTH {
        return Err(FieldError::new(
            "password",
            format!("must be at most {MAX_LENGTH} characters"),
        ));
    }
    Ok(())
}

pub fn hash(password: &str) -> Result<String> {
    let hash: PasswordHash = Argon2::default()
        .hash_password(password.as_bytes())
        .map_err(Error::internal_from)?;
    Ok(hash.to_string())
}

/// Verifies `password`; with no stored hash (unknown account) it verifies
/// against a fixed dummy, so both cases take the same time.
pub fn verify(password: &str, stored: Option<&str>) -> bool {
    static DUMMY: LazyLock<String> =
        LazyLock::new(|| hash("dummy password for unknown accounts").expect("argon2 works"));
    let (encoded, real) = match stored {
        Some(s) => (s, true),
        None => (DUMMY.as_str(), false),
    };
    let Ok(parsed) = PasswordHash::new(encoded) else {
        return false;
    };
    let ok = Argon2::default()
        .verify_password(password.as_bytes(), &parsed)
        .is_ok();
    ok && real
}

/// Computes the dummy hash ahead of the first login, so the first unknown
/// email costs no more than a known one.
pub fn warm_up() {
    let _ = verify("", None);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_verify_and_differ_by_salt() {
        let a = hash("correct horse battery").unwrap();
        let b = hash("correct horse battery").unwrap();
        assert_ne!(a, b);
        assert!(a.starts_with("$argon2id$"));
        assert!(verify("correct horse battery", Some(&a)));
        assert!(!verify("wrong horse battery", Some(&a)));
        assert!(!verify("correct horse battery", None));
    }

    #[test]
    fn short_passwords_are_refused() {
        assert!(check_strength("short").is_err());
        assert!(check_strength("long enough pass").is_ok());
    }
}
