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

/// At most this many Argon2 computations run at once (one per CPU): a flood
/// of sign-ins queues here instead of crowding out every other request.
fn hashing_slots() -> &'static tokio::sync::Semaphore {
    static SLOTS: std::sync::OnceLock<tokio::sync::Semaphore> = std::sync::OnceLock::new();
    SLOTS.get_or_init(|| {
        tokio::sync::Semaphore::new(std::thread::available_parallelism().map_or(2, |n| n.get()))
    })
}

/// Runs Argon2 work on the blocking thread pool, never on an async worker:
/// each actix worker is a single-threaded runtime, and a hash held on it
/// (tens of milliseconds) stalls every request that worker serves.
async fn off_the_workers<T: Send + 'static>(
    password: &Password,
    work: impl FnOnce(&Password) -> T + Send + 'static,
) -> Option<T> {
    let _slot = hashing_slots().acquire().await.ok()?;
    let copy = Password::new(password.expose().to_owned());
    tokio::task::spawn_blocking(move || work(&copy)).await.ok()
}

/// Hashes a new password (Argon2id, default parameters), off the async workers.
pub async fn hash(password: &Password) -> Result<String, PasswordError> {
    off_the_workers(password, hash_now)
        .await
        .unwrap_or(Err(PasswordError::Hash))
}

/// Constant-work verification, off the async workers; an over-long password
/// is refused unhashed.
pub async fn verify(password: &Password, stored: &str) -> bool {
    if password.expose().chars().count() > MAX_PASSWORD_CHARS {
        return false;
    }
    let stored = stored.to_owned();
    off_the_workers(password, move |p| verify_now(p, &stored))
        .await
        .unwrap_or(false)
}

/// Spends the same work as a real verification, for unknown users (so that
/// timing does not reveal which usernames exist).
pub async fn dummy_verify(password: &Password) {
    off_the_workers(password, |p| {
        static DUMMY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
        let stored = DUMMY.get_or_init(|| {
            hash_now(&Password::new("callvault-dummy-password".into())).unwrap_or_default()
        });
        let _ = verify_now(p, stored);
    })
    .await;
}

fn hash_now(password: &Password) -> Result<String, PasswordError> {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.expose().as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|_| PasswordError::Hash)
}

fn verify_now(password: &Password, stored: &str) -> bool {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn hashes_verify_and_are_argon2id() {
        let p = Password::new("correct horse battery".into());
        let h = hash(&p).await.unwrap();
        assert!(h.starts_with("$argon2id$"));
        assert!(verify(&p, &h).await);
        assert!(!verify(&Password::new("wrong horse battery".into()), &h).await);
        assert!(!verify(&p, "not a hash").await);
        assert!(!verify(&Password::new("x".repeat(129)), &h).await);
    }

    /// A current-thread runtime stands for one actix worker: while a hash
    /// runs, the worker still answers other tasks.
    #[test]
    fn hashing_leaves_the_async_worker_free() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let p = Password::new("correct horse battery".into());
            let h = hash_now(&p).unwrap();
            let ticks = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
            let counter = ticks.clone();
            let ticker = tokio::spawn(async move {
                loop {
                    counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    tokio::time::sleep(std::time::Duration::from_millis(1)).await;
                }
            });
            let started = std::time::Instant::now();
            for _ in 0..4 {
                assert!(verify(&p, &h).await);
            }
            let elapsed = started.elapsed();
            ticker.abort();
            let ticks = ticks.load(std::sync::atomic::Ordering::SeqCst);
            // Blocking the worker would leave the ticker at 1; running free it
            // ticks about once a millisecond (allow a loaded machine a lot).
            assert!(
                ticks as u128 >= elapsed.as_millis() / 10 + 2,
                "{ticks} ticks in {elapsed:?}"
            );
        });
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
