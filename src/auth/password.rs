//! Argon2id password hashing (OWASP ASVS 2.4.1) and the password policy
//! (ASVS 2.1.1: at least 12 characters; 2.1.2: up to 128 allowed).

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use zeroize::Zeroizing;

pub const MIN_PASSWORD_CHARS: usize = 12;
pub const MAX_PASSWORD_CHARS: usize = 128;

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PasswordError {
    #[error("passwords must be at least {MIN_PASSWORD_CHARS} characters")]
    TooShort,
    #[error("passwords must be at most {MAX_PASSWORD_CHARS} characters")]
    TooLong,
    #[error("the password could not be hashed")]
    Hash,
}

/// A password in transit: wiped on drop, never printed.
pub struct Password(Zeroizing<String>);

impl Password {
    pub fn new(s: String) -> Self {
        Self(Zeroizing::new(s))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The policy for new passwords.
    pub fn check_policy(&self) -> Result<(), PasswordError> {
        let n = self.0.chars().count();
        if n < MIN_PASSWORD_CHARS {
            return Err(PasswordError::TooShort);
        }
        if n > MAX_PASSWORD_CHARS {
            return Err(PasswordError::TooLong);
        }
        Ok(())
    }
}

impl std::fmt::Debug for Password {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Password(<redacted>)")
    }
}

pub fn hash(password: &Password) -> Result<String, PasswordError> {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.expose().as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|_| PasswordError::Hash)
}

/// Constant-work verification; an over-long password is refused unhashed.
pub fn verify(password: &Password, stored: &str) -> bool {
    if password.expose().chars().count() > MAX_PASSWORD_CHARS {
        return false;
    }
    match PasswordHash::new(stored) {
        Ok(parsed) => Argon2::default()
            .verify_password(password.expose().as_bytes(), &parsed)
            .is_ok(),
        Err(_) => false,
    }
}

/// Spends the same work as a real verification, for unknown users (so that
/// timing does not reveal which usernames exist).
pub fn dummy_verify(password: &Password) {
    static DUMMY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    let stored = DUMMY.get_or_init(|| {
        hash(&Password::new("callvault-dummy-password".into())).unwrap_or_default()
    });
    let _ = verify(password, stored);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_verify_and_are_argon2id() {
        let p = Password::new("correct horse battery".into());
        let h = hash(&p).unwrap();
        assert!(h.starts_with("$argon2id$"));
        assert!(verify(&p, &h));
        assert!(!verify(&Password::new("wrong horse battery".into()), &h));
        assert!(!verify(&p, "not a hash"));
    }

    #[test]
    fn the_policy_bounds_length() {
        assert_eq!(
            Password::new("short".into()).check_policy(),
            Err(PasswordError::TooShort)
        );
        assert_eq!(
            Password::new("x".repeat(129)).check_policy(),
            Err(PasswordError::TooLong)
        );
        assert!(Password::new("twelve chars".into()).check_policy().is_ok());
        assert_eq!(
            format!("{:?}", Password::new("secret-value-1".into())),
            "Password(<redacted>)"
        );
    }
}
