//! Runs the code hook on Lex V2 event files and prints each response, offline.
//!
//!     cargo run -p lambda-encrypt --example invoke -- lambda-encrypt/events/valid-card.json
//!
//! Uses `CALLVAULT_KEYRING` (and the other `CALLVAULT_*` settings) when set;
//! otherwise a throwaway raw AES key. With no file arguments, every sample
//! event in `lambda-encrypt/events/` is run.

use std::path::PathBuf;

use lambda_encrypt::config::LambdaConfig;
use lambda_encrypt::crypto::FieldCrypto;
use lambda_encrypt::handler::Handler;
use lambda_encrypt::keyring::generate_raw_aes_key_file;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    lambda_encrypt::logging::init();
    let scratch = tempfile::tempdir()?;
    if std::env::var_os("CALLVAULT_KEYRING").is_none() {
        let key = scratch.path().join("example.key");
        generate_raw_aes_key_file(&key)?;
        std::env::set_var("CALLVAULT_KEYRING", format!("raw-aes:{}", key.display()));
    }
    let config = LambdaConfig::from_env()?;
    let crypto = FieldCrypto::from_spec(&config.keyring, config.suite, None).await?;
    let handler = Handler::new(config.handler, crypto);

    let mut files: Vec<PathBuf> = std::env::args_os().skip(1).map(PathBuf::from).collect();
    if files.is_empty() {
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("events");
        files = std::fs::read_dir(dir)?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .collect();
        files.sort();
    }
    for file in files {
        let bytes = std::fs::read(&file)?;
        println!("== {}", file.display());
        match handler.handle_bytes(&bytes).await {
            Ok(response) => println!("{}", serde_json::to_string_pretty(&response)?),
            Err(e) => println!("error ({}): {e}", e.kind()),
        }
    }
    Ok(())
}
