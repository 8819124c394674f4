//! The demo's keypad path: some demo callers also keyed their card through
//! Amazon Connect's "Store customer input" block. Their `keypad_card`
//! attribute holds a message made as Connect makes it, for a demo RSA key
//! that `callvault connect-key new` would have made (kept in the demo's
//! folder, owner-only), and the console reveals it beside the Lex values.

use std::path::{Path, PathBuf};

use lambda_encrypt::keypad::connect_format::encrypt_as_connect;
use lambda_encrypt::keypad::keygen::generate_connect_key;

use super::{demo_card, DemoData, DemoError};

/// The keypad attribute the demo's flow stores.
pub const DEMO_KEYPAD_FIELD: &str = "keypad_card";
/// The key id the demo's key has "in Connect".
pub const DEMO_CONNECT_KEY_ID: &str = "callvault-demo-connect-key";

/// Whether demo contact `i` keyed its card on the keypad too.
pub fn keyed_on_keypad(i: usize) -> bool {
    i % 6 == 3
}

/// The demo's Connect key pair in `dir`, made on the first run.
fn ensure_key(dir: &Path, now_us: i64) -> Result<(PathBuf, String), DemoError> {
    let setup = |e: &dyn std::fmt::Display| DemoError::Setup(format!("demo Connect key: {e}"));
    let private = dir.join("private.pem");
    let public = dir.join("public.pem");
    if !private.exists() {
        use chrono::Datelike as _;
        let today = chrono::DateTime::from_timestamp_micros(now_us)
            .unwrap_or_default()
            .date_naive();
        // Month and day of a valid date fit in a u8.
        let files = generate_connect_key(today.year(), today.month() as u8, today.day() as u8)
            .map_err(|e| setup(&e))?;
        lambda_encrypt::keyring::write_private_file(&private, files.private_pem.as_bytes())
            .map_err(|e| setup(&e))?;
        // A public key left from an earlier key is replaced.
        std::fs::write(&public, files.public_pem.as_bytes()).map_err(|e| setup(&e))?;
    }
    let public_pem = std::fs::read_to_string(&public).map_err(|e| setup(&e))?;
    Ok((private, public_pem))
}

/// Adds the keypad values to the demo's contacts; the settings that open
/// them (`CALLVAULT_CONNECT_INPUT_FIELDS`, `CALLVAULT_CONNECT_INPUT_KEYS`).
pub async fn add_keypad_values(
    data: &mut DemoData,
    dir: &Path,
    now_us: i64,
) -> Result<(String, String), DemoError> {
    let (private, public_pem) = ensure_key(dir, now_us)?;
    for (i, contact) in data.contacts.iter_mut().enumerate() {
        if !keyed_on_keypad(i) {
            continue;
        }
        let ct = encrypt_as_connect(&public_pem, DEMO_CONNECT_KEY_ID, &demo_card(i))
            .await
            .map_err(|e| DemoError::Setup(format!("demo keypad value: {e}")))?;
        contact
            .attributes
            .insert(DEMO_KEYPAD_FIELD.to_owned(), ct.to_base64());
    }
    Ok((
        format!("{DEMO_KEYPAD_FIELD}:card"),
        format!("{DEMO_CONNECT_KEY_ID}={}", private.display()),
    ))
}
