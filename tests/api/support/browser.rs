//! Driving the real Chromium (Debian's chromedriver) for the browser tests.

use crate::helpers::*;
use fantoccini::{Client, ClientBuilder, Locator};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

pub struct Driver {
    child: Child,
    url: String,
    _profiles: tempfile::TempDir,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub async fn start_driver() -> Option<Driver> {
    let path = require_env("CALLVAULT_CHROMEDRIVER")?;
    let port = free_port();
    let child = Command::new(path)
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start chromedriver");
    // Owned by the Driver at once, so it is killed and reaped on every path.
    let driver = Driver {
        child,
        url: format!("http://127.0.0.1:{port}"),
        _profiles: tempfile::tempdir().unwrap(),
    };
    for _ in 0..100 {
        if reqwest::get(format!("{}/status", driver.url)).await.is_ok() {
            return Some(driver);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("chromedriver did not start");
}

pub async fn browser(driver: &Driver, name: &str) -> Client {
    let profile = driver._profiles.path().join(name);
    let chrome = std::env::var("CALLVAULT_CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    let caps = serde_json::json!({
        "goog:chromeOptions": {
            "binary": chrome,
            "args": [
                "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--disable-background-networking", "--disable-component-update", "--no-first-run",
                "--disable-sync", "--window-size=1280,900",
                format!("--user-data-dir={}", profile.display()),
            ]
        }
    });
    let serde_json::Value::Object(caps) = caps else {
        unreachable!()
    };
    ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(caps)
        .connect(&driver.url)
        .await
        .expect("a browser session")
}

pub type Step = Result<(), String>;

pub fn fail<E: std::fmt::Debug>(what: &str) -> impl FnOnce(E) -> String + '_ {
    move |e| format!("{what}: {e:?}")
}

pub async fn fill(b: &Client, css: &str, text: &str) -> Step {
    b.find(Locator::Css(css))
        .await
        .map_err(fail(css))?
        .send_keys(text)
        .await
        .map_err(fail("type"))
}

pub async fn click(b: &Client, css: &str) -> Step {
    b.find(Locator::Css(css))
        .await
        .map_err(fail(css))?
        .click()
        .await
        .map_err(fail("click"))
}

pub async fn sign_in(b: &Client, app: &TestApp, user: &str) -> Step {
    b.goto(&app.url("/login"))
        .await
        .map_err(fail("open /login"))?;
    fill(b, "input[name=username]", user).await?;
    fill(b, "input[name=password]", PASSWORD).await?;
    click(b, "form[action='/login'] button").await?;
    b.wait()
        .for_element(Locator::Css("form.signout"))
        .await
        .map_err(fail("signed in"))?;
    let url = b.current_url().await.map_err(fail("url"))?;
    // A sign-in lands on the role's own page.
    let homes = callvault::auth::Role::ALL.map(|r| r.home());
    if !homes.contains(&url.path()) {
        return Err(format!(
            "{user} did not land on their role's page but on {url}"
        ));
    }
    Ok(())
}

/// Waits (up to 10 s) until the browser's URL contains `needle`.
pub async fn wait_for_url(b: &Client, needle: &str) -> Step {
    for _ in 0..100 {
        if b.current_url()
            .await
            .map_err(fail("url"))?
            .as_str()
            .contains(needle)
        {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Err(format!("the browser never reached a URL with {needle:?}"))
}

/// The revealed value: on the page hidden, until "Show the value" is pressed.
pub async fn revealed_value(b: &Client) -> Result<String, String> {
    let el = b
        .wait()
        .for_element(Locator::Id("revealed-value"))
        .await
        .map_err(fail("revealed value"))?;
    if el.is_displayed().await.map_err(fail("displayed"))? {
        return Err("the revealed value is shown before it is asked for".into());
    }
    click(b, "#reveal-toggle summary").await?;
    el.text().await.map_err(fail("text"))
}

pub async fn source(b: &Client) -> Result<String, String> {
    b.source().await.map_err(fail("page source"))
}
