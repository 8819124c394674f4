//! Small helpers every page's forms and redirects share.

use super::error::AppError;

/// One day in microseconds (how times are stored).
pub const DAY_US: i64 = 86_400_000_000;

/// The start (UTC, µs since the epoch) of a `YYYY-MM-DD` day from a filter form.
pub fn day_start_us(s: &str) -> Result<i64, AppError> {
    use chrono::TimeZone as _;
    chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|t| chrono::Utc.from_utc_datetime(&t).timestamp_micros())
        .ok_or_else(|| AppError::BadRequest("Dates are YYYY-MM-DD.".into()))
}

/// A form or query value, trimmed; `None` when absent or blank.
pub fn non_empty(s: &Option<String>) -> Option<&str> {
    s.as_deref().map(str::trim).filter(|s| !s.is_empty())
}

/// A 303 to `location` (after a POST), never cached.
pub fn see_other(location: &str) -> actix_web::HttpResponse {
    use actix_web::http::header;
    actix_web::HttpResponse::SeeOther()
        .insert_header((header::LOCATION, location))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .finish()
}

/// Longest return target kept (bytes).
pub const MAX_RETURN_TARGET: usize = 512;

/// A page of this console to return to after signing in: a local path (and
/// its query), never another site. Absolute and protocol-relative targets
/// (`https://...`, `//host`, `/\\host`), anything with spaces, control or
/// non-ASCII characters, and the paths starting with one of `not_to` (the
/// sign-in pages themselves, which their capability names) are refused.
pub fn local_path<'a>(target: &'a str, not_to: &[&str]) -> Option<&'a str> {
    let b = target.as_bytes();
    let ok = (1..=MAX_RETURN_TARGET).contains(&b.len())
        && b[0] == b'/'
        && !matches!(b.get(1), Some(b'/' | b'\\'))
        && b.iter().all(|&c| c.is_ascii_graphic() && c != b'\\')
        && !target.contains("/..")
        && !not_to.iter().any(|p| target.starts_with(p));
    ok.then_some(target)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_local_paths_are_return_targets() {
        let local_path = |t| local_path(t, &["/login", "/logout", "/account/step-up"]);
        for good in ["/", "/contacts/abc-1", "/audit?contact=ab&action=decrypt"] {
            assert_eq!(local_path(good), Some(good), "{good}");
        }
        for bad in [
            "",
            "https://evil.example/",
            "//evil.example",
            "/\\evil.example",
            "/\\/evil",
            "javascript:alert(1)",
            "evil.example",
            "/a b",
            "/a\r\nLocation: x",
            "/caf\u{e9}",
            "/login?next=/x",
            "/logout",
            "/account/step-up?next=/contacts/x",
            "/contacts/../admin",
            &format!("/{}", "a".repeat(600)),
        ] {
            assert_eq!(local_path(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn days_parse_only_as_iso_dates() {
        assert_eq!(day_start_us("1970-01-02").unwrap(), DAY_US);
        for bad in ["", "2026-13-01", "01/02/2026", "2026-01-01T00:00"] {
            assert!(day_start_us(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn blank_values_are_absent() {
        assert_eq!(non_empty(&Some("  x ".into())), Some("x"));
        assert_eq!(non_empty(&Some("   ".into())), None);
        assert_eq!(non_empty(&None), None);
    }
}
