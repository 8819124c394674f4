//! CSV and JSON-lines exports, streamed page by page (never the whole log in memory).

use futures_util::Stream;

use super::{AuditError, AuditFilter, AuditLog, AuditRow};
use crate::clock::format_us;

const PAGE: i64 = 1000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExportFormat {
    Csv,
    Jsonl,
}

impl ExportFormat {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "csv" => Some(Self::Csv),
            "jsonl" => Some(Self::Jsonl),
            _ => None,
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            Self::Csv => "text/csv; charset=utf-8",
            Self::Jsonl => "application/x-ndjson",
        }
    }

    pub fn extension(self) -> &'static str {
        match self {
            Self::Csv => "csv",
            Self::Jsonl => "jsonl",
        }
    }
}

/// The issue-16 columns come last, so every older column keeps its position.
const CSV_HEADER: &str = "seq,time,actor,role,action,contact_id,field,reason,outcome,client_addr,user_agent,request_id,detail,prev_hash,hash,case_ref,initial_contact_id\n";

/// What a spreadsheet takes for the start of a formula (OWASP CSV injection).
fn starts_formula(c: char) -> bool {
    matches!(c, '=' | '+' | '-' | '@' | '\t' | '\r')
}

/// Separators a spreadsheet may split a line at: the comma, and the
/// semicolon of locales that write decimal commas (a semicolon-locale
/// spreadsheet opening this file starts a new cell at each `;`).
fn is_separator(c: char) -> bool {
    matches!(c, ',' | ';')
}

/// One CSV cell: one line (line breaks, U+2028/U+2029 and bidi controls can
/// never reach a line-based reader), quoted when needed, and defused
/// wherever a spreadsheet could start a cell (at its start, and after every
/// `,` or `;` in it, past spaces and quotes) with a formula: a `'` goes
/// before the `=`, `+`, `-`, `@`, tab or carriage return.
fn csv_cell(out: &mut String, text: &str) {
    let text = crate::text::one_line(text);
    let mut cell = String::with_capacity(text.len() + 2);
    let mut at_cell_start = true;
    let mut defused = false;
    for c in text.chars() {
        if at_cell_start && starts_formula(c) {
            cell.push('\'');
            defused = true;
            at_cell_start = false;
        } else if !matches!(c, ' ' | '"') {
            at_cell_start = false;
        }
        if is_separator(c) {
            at_cell_start = true;
        }
        cell.push(c);
    }
    let quote = defused || cell.contains([',', ';', '"', '\n', '\r']);
    if quote {
        out.push('"');
    }
    for c in cell.chars() {
        if c == '"' {
            out.push('"');
        }
        out.push(c);
    }
    if quote {
        out.push('"');
    }
}

fn csv_row(row: &AuditRow) -> String {
    let mut out = String::with_capacity(320);
    let time = format_us(row.ts_us);
    let seq = row.seq.to_string();
    let cells = [
        seq.as_str(),
        &time,
        &row.actor,
        &row.role,
        &row.action,
        &row.contact_id,
        &row.field,
        &row.reason,
        &row.outcome,
        &row.client_addr,
        &row.user_agent,
        &row.request_id,
        &row.detail,
        &row.prev_hash,
        &row.hash,
        &row.case_ref,
        &row.initial_contact_id,
    ];
    for (i, cell) in cells.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        csv_cell(&mut out, cell);
    }
    out.push('\n');
    out
}

#[derive(serde::Serialize)]
struct JsonRow<'a> {
    time: String,
    #[serde(flatten)]
    row: &'a AuditRow,
}

fn jsonl_row(row: &AuditRow) -> String {
    let mut line = serde_json::to_string(&JsonRow {
        time: format_us(row.ts_us),
        row,
    })
    .map(crate::text::escape_json_for_lines)
    .unwrap_or_default();
    line.push('\n');
    line
}

/// The export as a stream of chunks, oldest row first.
pub fn stream(
    log: AuditLog,
    filter: AuditFilter,
    format: ExportFormat,
) -> impl Stream<Item = Result<Vec<u8>, AuditError>> + 'static {
    struct State {
        log: AuditLog,
        filter: AuditFilter,
        after: i64,
        header_sent: bool,
        done: bool,
    }
    let state = State {
        log,
        filter,
        after: 0,
        header_sent: false,
        done: false,
    };
    futures_util::stream::unfold(state, move |mut s| async move {
        if s.done {
            return None;
        }
        if !s.header_sent {
            s.header_sent = true;
            if format == ExportFormat::Csv {
                return Some((Ok(CSV_HEADER.as_bytes().to_vec()), s));
            }
        }
        match s.log.page_after(&s.filter, s.after, PAGE).await {
            Err(e) => {
                s.done = true;
                Some((Err(e), s))
            }
            Ok(rows) if rows.is_empty() => None,
            Ok(rows) => {
                s.done = (rows.len() as i64) < PAGE;
                s.after = rows.last().map_or(s.after, |r| r.seq);
                let mut chunk = String::with_capacity(rows.len() * 320);
                for row in &rows {
                    chunk.push_str(&match format {
                        ExportFormat::Csv => csv_row(row),
                        ExportFormat::Jsonl => jsonl_row(row),
                    });
                }
                Some((Ok(chunk.into_bytes()), s))
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_cells_are_quoted_and_formulas_defused() {
        let mut out = String::new();
        csv_cell(&mut out, "plain");
        assert_eq!(out, "plain");
        let mut out = String::new();
        csv_cell(&mut out, "a,\"b\"");
        assert_eq!(out, "\"a,\"\"b\"\"\"");
        let mut out = String::new();
        csv_cell(&mut out, "=HYPERLINK(\"x\")");
        assert_eq!(out, "\"'=HYPERLINK(\"\"x\"\")\"");
        let mut out = String::new();
        csv_cell(&mut out, "a\nb\u{2028}c\u{202E}d");
        assert_eq!(out, "a b cd");
    }

    #[test]
    fn a_formula_after_any_separator_is_defused() {
        for (text, cell) in [
            ("x;=1+1;y", "\"x;'=1+1;y\""),
            ("x,=1", "\"x,'=1\""),
            ("a; +1", "\"a; '+1\""),
            ("a;\"@SUM(A1)\"", "\"a;\"\"'@SUM(A1)\"\"\""),
            ("  -2", "\"  '-2\""),
            ("a;b", "\"a;b\""),
            ("a-b=c", "a-b=c"),
        ] {
            let mut out = String::new();
            csv_cell(&mut out, text);
            assert_eq!(out, cell, "{text:?}");
        }
    }
}
