//! CloudWatch Logs browsing and the leak guard.

pub mod leak_guard;
