//! Helpers shared by the lambda-encrypt integration tests.
#![allow(dead_code)]

pub mod runtime;

use std::path::PathBuf;

use lambda_encrypt::context::{ContactId, FieldContext, FieldName};
use lambda_encrypt::crypto::{AlgorithmSuite, FieldCrypto};
use lambda_encrypt::keyring::{generate_raw_aes_key_file, KeyringSpec};

/// A Luhn-valid card number used as a canary: it must never appear in any
/// response, log line or error produced by the code under test.
pub const CANARY_CARD: &str = "4929871234567893";

pub fn field_context(contact: &str, field: &str) -> FieldContext {
    FieldContext::new(
        ContactId::parse(contact).unwrap(),
        FieldName::parse(field).unwrap(),
    )
}

pub struct TempKey {
    pub dir: tempfile::TempDir,
    pub path: PathBuf,
}

impl TempKey {
    pub fn new(name: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(format!("{name}.key"));
        generate_raw_aes_key_file(&path).unwrap();
        Self { dir, path }
    }

    pub fn spec(&self) -> KeyringSpec {
        KeyringSpec::RawAes {
            path: self.path.clone(),
        }
    }

    pub async fn crypto(&self, suite: AlgorithmSuite) -> FieldCrypto {
        FieldCrypto::from_spec(&self.spec(), suite, None)
            .await
            .unwrap()
    }
}

/// A prerequisite that `scripts/test` provides (moto, the Python venv...).
/// Under CI its absence fails the test; elsewhere the test says loudly that it
/// did not run.
pub fn require_env(name: &str) -> Option<String> {
    match std::env::var(name) {
        Ok(v) if !v.is_empty() => Some(v),
        _ => {
            if std::env::var("CI").is_ok_and(|v| v == "true") {
                panic!("{name} is not set: run the tests through scripts/test");
            }
            eprintln!("SKIPPED: {name} is not set; run scripts/test to include this test");
            None
        }
    }
}

/// A log sink for tests: everything the JSON subscriber writes.
#[derive(Clone, Default)]
pub struct LogBuffer(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl LogBuffer {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }

    /// Installs a JSON subscriber (DEBUG for this crate) on the current thread.
    pub fn install(&self) -> tracing::subscriber::DefaultGuard {
        tracing::subscriber::set_default(lambda_encrypt::logging::subscriber(
            self.clone(),
            tracing::level_filters::LevelFilter::DEBUG,
        ))
    }
}

impl std::io::Write for LogBuffer {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for LogBuffer {
    type Writer = LogBuffer;
    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

pub fn events_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("events")
}

pub fn sample_event(name: &str) -> serde_json::Value {
    let text = std::fs::read_to_string(events_dir().join(name)).unwrap();
    serde_json::from_str(&text).unwrap()
}
