//! The `raw-aes-period:` side of the key commands: one key file per period
//! (`<YYYY-MM>.key`); `current` is this month's file; a retired period's
//! file is overwritten, synced and removed, leaving `<YYYY-MM>.deleted`.

use std::io::Write as _;

use lambda_encrypt::keyring::{generate_raw_aes_key_file, write_private_file};
use lambda_encrypt::period::{date_of_us, KeyState, Period, RawPeriodDir};

use super::{KeysError, StoredKey};

fn io(dir: &RawPeriodDir) -> impl Fn(std::io::Error) -> KeysError + '_ {
    move |source| KeysError::Io {
        path: dir.path().display().to_string(),
        source,
    }
}

pub(crate) fn stored(dir: &RawPeriodDir, this: Period) -> Result<Vec<StoredKey>, KeysError> {
    if !dir.path().exists() {
        return Ok(Vec::new());
    }
    let scan = dir.scan().map_err(io(dir))?;
    let mut out: Vec<StoredKey> = scan
        .keys
        .iter()
        .map(|p| StoredKey {
            period: *p,
            key_id: format!("{p}.key"),
            state: KeyState::Enabled,
            current: *p == this,
        })
        .chain(scan.deleted.iter().map(|p| StoredKey {
            period: *p,
            key_id: format!("{p}.key"),
            state: KeyState::Deleted,
            current: false,
        }))
        .collect();
    out.sort_by_key(|k| k.period);
    Ok(out)
}

pub(crate) fn roll(dir: &RawPeriodDir, create: &[Period]) -> Result<(), KeysError> {
    if !dir.path().exists() {
        let mut builder = std::fs::DirBuilder::new();
        builder.recursive(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::DirBuilderExt as _;
            builder.mode(0o700);
        }
        builder.create(dir.path()).map_err(io(dir))?;
    }
    for period in create {
        generate_raw_aes_key_file(&dir.key_file(*period))?;
    }
    Ok(())
}

/// Overwrites the key file with zeros, syncs, removes it, and leaves the
/// tombstone: the period's values are unrecoverable by anyone.
pub(crate) fn destroy(dir: &RawPeriodDir, period: Period, now_us: i64) -> Result<(), KeysError> {
    let path = dir.key_file(period);
    let len = std::fs::metadata(&path).map_err(io(dir))?.len();
    {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .open(&path)
            .map_err(io(dir))?;
        f.write_all(&vec![0u8; usize::try_from(len).unwrap_or(64).max(64)])
            .and_then(|()| f.sync_all())
            .map_err(io(dir))?;
    }
    std::fs::remove_file(&path).map_err(io(dir))?;
    let tombstone = dir.tombstone(period);
    if !tombstone.exists() {
        write_private_file(
            &tombstone,
            format!("deleted {}\n", date_of_us(now_us)).as_bytes(),
        )
        .map_err(io(dir))?;
    }
    // The directory entry's removal is durable too.
    if let Ok(d) = std::fs::File::open(dir.path()) {
        let _ = d.sync_all();
    }
    Ok(())
}
