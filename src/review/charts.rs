//! The volume page's charts, drawn on the server as inline SVG (no script):
//! reveals per day per supervisor over the last 14 days, and reveals per
//! hour of the day over the last 28 days, both in the reader's time zone.
//! The database counts; this file only lays out bars.

use chrono::{Offset as _, TimeZone as _};
use chrono_tz::Tz;

use super::filter::local_start;
use crate::audit::{Action, AuditError, AuditLog, OffsetSpan};
use crate::web::{AppError, DAY_US};

/// Days in the per-day chart.
pub const CHART_DAYS: usize = 14;
/// Days the hour-of-day chart counts over.
pub const HOUR_CHART_DAYS: i64 = 28;
/// Height of the bars' area (SVG units); a bar of the chart's largest count
/// is this tall.
pub const BAR_AREA: f64 = 160.0;
const TOP: f64 = 10.0;
const LEFT: f64 = 36.0;
const DAY_SLOT: f64 = 56.0;
const HOUR_SLOT: f64 = 28.0;

/// One bar.
pub struct Bar {
    pub x: String,
    pub y: String,
    pub width: String,
    pub height: String,
    pub count: i64,
    /// Screen readers and hover.
    pub title: String,
    /// `series-N` (the supervisor's colour).
    pub class: String,
    pub actor: String,
    /// YYYY-MM-DD in the reader's zone (day chart).
    pub day: String,
    /// 0-23 (hour chart).
    pub hour: usize,
}

pub struct Label {
    pub x: String,
    pub text: String,
}

pub struct Legend {
    pub actor: String,
    pub class: String,
}

/// One day of the per-day chart as a table row (the text alternative).
pub struct DayRow {
    pub day: String,
    pub counts: Vec<i64>,
}

pub struct DayChart {
    pub width: String,
    pub height: String,
    pub baseline: String,
    pub max: i64,
    pub bars: Vec<Bar>,
    pub labels: Vec<Label>,
    pub legend: Vec<Legend>,
    pub actors: Vec<String>,
    pub table: Vec<DayRow>,
    pub summary: String,
}

pub struct HourChart {
    pub width: String,
    pub height: String,
    pub baseline: String,
    pub max: i64,
    pub bars: Vec<Bar>,
    pub labels: Vec<Label>,
    pub summary: String,
}

fn num(v: f64) -> String {
    format!("{v:.2}")
}

/// A bar's height: proportional to `count` against the chart's `max`.
pub fn bar_height(count: i64, max: i64) -> f64 {
    if max <= 0 {
        0.0
    } else {
        BAR_AREA * count as f64 / max as f64
    }
}

fn today(zone: Tz, now_us: i64) -> chrono::NaiveDate {
    zone.timestamp_micros(now_us)
        .single()
        .map(|t| t.date_naive())
        .unwrap_or_default()
}

/// Reveals per day per supervisor over the last 14 local days (today
/// included): one bar per day per supervisor who revealed anything then.
pub async fn day_chart(audit: &AuditLog, zone: Tz, now_us: i64) -> Result<DayChart, AppError> {
    let today = today(zone, now_us);
    let days: Vec<chrono::NaiveDate> = (0..=CHART_DAYS as u64)
        .rev()
        .filter_map(|back| today.checked_sub_days(chrono::Days::new(back)))
        .skip(1)
        .chain(today.succ_opt())
        .collect();
    // 14 days and the day after: 15 edges.
    let edges: Vec<i64> = days.iter().filter_map(|d| local_start(*d, zone)).collect();
    if edges.len() != CHART_DAYS + 1 {
        return Err(AppError::Internal("chart days out of range".into()));
    }
    let counts = audit.bucket_counts(Action::Decrypt, &edges).await?;
    let mut actors: Vec<String> = counts.iter().map(|(a, _, _)| a.clone()).collect();
    actors.dedup();
    let mut grid = vec![vec![0i64; actors.len()]; CHART_DAYS];
    for (actor, day, count) in &counts {
        let (Ok(day), Some(a)) = (
            usize::try_from(*day),
            actors.iter().position(|x| x == actor),
        ) else {
            continue;
        };
        if let Some(cell) = grid.get_mut(day).and_then(|r| r.get_mut(a)) {
            *cell = *count;
        }
    }
    let max = grid.iter().flatten().copied().max().unwrap_or(0);
    let labels_of: Vec<String> = days[..CHART_DAYS]
        .iter()
        .map(|d| d.format("%Y-%m-%d").to_string())
        .collect();
    let n = actors.len().max(1) as f64;
    let bar_width = (DAY_SLOT - 8.0) / n;
    let mut bars = Vec::with_capacity(CHART_DAYS * actors.len());
    let mut labels = Vec::with_capacity(CHART_DAYS);
    for (d, day) in labels_of.iter().enumerate() {
        let slot = LEFT + d as f64 * DAY_SLOT;
        labels.push(Label {
            x: num(slot + DAY_SLOT / 2.0),
            text: day[5..].to_owned(),
        });
        for (a, actor) in actors.iter().enumerate() {
            let count = grid[d][a];
            let h = bar_height(count, max);
            bars.push(Bar {
                x: num(slot + 4.0 + a as f64 * bar_width),
                y: num(TOP + BAR_AREA - h),
                width: num(bar_width),
                height: num(h),
                count,
                title: format!("{actor}, {day}: {count} reveal(s)"),
                class: format!("series-{}", a % 8),
                actor: actor.clone(),
                day: day.clone(),
                hour: 0,
            });
        }
    }
    let busiest = grid
        .iter()
        .enumerate()
        .flat_map(|(d, row)| row.iter().enumerate().map(move |(a, c)| (*c, d, a)))
        .max();
    let summary = match busiest {
        Some((c, d, a)) if c > 0 => format!(
            "Reveals per day for {} supervisor(s) from {} to {}; the most in one day: {c} by {} on {}.",
            actors.len(),
            labels_of[0],
            labels_of[CHART_DAYS - 1],
            actors[a],
            labels_of[d]
        ),
        _ => format!(
            "No reveals from {} to {}.",
            labels_of[0],
            labels_of[CHART_DAYS - 1]
        ),
    };
    Ok(DayChart {
        width: num(LEFT + CHART_DAYS as f64 * DAY_SLOT + 8.0),
        height: num(TOP + BAR_AREA + 24.0),
        baseline: num(TOP + BAR_AREA),
        max,
        legend: actors
            .iter()
            .enumerate()
            .map(|(a, actor)| Legend {
                actor: actor.clone(),
                class: format!("series-{}", a % 8),
            })
            .collect(),
        table: labels_of
            .iter()
            .zip(&grid)
            .map(|(day, row)| DayRow {
                day: day.clone(),
                counts: row.clone(),
            })
            .collect(),
        actors,
        bars,
        labels,
        summary,
    })
}

/// The zone's UTC offsets over `[from_us, to_us)`: a span from each change
/// on (transitions fall on quarter hours of UTC).
pub fn offset_spans(zone: Tz, from_us: i64, to_us: i64) -> Vec<OffsetSpan> {
    const STEP: i64 = 15 * 60_000_000;
    let offset_at = |us: i64| {
        chrono::DateTime::from_timestamp_micros(us)
            .map(|t| {
                i64::from(
                    zone.offset_from_utc_datetime(&t.naive_utc())
                        .fix()
                        .local_minus_utc(),
                ) * 1_000_000
            })
            .unwrap_or(0)
    };
    let mut spans = vec![OffsetSpan {
        start_us: from_us,
        offset_us: offset_at(from_us),
    }];
    let mut t = from_us.div_euclid(STEP) * STEP + STEP;
    while t < to_us {
        let offset = offset_at(t);
        if spans.last().is_some_and(|s| s.offset_us != offset) {
            spans.push(OffsetSpan {
                start_us: t,
                offset_us: offset,
            });
        }
        t += STEP;
    }
    spans
}

/// Reveals per hour of the local day over the last 28 days.
pub async fn hour_chart(audit: &AuditLog, zone: Tz, now_us: i64) -> Result<HourChart, AuditError> {
    let (from, to) = (now_us - HOUR_CHART_DAYS * DAY_US, now_us + 1);
    let hours = audit
        .hour_counts(Action::Decrypt, from, to, &offset_spans(zone, from, to))
        .await?;
    let max = hours.iter().copied().max().unwrap_or(0);
    let total: i64 = hours.iter().sum();
    let bars = hours
        .iter()
        .enumerate()
        .map(|(hour, &count)| {
            let h = bar_height(count, max);
            Bar {
                x: num(LEFT + hour as f64 * HOUR_SLOT + 3.0),
                y: num(TOP + BAR_AREA - h),
                width: num(HOUR_SLOT - 6.0),
                height: num(h),
                count,
                title: format!("{hour:02}:00 to {hour:02}:59: {count} reveal(s)"),
                class: "series-0".into(),
                actor: String::new(),
                day: String::new(),
                hour,
            }
        })
        .collect();
    let labels = (0..24)
        .step_by(3)
        .map(|hour| Label {
            x: num(LEFT + hour as f64 * HOUR_SLOT + HOUR_SLOT / 2.0),
            text: format!("{hour:02}"),
        })
        .collect();
    let busiest = hours
        .iter()
        .enumerate()
        .max_by_key(|(h, c)| (**c, std::cmp::Reverse(*h)))
        .map(|(h, _)| h)
        .unwrap_or(0);
    let summary = if total == 0 {
        "No reveals in the last 28 days.".to_owned()
    } else {
        format!(
            "{total} reveal(s) in the last 28 days by hour of the day ({}); the busiest hour starts at {busiest:02}:00 with {max}.",
            zone.name()
        )
    };
    Ok(HourChart {
        width: num(LEFT + 24.0 * HOUR_SLOT + 8.0),
        height: num(TOP + BAR_AREA + 24.0),
        baseline: num(TOP + BAR_AREA),
        max,
        bars,
        labels,
        summary,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bars_are_proportional_to_the_largest_count() {
        assert_eq!(bar_height(0, 0), 0.0);
        assert_eq!(bar_height(4, 4), BAR_AREA);
        assert_eq!(bar_height(1, 4), BAR_AREA / 4.0);
    }

    #[test]
    fn offset_spans_follow_the_zones_transitions() {
        // 28 days around the end of summer time in Paris (2026-10-25 01:00 UTC).
        let from = chrono::DateTime::parse_from_rfc3339("2026-10-10T00:00:00Z")
            .unwrap()
            .timestamp_micros();
        let spans = offset_spans(Tz::Europe__Paris, from, from + 28 * DAY_US);
        assert_eq!(spans.len(), 2);
        assert_eq!(spans[0].offset_us, 2 * 3_600_000_000);
        assert_eq!(spans[1].offset_us, 3_600_000_000);
        let change = chrono::DateTime::parse_from_rfc3339("2026-10-25T01:00:00Z")
            .unwrap()
            .timestamp_micros();
        assert_eq!(spans[1].start_us, change);
        assert_eq!(offset_spans(Tz::UTC, from, from + 28 * DAY_US).len(), 1);
    }
}
