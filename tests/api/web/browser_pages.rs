//! In Chromium: the budget counts down beside the reveal form, the
//! value is hidden until asked for and its page goes away by itself, the
//! case reference reaches the audit log and both exports, and the contact,
//! reveal and audit pages fit a 360 px phone and a 1400 px desk without
//! scrolling sideways. Screenshots of each page at each width go to
//! target/browser-screenshots/reveal-*.png (kept, to be looked at).

use std::path::PathBuf;
use std::time::Duration;

use callvault::auth::Role;
use callvault::decrypt::policy::{ApprovalMode, BudgetLimit};
use callvault::demo::{demo_card, demo_contact_id};
use fantoccini::{Client, Locator};

use crate::helpers::*;
use crate::support::browser::{
    browser, click, fail, fill, revealed_value, sign_in, source, start_driver, wait_for_url, Step,
};

const WIDTHS: [u32; 2] = [360, 1400];

fn screenshot_dir() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/browser-screenshots");
    let _ = std::fs::create_dir_all(&dir);
    dir
}

/// The page at each width: a screenshot, and no sideways scrolling (the
/// document is exactly as wide as the viewport).
async fn fits_every_width(b: &Client, name: &str) -> Step {
    for width in WIDTHS {
        b.set_window_size(width, 900)
            .await
            .map_err(fail("window size"))?;
        tokio::time::sleep(Duration::from_millis(200)).await;
        let sizes = b
            .execute(
                "return [document.documentElement.scrollWidth, document.documentElement.clientWidth];",
                vec![],
            )
            .await
            .map_err(fail("page width"))?;
        let png = b.screenshot().await.map_err(fail("screenshot"))?;
        let _ = std::fs::write(
            screenshot_dir().join(format!("reveal-{name}-{width}.png")),
            png,
        );
        let (doc, viewport) = (sizes[0].as_u64(), sizes[1].as_u64());
        if doc.is_none() || doc != viewport {
            return Err(format!(
                "{name} at {width} px: the document is {doc:?} px wide in a {viewport:?} px viewport"
            ));
        }
    }
    b.set_window_size(1280, 900)
        .await
        .map_err(fail("window size"))
}

async fn budget_text(b: &Client) -> Result<String, String> {
    b.find(Locator::Id("budget"))
        .await
        .map_err(fail("budget"))?
        .text()
        .await
        .map_err(fail("budget text"))
}

async fn journey(app: &TestApp, sup: &Client, aud: &Client) -> Step {
    let contact = demo_contact_id(0);
    let card = demo_card(0);
    sign_in(sup, app, "sam").await?;
    sup.goto(&app.url(&format!("/contacts/{contact}")))
        .await
        .map_err(fail("contact"))?;
    let before = budget_text(sup).await?;
    if !before.contains("5 of 5 reveals left") {
        return Err(format!("budget before: {before:?}"));
    }
    fits_every_width(sup, "contact").await?;
    fill(sup, "form.reveal input[name=reason]", "chargeback 12").await?;
    fill(sup, "form.reveal input[name=case_ref]", "CB-2026/0042").await?;
    click(sup, "form.reveal button").await?;
    // Hidden until asked for, then shown.
    let value = revealed_value(sup).await?;
    if value.replace(" ", "") != card {
        return Err(format!("revealed {value:?}"));
    }
    fits_every_width(sup, "reveal").await?;
    // The page goes away by itself (6 s here), back to the contact, where the
    // budget has counted down.
    wait_for_url(sup, "m=value_hidden").await?;
    if source(sup).await?.shows(&card) {
        return Err("the value is still on the page after it closed".into());
    }
    let after = budget_text(sup).await?;
    if !after.contains("4 of 5 reveals left") {
        return Err(format!("budget after one reveal: {after:?}"));
    }

    // The auditor finds the case reference in the log and in both exports.
    sign_in(aud, app, "alice").await?;
    aud.goto(&app.url(&format!("/audit?action=decrypt&contact={}", &contact[..8])))
        .await
        .map_err(fail("audit page"))?;
    let page = source(aud).await?;
    if !page.contains("CB-2026/0042") {
        return Err("the case reference is not on the audit page".into());
    }
    fits_every_width(aud, "audit").await?;
    let cookie = aud
        .get_named_cookie("callvault_session")
        .await
        .map_err(fail("session cookie"))?;
    for format in ["csv", "jsonl"] {
        let body = reqwest::Client::new()
            .get(app.url(&format!("/audit/export?format={format}&action=decrypt")))
            .header("cookie", format!("callvault_session={}", cookie.value()))
            .send()
            .await
            .map_err(fail("export"))?
            .text()
            .await
            .map_err(fail("export body"))?;
        if !body.contains("CB-2026/0042") {
            return Err(format!(
                "the {format} export has no case reference: {body:.300}"
            ));
        }
        if body.shows(&card) {
            return Err(format!("the {format} export holds the value"));
        }
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reveal_and_the_audit_log_in_a_real_browser_at_phone_and_desk_widths() {
    let Some(driver) = start_driver().await else {
        return;
    };
    let app = spawn_demo_app_custom(
        |_, _| {},
        |s| {
            s.policy.budget = BudgetLimit(Some(5));
            s.policy.show_for = Duration::from_secs(6);
        },
    )
    .await;
    app.add_user("sam", Role::Supervisor).await;
    app.add_user("alice", Role::Auditor).await;
    let sup = browser(&driver, "supervisor").await;
    let aud = browser(&driver, "auditor").await;
    let result = journey(&app, &sup, &aud).await;
    if let Err(e) = &result {
        for (name, b) in [("supervisor", &sup), ("auditor", &aud)] {
            if let Ok(png) = b.screenshot().await {
                let _ = std::fs::write(
                    screenshot_dir().join(format!("reveal-failed-{name}.png")),
                    png,
                );
            }
        }
        eprintln!("the reveal pages journey failed: {e}");
    }
    for b in [sup, aud] {
        let _ = b.close().await;
    }
    result.unwrap();
    assert_audit_free_of(&app, &demo_card(0)).await;
}

/// At 390 px (a phone), a pending request's Approve and Reject are on
/// screen: inside the viewport, with neither the page nor the table's box
/// scrolling sideways.
async fn approvals_on_a_phone(app: &TestApp, b: &Client) -> Step {
    sign_in(b, app, "bob").await?;
    b.set_window_size(390, 844)
        .await
        .map_err(fail("window size"))?;
    b.goto(&app.url("/approvals"))
        .await
        .map_err(fail("approvals"))?;
    b.wait()
        .for_element(Locator::Css("form[action$='/approve'] button"))
        .await
        .map_err(fail("the approve button"))?;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let png = b.screenshot().await.map_err(fail("screenshot"))?;
    let _ = std::fs::write(screenshot_dir().join("approvals-390.png"), png);
    let seen = b
        .execute(
            r#"const vw = document.documentElement.clientWidth;
               const out = [];
               for (const sel of ["form[action$='/approve'] button", "form[action$='/reject'] button"]) {
                 const el = document.querySelector(sel);
                 const r = el.getBoundingClientRect();
                 const box = el.closest(".scroll");
                 out.push([sel, r.left, r.right, r.width, vw,
                           box ? box.scrollWidth : 0, box ? box.clientWidth : 0]);
               }
               out.push(["page", 0, document.documentElement.scrollWidth, 1, vw, 0, 0]);
               return out;"#,
            vec![],
        )
        .await
        .map_err(fail("bounding boxes"))?;
    for item in seen.as_array().into_iter().flatten() {
        let v = item.as_array().ok_or("a measurement")?;
        let n = |i: usize| v[i].as_f64().unwrap_or(f64::NAN);
        let (what, left, right, width, vw) = (v[0].to_string(), n(1), n(2), n(3), n(4));
        if !(left >= 0.0 && right <= vw && width > 0.0) {
            return Err(format!(
                "{what} at 390 px: {left}..{right} in a {vw} px viewport"
            ));
        }
        if n(5) > n(6) {
            return Err(format!(
                "{what}: its table scrolls sideways ({} in {})",
                n(5),
                n(6)
            ));
        }
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_390_px_a_pending_requests_approve_button_is_on_screen() {
    let Some(driver) = start_driver().await else {
        return;
    };
    let app =
        spawn_demo_app_custom(|_, _| {}, |s| s.policy.approval = ApprovalMode::Required).await;
    app.add_user("sam", Role::Supervisor).await;
    app.add_user("bob", Role::Supervisor).await;
    let sam = client();
    assert_signed_in(&app.login(&sam, "sam", PASSWORD).await);
    let r = app
        .post_form(
            &sam,
            &format!("/contacts/{}", demo_contact_id(1)),
            &format!("/contacts/{}/decrypt", demo_contact_id(1)),
            &[
                ("field", "creditcard"),
                (
                    "reason",
                    "chargeback with a long reason that wraps on a phone",
                ),
                ("case_ref", "CB-2026/0042"),
            ],
        )
        .await;
    assert_redirects_to(&r, "/approvals?m=requested");
    let b = browser(&driver, "approver").await;
    let result = approvals_on_a_phone(&app, &b).await;
    if result.is_err() {
        if let Ok(png) = b.screenshot().await {
            let _ = std::fs::write(screenshot_dir().join("approvals-failed.png"), png);
        }
    }
    let _ = b.close().await;
    result.unwrap();
}

/// "Keep it open" moves the countdown (one row, no value sent again), and
/// the page still closes by itself, later.
async fn keep_it_open(app: &TestApp, b: &Client) -> Step {
    let contact = demo_contact_id(2);
    sign_in(b, app, "sam").await?;
    b.goto(&app.url(&format!("/contacts/{contact}")))
        .await
        .map_err(fail("contact"))?;
    fill(b, "form.reveal input[name=reason]", "chargeback 2").await?;
    click(b, "form.reveal button").await?;
    revealed_value(b).await?;
    let extend = b
        .wait()
        .for_element(Locator::Id("reveal-extend"))
        .await
        .map_err(fail("keep it open"))?;
    if !extend.is_displayed().await.map_err(fail("displayed"))? {
        return Err("the keep-it-open button is hidden with scripts on".into());
    }
    extend.click().await.map_err(fail("click"))?;
    let mut secs = 0;
    for _ in 0..50 {
        let text = b
            .find(Locator::Id("reveal-seconds"))
            .await
            .map_err(fail("seconds"))?
            .text()
            .await
            .map_err(fail("seconds text"))?;
        secs = text.trim().parse::<u32>().unwrap_or(0);
        if secs > 6 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    if secs <= 6 {
        return Err(format!("the countdown did not move: {secs}"));
    }
    // Past the first closing time the value's page is still there...
    tokio::time::sleep(Duration::from_secs(7)).await;
    let url = b.current_url().await.map_err(fail("url"))?;
    if !url.path().starts_with("/reveals/") {
        return Err(format!("the page closed although kept open: {url}"));
    }
    // ...and it closes by itself at the new one.
    wait_for_url(b, "m=value_hidden").await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keep_it_open_moves_the_countdown_in_a_real_browser() {
    let Some(driver) = start_driver().await else {
        return;
    };
    let app =
        spawn_demo_app_custom(|_, _| {}, |s| s.policy.show_for = Duration::from_secs(6)).await;
    app.add_user("sam", Role::Supervisor).await;
    let b = browser(&driver, "keep-open").await;
    let result = keep_it_open(&app, &b).await;
    if result.is_err() {
        if let Ok(png) = b.screenshot().await {
            let _ = std::fs::write(screenshot_dir().join("keep-open-failed.png"), png);
        }
    }
    let _ = b.close().await;
    result.unwrap();
    let rows = app.audit_rows().await;
    assert_eq!(
        rows.iter().filter(|r| r.action == "reveal_extend").count(),
        1
    );
    assert_eq!(rows.iter().filter(|r| r.action == "decrypt").count(), 1);
    assert_audit_free_of(&app, &demo_card(2)).await;
}

/// A blank reason comes back on the contact's page: the case reference
/// typed beside it is still there, the reason is marked and has the focus.
async fn blank_reason(app: &TestApp, b: &Client) -> Step {
    let contact = demo_contact_id(3);
    sign_in(b, app, "sam").await?;
    b.goto(&app.url(&format!("/contacts/{contact}")))
        .await
        .map_err(fail("contact"))?;
    // Spaces pass the browser's `required`; the console refuses them.
    fill(b, "form.reveal input[name=reason]", "   ").await?;
    fill(b, "form.reveal input[name=case_ref]", "CB-2026/0042").await?;
    click(b, "form.reveal button").await?;
    b.wait()
        .for_element(Locator::Id("reveal-refused"))
        .await
        .map_err(fail("the refusal on the contact's page"))?;
    let seen = b
        .execute(
            r#"const f = document.activeElement;
               const form = f.closest("form");
               return [f.name, f.getAttribute("aria-invalid"),
                       document.getElementById(f.getAttribute("aria-describedby")).textContent,
                       form.querySelector("input[name=case_ref]").value,
                       location.pathname];"#,
            vec![],
        )
        .await
        .map_err(fail("the focused field"))?;
    let v: Vec<String> = seen
        .as_array()
        .ok_or("an answer")?
        .iter()
        .map(|x| x.as_str().unwrap_or("").to_owned())
        .collect();
    if v[0] != "reason" || v[1] != "true" || !v[2].starts_with("Say why") {
        return Err(format!("the reason is not marked and focused: {v:?}"));
    }
    if v[3] != "CB-2026/0042" {
        return Err(format!("the case reference was not kept: {v:?}"));
    }
    if v[4] != format!("/contacts/{contact}/decrypt") && v[4] != format!("/contacts/{contact}") {
        return Err(format!("not on the contact's page: {v:?}"));
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_blank_reason_keeps_the_case_reference_typed_beside_it_in_a_real_browser() {
    let Some(driver) = start_driver().await else {
        return;
    };
    let app = spawn_demo_app().await;
    app.add_user("sam", Role::Supervisor).await;
    let b = browser(&driver, "blank-reason").await;
    let result = blank_reason(&app, &b).await;
    if result.is_err() {
        if let Ok(png) = b.screenshot().await {
            let _ = std::fs::write(screenshot_dir().join("blank-reason-failed.png"), png);
        }
    }
    let _ = b.close().await;
    result.unwrap();
    let row = app.last_audit("decrypt_denied").await.unwrap();
    assert_eq!(row.outcome, "no_reason");
    assert!(app.last_audit("decrypt").await.is_none());
}
