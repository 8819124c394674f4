//! The user journey in a real browser: Debian's Chromium driven over
//! WebDriver (chromedriver), headless, fresh profile per browser. The
//! supervisor reveals a value; the auditor finds it in the log and verifies the
//! chain; the admin disables the supervisor, whose open session stops working.
//! Screenshots of each browser go to target/browser-screenshots/ on failure.

use std::time::Duration;

use callvault::auth::Role;
use callvault::demo::{demo_card, demo_contact_id};
use fantoccini::{Client, Locator};

use crate::helpers::*;
use crate::support::browser::*;

async fn journey(app: &TestApp, sup: &Client, aud: &Client, adm: &Client) -> Step {
    let contact = demo_contact_id(0);
    let card = demo_card(0);
    // Supervisor: sign in, search, open the contact: ciphertext only.
    sign_in(sup, app, "sam").await?;
    sup.goto(&app.url("/contacts"))
        .await
        .map_err(fail("contacts"))?;
    fill(sup, "input[name=contact_id]", &contact).await?;
    click(sup, "form.filters button").await?;
    // An exact id opens the contact itself.
    wait_for_url(sup, &format!("/contacts/{contact}")).await?;
    let page = source(sup).await?;
    if !page.contains("ciphertext") || page.shows(&card) {
        return Err("the contact page must show ciphertext only".into());
    }
    // Reveal with a hostile reason: shown once, rendered inert.
    fill(
        sup,
        "form.reveal input[name=reason]",
        "<script>alert('x')</script> chargeback 12",
    )
    .await?;
    click(sup, "form.reveal button").await?;
    let value = revealed_value(sup).await?;
    if value.replace(" ", "") != card {
        return Err(format!("revealed {value:?}, expected the card"));
    }
    // Back in history: the contact page again, no value on it.
    sup.back().await.map_err(fail("back"))?;
    if source(sup).await?.shows(&card) {
        return Err("the value is visible after going back".into());
    }
    // Forward to the POST result: not re-shown from a cache.
    sup.forward().await.map_err(fail("forward"))?;
    tokio::time::sleep(Duration::from_millis(300)).await;
    if source(sup).await?.shows(&card) {
        return Err("the value came back from history".into());
    }
    // Double submit: two reveals, two audit rows.
    sup.goto(&app.url(&format!("/contacts/{contact}")))
        .await
        .map_err(fail("contact again"))?;
    for _ in 0..2 {
        sup.goto(&app.url(&format!("/contacts/{contact}")))
            .await
            .map_err(fail("contact"))?;
        fill(sup, "form.reveal input[name=reason]", "second look").await?;
        click(sup, "form.reveal button").await?;
        revealed_value(sup).await?;
    }
    let reveals = app
        .audit_rows()
        .await
        .into_iter()
        .filter(|r| r.action == "decrypt")
        .count();
    if reveals != 3 {
        return Err(format!("{reveals} decrypt rows for 3 reveals"));
    }

    // Auditor: finds the reveal, reason escaped; verifies the chain.
    sign_in(aud, app, "alice").await?;
    aud.goto(&app.url("/audit?action=decrypt"))
        .await
        .map_err(fail("audit page"))?;
    let page = source(aud).await?;
    if !page.contains(&contact) || !page.contains("chargeback 12") {
        return Err("the auditor does not see the reveal".into());
    }
    if page.contains("<script>alert('x')</script>") || page.shows(&card) {
        return Err("the audit page shows the reason raw or the value".into());
    }
    let export = aud
        .find(Locator::Css("a[href^='/audit/export?format=csv']"))
        .await
        .map_err(fail("export link"))?;
    if export.attr("href").await.map_err(fail("href"))?.is_none() {
        return Err("no export link".into());
    }
    click(aud, "form[action='/audit/verify'] button").await?;
    aud.wait()
        .for_element(Locator::Css("p.ok, p.error"))
        .await
        .map_err(fail("verify result"))?;
    let page = source(aud).await?;
    if !page.contains("Chain verified") {
        return Err("the chain does not verify in the browser".into());
    }
    // Reusing a form after signing out does nothing.
    click(aud, "form.signout button").await?;
    aud.wait()
        .for_element(Locator::Css("form[action='/login']"))
        .await
        .map_err(fail("signed out"))?;
    aud.back().await.map_err(fail("back"))?;
    tokio::time::sleep(Duration::from_millis(300)).await;
    if let Ok(button) = aud
        .find(Locator::Css("form[action='/audit/verify'] button"))
        .await
    {
        let _ = button.click().await;
    }
    let verifies_after = app
        .audit_rows()
        .await
        .into_iter()
        .filter(|r| r.action == "audit_verify" && r.actor == "alice")
        .count();
    if verifies_after != 1 {
        return Err("a form reused after sign-out was accepted".into());
    }

    // Admin disables the supervisor; the supervisor's open session stops.
    sign_in(adm, app, "root").await?;
    adm.goto(&app.url("/admin/users"))
        .await
        .map_err(fail("users page"))?;
    let sam = app.state.users.by_name("sam").await.unwrap().unwrap();
    click(
        adm,
        &format!("form[action='/admin/users/{}/disable'] button", sam.id),
    )
    .await?;
    adm.wait()
        .for_element(Locator::Css("p.ok"))
        .await
        .map_err(fail("disabled notice"))?;
    sup.goto(&app.url("/contacts"))
        .await
        .map_err(fail("contacts after disable"))?;
    let url = sup.current_url().await.map_err(fail("url"))?;
    if url.path() != "/login" {
        return Err(format!("the disabled supervisor still reaches {url}"));
    }
    Ok(())
}

/// Enrol an authenticator from its QR page, let the enrolment's step-up go
/// stale, be sent to step up by a reveal, step up, reveal.
async fn step_up_journey(app: &TestApp, sup: &Client) -> Step {
    let contact = demo_contact_id(3);
    sign_in(sup, app, "sam").await?;
    click(sup, "a[href='/account/totp']").await?;
    click(sup, "form[action='/account/totp/enrol'] button").await?;
    sup.wait()
        .for_element(Locator::Css("div.qr svg"))
        .await
        .map_err(fail("the QR code"))?;
    let secret = sup
        .find(Locator::Id("totp-secret"))
        .await
        .map_err(fail("the key"))?
        .text()
        .await
        .map_err(fail("text"))?;
    let totp = totp_rs::TOTP::new(
        totp_rs::Algorithm::SHA1,
        6,
        1,
        30,
        totp_rs::Secret::Encoded(secret)
            .to_bytes()
            .map_err(fail("base32 key"))?,
        None,
        "sam".into(),
    )
    .map_err(fail("totp"))?;
    let code = |app: &TestApp| {
        use callvault::clock::Clock as _;
        totp.generate(app.clock.now().timestamp() as u64)
    };
    fill(
        sup,
        "form[action='/account/totp/confirm'] input[name=password]",
        PASSWORD,
    )
    .await?;
    fill(
        sup,
        "form[action='/account/totp/confirm'] input[name=code]",
        &code(app),
    )
    .await?;
    click(sup, "form[action='/account/totp/confirm'] button").await?;
    sup.wait()
        .for_element(Locator::Id("totp-status"))
        .await
        .map_err(fail("enrolled"))?;
    // Six minutes later a reveal needs a fresh step-up.
    app.clock.advance(Duration::from_secs(6 * 60));
    let reveal = || async {
        sup.goto(&app.url(&format!("/contacts/{contact}")))
            .await
            .map_err(fail("contact"))?;
        fill(sup, "form.reveal input[name=reason]", "dispute 31").await?;
        click(sup, "form.reveal button").await
    };
    reveal().await?;
    wait_for_url(sup, "/account/step-up?next=").await?;
    fill(sup, "input[name=password]", PASSWORD).await?;
    fill(sup, "input[name=code]", &code(app)).await?;
    click(sup, "form[action='/account/step-up'] button").await?;
    // The interrupted reveal completes by itself: no retyping, no second press.
    wait_for_url(sup, "/reveals/").await?;
    let value = revealed_value(sup).await?;
    if value.replace(" ", "") != demo_card(3) {
        return Err(format!("revealed {value:?} after the step-up"));
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_supervisor_enrols_an_authenticator_and_steps_up_in_a_real_browser() {
    let Some(driver) = start_driver().await else {
        return;
    };
    let app = spawn_demo_app().await;
    app.add_user("sam", Role::Supervisor).await;
    let sup = browser(&driver, "supervisor").await;
    let result = step_up_journey(&app, &sup).await;
    if let Err(e) = &result {
        let dir =
            std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/browser-screenshots");
        let _ = std::fs::create_dir_all(&dir);
        if let Ok(png) = sup.screenshot().await {
            let _ = std::fs::write(dir.join("step-up.png"), png);
        }
        eprintln!(
            "step-up journey failed: {e}; screenshot in {}",
            dir.display()
        );
    }
    let _ = sup.close().await;
    result.unwrap();
    let steps: Vec<_> = app
        .audit_rows()
        .await
        .into_iter()
        .filter(|r| {
            matches!(
                r.action.as_str(),
                "totp_enrol" | "decrypt_denied" | "step_up_required" | "step_up" | "decrypt"
            )
        })
        .map(|r| format!("{}:{}", r.action, r.outcome))
        .collect();
    assert_eq!(
        steps,
        [
            "totp_enrol:started",
            "totp_enrol:ok",
            "step_up_required:pending",
            "step_up:ok",
            "decrypt:ok"
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_whole_journey_works_in_a_real_browser() {
    let Some(driver) = start_driver().await else {
        return;
    };
    let app = spawn_demo_app().await;
    app.add_user("sam", Role::Supervisor).await;
    app.add_user("alice", Role::Auditor).await;
    app.add_user("root", Role::Admin).await;
    let sup = browser(&driver, "supervisor").await;
    let aud = browser(&driver, "auditor").await;
    let adm = browser(&driver, "admin").await;
    let result = journey(&app, &sup, &aud, &adm).await;
    if let Err(e) = &result {
        let dir =
            std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/browser-screenshots");
        let _ = std::fs::create_dir_all(&dir);
        for (name, b) in [("supervisor", &sup), ("auditor", &aud), ("admin", &adm)] {
            if let Ok(png) = b.screenshot().await {
                let _ = std::fs::write(dir.join(format!("{name}.png")), png);
            }
        }
        eprintln!(
            "browser journey failed: {e}; screenshots in {}",
            dir.display()
        );
    }
    for b in [sup, aud, adm] {
        let _ = b.close().await;
    }
    result.unwrap();
}
