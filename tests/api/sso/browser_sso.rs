//! Single sign-on in a real browser (Chromium over WebDriver) against the
//! test OpenID Provider: an SSO supervisor signs in with the button, is sent
//! back to the provider by a reveal and reveals after signing in there again; a
//! person without a mapped group sees a clear refusal.

use std::time::Duration;

use callvault::demo::{demo_card, demo_contact_id};
use fantoccini::{Client, Locator};

use crate::oidc::{spawn_sso_app, SsoApp};
use crate::support::browser::{
    browser, click, fail, fill, source, start_driver, wait_for_url, Step,
};

/// At the provider's sign-in form: sign in as `account`.
async fn at_provider(b: &Client, s: &SsoApp, account: &str) -> Step {
    wait_for_url(b, &format!("{}/interaction/", s.issuer)).await?;
    fill(b, "#login", account).await?;
    click(b, "#sign-in").await
}

async fn journey(s: &SsoApp, sup: &Client, nobody: &Client) -> Step {
    let app = &s.app;
    let contact = demo_contact_id(5);
    // The sign-in page's button leads to the provider and back, signed in.
    sup.goto(&app.url("/login")).await.map_err(fail("/login"))?;
    click(sup, "#sso-sign-in").await?;
    at_provider(sup, s, "sam.sso").await?;
    sup.wait()
        .for_element(Locator::Css("form.signout"))
        .await
        .map_err(fail("signed in after SSO"))?;
    let page = source(sup).await?;
    if !page.contains("sam.sso") || !page.contains("supervisor") {
        return Err("the SSO supervisor is not shown as signed in".into());
    }
    // A reveal sends them back to the provider (prompt=login)...
    sup.goto(&app.url(&format!("/contacts/{contact}")))
        .await
        .map_err(fail("contact"))?;
    fill(sup, "form.reveal input[name=reason]", "refund 88").await?;
    click(sup, "form.reveal button").await?;
    wait_for_url(sup, "/account/step-up?next=").await?;
    click(sup, "#sso-step-up").await?;
    at_provider(sup, s, "sam.sso").await?;
    // ...and back: the interrupted reveal (its reason kept across the trip
    // to the provider) completes by itself.
    wait_for_url(sup, &app.url("/reveals/")).await?;
    let value = crate::support::browser::revealed_value(sup).await?;
    if value.replace(" ", "") != demo_card(5) {
        return Err(format!("revealed {value:?} after the SSO step-up"));
    }
    // No group for callvault: a clear page, not signed in.
    nobody
        .goto(&app.url("/login"))
        .await
        .map_err(fail("/login"))?;
    click(nobody, "#sso-sign-in").await?;
    at_provider(nobody, s, "nobody.sso").await?;
    nobody
        .wait()
        .for_element(Locator::Css("p.error"))
        .await
        .map_err(fail("refusal page"))?;
    if !source(nobody).await?.contains("none of your groups") {
        return Err("the refusal does not say why".into());
    }
    nobody
        .goto(&app.url("/contacts"))
        .await
        .map_err(fail("contacts"))?;
    let url = nobody.current_url().await.map_err(fail("url"))?;
    if url.path() != "/login" {
        return Err(format!("a refused person reaches {url}"));
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_sso_supervisor_signs_in_steps_up_and_reveals_in_a_real_browser() {
    let Some(s) = spawn_sso_app().await else {
        return;
    };
    let Some(driver) = start_driver().await else {
        return;
    };
    let sup = browser(&driver, "sso-supervisor").await;
    let nobody = browser(&driver, "sso-nobody").await;
    let result = journey(&s, &sup, &nobody).await;
    if let Err(e) = &result {
        let dir =
            std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/browser-screenshots");
        let _ = std::fs::create_dir_all(&dir);
        for (name, b) in [("sso-supervisor", &sup), ("sso-nobody", &nobody)] {
            if let Ok(png) = b.screenshot().await {
                let _ = std::fs::write(dir.join(format!("{name}.png")), png);
            }
        }
        eprintln!("SSO journey failed: {e}; screenshots in {}", dir.display());
    }
    let _ = sup.close().await;
    let _ = nobody.close().await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    result.unwrap();
    let rows = s.app.audit_rows().await;
    assert!(rows
        .iter()
        .any(|r| r.action == "step_up" && r.actor == "sam.sso" && r.detail.starts_with("sso ")));
    assert!(rows
        .iter()
        .any(|r| r.action == "decrypt" && r.actor == "sam.sso"));
    assert!(rows.iter().any(
        |r| r.action == "login_failed" && r.detail == "sso no_mapped_group subject=nobody.sso"
    ));
}
