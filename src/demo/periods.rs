//! The demo's key periods (`raw-aes-period:<dir>/keys`): most demo contacts
//! are of this month, some of each of the three months before, and a few of
//! a month fourteen months ago, past the demo's retention of a year. Their
//! values are wrapped by their own month's key, as a roll a month would
//! have left them, so `callvault keys list` and `keys retire` show retention.

use lambda_encrypt::context::{ContactId, FieldContext, FieldName};
use lambda_encrypt::crypto::FieldCrypto;
use lambda_encrypt::keyring::generate_raw_aes_key_file;
use lambda_encrypt::period::{Period, RawPeriodDir, MICROS_PER_DAY};
use lambda_encrypt::plaintext::Plaintext;
use serde_json::json;

use super::{demo_card, demo_zip, flow_event, DemoData, DemoError, DemoStream};
use crate::sources::logs::event_contact_id;

/// The retention the demo is meant to be run with (days).
pub const DEMO_RETENTION_DAYS: u32 = 365;
/// How many months back each older group of contacts lies.
pub const MONTHS_BACK: [u32; 4] = [1, 2, 3, 14];
/// Contacts from this index on move to earlier months (the newest ones,
/// which tests and the walkthrough use, stay in this month).
const FIRST_MOVED: usize = 36;

fn months_before(p: Period, n: u32) -> Period {
    (0..n).fold(p, |p, _| p.prev())
}

/// The periods the demo's contacts fall in, oldest first.
pub fn demo_periods(now_us: i64) -> Vec<Period> {
    let this = Period::of_unix_us(now_us);
    let mut out: Vec<Period> = MONTHS_BACK
        .iter()
        .rev()
        .map(|n| months_before(this, *n))
        .collect();
    out.push(this);
    out
}

/// This month's and next month's key files, as `keys roll` makes them, and
/// one for every demo period not destroyed by `keys retire`.
pub fn ensure_keys(keys: &RawPeriodDir, now_us: i64) -> Result<(), DemoError> {
    let this = Period::of_unix_us(now_us);
    let mut wanted = demo_periods(now_us);
    wanted.push(this.next());
    for p in wanted {
        let retired = keys.tombstone(p).exists() && p != this && p != this.next();
        if !keys.key_file(p).exists() && !retired {
            generate_raw_aes_key_file(&keys.key_file(p))
                .map_err(|e| DemoError::Setup(e.to_string()))?;
        }
    }
    Ok(())
}

fn ciphertext_err(e: lambda_encrypt::crypto::CryptoError) -> DemoError {
    DemoError::Handler(e.kind())
}

/// Encrypts under `period`'s key; a period destroyed by `keys retire` gets
/// a throwaway key of the same name: unrecoverable, as its values would be.
async fn encrypt(
    crypto: &FieldCrypto,
    keys: &RawPeriodDir,
    period: Period,
    ctx: &FieldContext,
    value: String,
) -> Result<String, DemoError> {
    let plaintext = Plaintext::from_string(value);
    let ct = if keys.key_file(period).exists() {
        crypto
            .encrypt_in_period(period, ctx, &plaintext)
            .await
            .map_err(ciphertext_err)?
    } else {
        let throwaway: [u8; 32] = rand::random();
        FieldCrypto::from_raw_aes_parts(
            lambda_encrypt::keyring::RAW_AES_NAMESPACE,
            &period.to_string(),
            &throwaway,
            crypto.suite(),
        )
        .await
        .map_err(ciphertext_err)?
        .encrypt(ctx, &plaintext)
        .await
        .map_err(ciphertext_err)?
    };
    Ok(ct.to_base64())
}

/// Moves the older demo contacts to earlier months: their times, their
/// values (wrapped again under that month's key) and their flow logs.
pub async fn spread_over_periods(
    data: &mut DemoData,
    crypto: &FieldCrypto,
    keys: &RawPeriodDir,
    now_us: i64,
) -> Result<(), DemoError> {
    let this = Period::of_unix_us(now_us);
    let mut moved_events = Vec::new();
    let mut moved_ids = Vec::new();
    for (i, contact) in data.contacts.iter_mut().enumerate().skip(FIRST_MOVED) {
        let back = MONTHS_BACK[(i - FIRST_MOVED) % MONTHS_BACK.len()];
        let period = months_before(this, back);
        let (Some(start), Some(end)) = (
            contact.summary.initiated_us,
            contact.summary.disconnected_us,
        ) else {
            continue;
        };
        let day = i64::try_from(i % 27).unwrap_or(0);
        let started = period.start_us() + day * MICROS_PER_DAY + (start % MICROS_PER_DAY);
        contact.summary.initiated_us = Some(started);
        contact.summary.disconnected_us = Some(started + (end - start));
        let id: ContactId = contact.summary.id.clone();
        for (field, value) in [("creditcard", demo_card(i)), ("zipcode", demo_zip(i))] {
            let name = FieldName::parse(field).map_err(|_| DemoError::NotCaptured(field.into()))?;
            let ctx = FieldContext::new(id.clone(), name);
            let ct = encrypt(crypto, keys, period, &ctx, value).await?;
            contact.attributes.insert(field.to_owned(), ct.clone());
            moved_events.push((
                started,
                flow_event(
                    id.as_str(),
                    started + if field == "creditcard" { 40 } else { 70 } * 1_000_000,
                    "SetAttributes",
                    json!({"Key": field, "Value": ct}),
                ),
            ));
        }
        moved_ids.push(id.as_str().to_owned());
    }
    // Their old log lines (this month's ciphertext) go; the new ones are
    // filed under the day the contact now has.
    for stream in &mut data.streams {
        if stream.name.starts_with("legacy-debug-flow/") {
            continue;
        }
        stream
            .events
            .retain(|e| event_contact_id(&e.message).is_none_or(|c| !moved_ids.contains(&c)));
    }
    data.streams.retain(|s| !s.events.is_empty());
    for (started, event) in moved_events {
        let day = crate::clock::format_us(started)
            .chars()
            .take(10)
            .collect::<String>()
            .replace('-', "/");
        let name = format!("{day}/callvault-capture-flow/00");
        match data.streams.iter_mut().find(|s| s.name == name) {
            Some(s) => s.events.push(event),
            None => data.streams.push(DemoStream {
                name,
                events: vec![event],
            }),
        }
    }
    for s in &mut data.streams {
        s.events.sort_by_key(|e| e.timestamp_us);
    }
    data.streams.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_demo_period_is_past_the_demo_retention() {
        let now = Period::parse("2026-12").unwrap().start_us() + 3 * MICROS_PER_DAY;
        let days = crate::keys::RetentionDays::new(u64::from(DEMO_RETENTION_DAYS)).unwrap();
        let past: Vec<String> = demo_periods(now)
            .into_iter()
            .filter(|p| crate::keys::period_past_retention(*p, now, days).is_some())
            .map(|p| p.to_string())
            .collect();
        assert_eq!(past, ["2025-10"]);
    }
}
