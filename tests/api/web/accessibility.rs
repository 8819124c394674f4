//! Pages people can use with a keyboard, a screen reader and a phone:
//! every `pattern` attribute the pages render compiles the way browsers now
//! compile it (the `v` flag; an invalid one is silently ignored), and axe-core
//! (tests/axe, installed by scripts/test) finds nothing critical or serious on
//! the main pages in the real Chromium at a desk's and a phone's width, where
//! nothing is off-screen sideways and the first key press offers a skip link.

use std::collections::BTreeSet;
use std::io::Write as _;
use std::process::{Command, Stdio};
use std::time::Duration;

use callvault::auth::Role;
use callvault::demo::demo_contact_id;
use fantoccini::Client;

use crate::helpers::*;
use crate::support::browser::{browser, fail, sign_in, start_driver, Step};

fn unescape(s: &str) -> String {
    s.replace("&#34;", "\"")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&#60;", "<")
        .replace("&lt;", "<")
        .replace("&#62;", ">")
        .replace("&gt;", ">")
        .replace("&#38;", "&")
        .replace("&amp;", "&")
}

/// Every `pattern="..."` of a page.
fn patterns(html: &str) -> Vec<String> {
    html.split(" pattern=\"")
        .skip(1)
        .filter_map(|s| s.split('"').next())
        .map(unescape)
        .collect()
}

/// Patterns that node refuses as a browser would compile them
/// (`^(?:p)$` with the `v` flag), with the engine's message.
fn refused_by_node(node: &str, patterns: &[String]) -> Vec<(String, String)> {
    let script = r#"
const ps = JSON.parse(require('fs').readFileSync(0, 'utf8'));
const bad = [];
for (const p of ps) {
  try { new RegExp('^(?:' + p + ')$', 'v'); } catch (e) { bad.push([p, String(e.message)]); }
}
process.stdout.write(JSON.stringify(bad));
"#;
    let mut child = Command::new(node)
        .args(["-e", script])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("run node");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(serde_json::to_string(patterns).unwrap().as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "node failed");
    serde_json::from_slice(&out.stdout).unwrap()
}

#[tokio::test]
async fn every_pattern_the_pages_render_compiles_with_the_v_flag() {
    let Some(node) = require_env("CALLVAULT_NODE") else {
        return;
    };
    // The checker itself: what the `v` flag refuses (an unescaped `-` at a
    // class's end) is refused here.
    assert_eq!(
        refused_by_node(&node, &["[a-z-]+".to_owned(), "[a-z\\-]+".to_owned()]).len(),
        1
    );
    let app = spawn_demo_app().await;
    let mut found: BTreeSet<(String, String)> = BTreeSet::new();
    let mut collect = |page: &str, html: &str| {
        for p in patterns(html) {
            found.insert((p, page.to_owned()));
        }
    };
    collect("/login", &app.page(&client(), "/login").await);
    let sup = app.login_as(Role::Supervisor).await;
    let id = demo_contact_id(0);
    for page in [
        "/contacts".to_owned(),
        format!("/contacts/{id}"),
        "/logs".to_owned(),
        format!("/logs/search?contact_id={id}"),
        "/account/totp".to_owned(),
        "/account/settings".to_owned(),
    ] {
        collect(&page, &app.page(&sup, &page).await);
    }
    // The authenticator's confirmation form (its code field).
    let r = app
        .post_form(&sup, "/account/totp", "/account/totp/enrol", &[])
        .await;
    collect("/account/totp/enrol", &r.text().await.unwrap());
    let aud = app.login_as(Role::Auditor).await;
    for page in ["/audit", "/audit/volume"] {
        collect(page, &app.page(&aud, page).await);
    }
    let adm = app.login_as(Role::Admin).await;
    collect("/admin/users", &app.page(&adm, "/admin/users").await);

    let all: Vec<String> = found.iter().map(|(p, _)| p.clone()).collect();
    assert!(
        all.iter().any(|p| p.starts_with("[A-Za-z0-9._@")),
        "the admin's username pattern is among them: {found:?}"
    );
    assert!(
        all.iter().any(|p| p.starts_with("[0-9 ]")),
        "the authenticator code's pattern is among them: {found:?}"
    );
    let mut refused = Vec::new();
    for (pattern, message) in refused_by_node(&node, &all) {
        let pages: Vec<&str> = found
            .iter()
            .filter(|(p, _)| *p == pattern)
            .map(|(_, page)| page.as_str())
            .collect();
        refused.push(format!("{pattern:?} on {pages:?}: {message}"));
    }
    assert!(
        refused.is_empty(),
        "patterns browsers ignore:\n{}",
        refused.join("\n")
    );
}

const WIDTHS: [u32; 2] = [1366, 390];

/// axe-core's critical and serious findings on the page `b` shows, one line each.
async fn axe_findings(
    b: &Client,
    axe: &str,
    name: &str,
    width: u32,
) -> Result<Vec<String>, String> {
    b.execute(axe, vec![]).await.map_err(fail("inject axe"))?;
    let result = b
        .execute_async(
            r#"
const done = arguments[arguments.length - 1];
axe.run(document, { resultTypes: ['violations'] })
  .then(r => done(JSON.stringify(r.violations.map(v => ({
      id: v.id, impact: v.impact, help: v.help,
      nodes: v.nodes.slice(0, 3).map(n => n.target.join(' '))
  })))))
  .catch(e => done('error: ' + e));
"#,
            vec![],
        )
        .await
        .map_err(fail("axe.run"))?;
    let text = result.as_str().unwrap_or_default().to_owned();
    let violations: Vec<serde_json::Value> =
        serde_json::from_str(&text).map_err(|_| format!("axe on {name}: {text}"))?;
    Ok(violations
        .iter()
        .filter(|v| matches!(v["impact"].as_str(), Some("critical" | "serious")))
        .map(|v| {
            format!(
                "{name} at {width} px: {} ({}) {}: {}",
                v["id"].as_str().unwrap_or(""),
                v["impact"].as_str().unwrap_or(""),
                v["help"].as_str().unwrap_or(""),
                v["nodes"]
            )
        })
        .collect())
}

/// Each page at each width: axe's serious and critical findings, added to `out`.
async fn check_pages(
    b: &Client,
    app: &TestApp,
    axe: &str,
    pages: &[String],
    out: &mut Vec<String>,
) -> Step {
    for page in pages {
        b.goto(&app.url(page)).await.map_err(fail("open page"))?;
        for width in WIDTHS {
            b.set_window_size(width, 900)
                .await
                .map_err(fail("window size"))?;
            tokio::time::sleep(Duration::from_millis(150)).await;
            out.extend(axe_findings(b, axe, page, width).await?);
            // Nothing off-screen sideways: wide tables stack or scroll in
            // their own (focusable) box.
            let sizes = b
                .execute(
                    "return [document.documentElement.scrollWidth, document.documentElement.clientWidth];",
                    vec![],
                )
                .await
                .map_err(fail("page width"))?;
            if sizes[0].as_u64().is_none() || sizes[0] != sizes[1] {
                out.push(format!(
                    "{page} at {width} px: the document is {} px wide in a {} px viewport",
                    sizes[0], sizes[1]
                ));
            }
            // The first thing the keyboard reaches skips to the content.
            let first = b
                .execute(
                    "const a = document.querySelector('a[href], button, input, select, textarea'); return a ? a.outerHTML : '';",
                    vec![],
                )
                .await
                .map_err(fail("first focusable"))?;
            if !first.as_str().unwrap_or("").contains("href=\"#main\"") {
                out.push(format!(
                    "{page}: the first focusable element is not the skip link: {first}"
                ));
            }
        }
    }
    Ok(())
}

#[tokio::test]
async fn the_main_pages_have_no_critical_or_serious_axe_finding_at_desk_and_phone_width() {
    let Some(axe_path) = require_env("CALLVAULT_AXE_JS") else {
        return;
    };
    let axe = std::fs::read_to_string(&axe_path).expect("axe.min.js (scripts/test installs it)");
    let Some(driver) = start_driver().await else {
        return;
    };
    let app = spawn_demo_app().await;
    for (name, role) in [
        ("sam", Role::Supervisor),
        ("alice", Role::Auditor),
        ("root", Role::Admin),
    ] {
        app.add_user(name, role).await;
    }
    let id = demo_contact_id(0);
    let mut findings = Vec::new();
    let mut errors = Vec::new();
    let journeys: [(&str, Vec<String>); 3] = [
        (
            "sam",
            vec![
                "/contacts".to_owned(),
                format!("/contacts/{id}"),
                "/logs".to_owned(),
                "/logs/%2Faws%2Fconnect%2Fcallvault-demo/legacy-debug-flow%2Fleaked".to_owned(),
            ],
        ),
        ("alice", vec!["/audit".to_owned()]),
        ("root", vec!["/admin/users".to_owned()]),
    ];
    for (i, (user, pages)) in journeys.iter().enumerate() {
        let b = browser(&driver, user).await;
        let step = async {
            if i == 0 {
                // The sign-in page, before anyone signs in.
                check_pages(&b, &app, &axe, &["/login".to_owned()], &mut findings).await?;
                b.set_window_size(1280, 900)
                    .await
                    .map_err(fail("window size"))?;
            }
            sign_in(&b, &app, user).await?;
            check_pages(&b, &app, &axe, pages, &mut findings).await
        }
        .await;
        if let Err(e) = step {
            errors.push(format!("{user}: {e}"));
        }
        let _ = b.close().await;
    }
    assert!(errors.is_empty(), "{}", errors.join("\n"));
    assert!(
        findings.is_empty(),
        "axe found critical or serious problems:\n{}",
        findings.join("\n")
    );
}
