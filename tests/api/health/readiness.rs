//! `/readyz` means it: the database file, the keyring and the configured AWS
//! sources are probed in the background, and a failure is named.

use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use callvault::aws::connect::AwsConnect;
use callvault::aws::logs::AwsLogs;
use callvault::clock::OffsetClock;
use callvault::sources::LogGroupName;
use callvault::startup::{Application, Sources};

use crate::connect_fake::sdk_config_for;
use crate::helpers::*;

async fn readyz(app: &TestApp) -> (u16, String) {
    let r = client().get(app.url("/readyz")).send().await.unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

fn fast(s: &mut callvault::config::Settings) {
    s.ready_interval = Duration::from_millis(200);
}

#[tokio::test]
async fn readyz_fails_with_the_reason_when_the_database_file_becomes_unreadable() {
    let app = spawn_demo_app_custom(|_, _| {}, fast).await;
    assert_eq!(readyz(&app).await, (200, "ready".to_owned()));
    let file = app._dir.path().join("callvault.db");
    let moved = app._dir.path().join("elsewhere.db");
    // Root reads any file whatever its mode: the file goes away instead.
    std::fs::rename(&file, &moved).unwrap();
    let mut last = (0, String::new());
    for _ in 0..50 {
        last = readyz(&app).await;
        if last.0 == 503 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(last.0, 503, "not ready without its database file");
    assert!(
        last.1
            .contains("database: the database file cannot be opened"),
        "{}",
        last.1
    );
    std::fs::rename(&moved, &file).unwrap();
    eventually(10, "ready again", || async { readyz(&app).await.0 == 200 }).await;
}

#[tokio::test]
async fn readyz_fails_with_the_reason_when_a_configured_aws_source_is_unreachable() {
    // Nothing listens there.
    let sdk = sdk_config_for(&format!("http://127.0.0.1:{}", free_port())).await;
    let dir = tempfile::tempdir().unwrap();
    let db_url = sqlite_url(&dir);
    let mut settings = callvault::config::Settings::local(
        "127.0.0.1:0".parse().unwrap(),
        db_url,
        dir.path().join("secrets"),
    );
    fast(&mut settings);
    let group = LogGroupName::parse("/aws/connect/unreachable").unwrap();
    settings.log_groups = vec![group.clone()];
    settings.connect_instance_id = Some("11111111-2222-4333-8444-555555555555".into());
    let sources = Sources {
        directory: Arc::new(AwsConnect::new(
            &sdk,
            "11111111-2222-4333-8444-555555555555",
        )),
        logs: Arc::new(AwsLogs::new(&sdk, vec![group])),
    };
    let app = Application::build_with(settings, Arc::new(OffsetClock::default()), sources, None)
        .await
        .unwrap();
    let url = format!("http://127.0.0.1:{}", app.port());
    tokio::spawn(app.run_until_stopped());
    let r = client().get(format!("{url}/readyz")).send().await.unwrap();
    assert_eq!(r.status(), 503);
    let body = r.text().await.unwrap();
    assert!(
        body.contains("amazon connect: the service is unavailable"),
        "{body}"
    );
    assert!(
        body.contains("cloudwatch logs: the service is unavailable"),
        "{body}"
    );
    assert!(!body.contains("database"), "the database is fine: {body}");
    // Liveness is unaffected: the process is up.
    let r = client().get(format!("{url}/healthz")).send().await.unwrap();
    assert_eq!(r.status(), 200);
}

#[tokio::test]
async fn readyz_fails_when_the_raw_aes_key_file_is_gone() {
    let app = spawn_demo_app_custom(|_, _| {}, fast).await;
    let key = app.key_path.clone().unwrap();
    let moved = key.with_extension("moved");
    std::fs::rename(&key, &moved).unwrap();
    eventually(10, "not ready without the key file", || async {
        let (status, body) = readyz(&app).await;
        status == 503 && body.contains("keyring: the raw AES key file cannot be read")
    })
    .await;
    std::fs::rename(&moved, &key).unwrap();
    eventually(10, "ready again", || async { readyz(&app).await.0 == 200 }).await;
}

#[test]
fn serve_refuses_to_start_with_aws_sources_configured_but_no_region() {
    let dir = tempfile::tempdir().unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_callvault"))
        .args(["serve", "--listen", "127.0.0.1:0"])
        .env("DATABASE_URL", sqlite_url(&dir))
        .env("CALLVAULT_SECRETS_DIR", dir.path().join("secrets"))
        .env("CALLVAULT_LOG_GROUPS", "/aws/connect/callvault")
        .env_remove("AWS_REGION")
        .env_remove("AWS_DEFAULT_REGION")
        .env_remove("AWS_PROFILE")
        .env("AWS_CONFIG_FILE", dir.path().join("no-config"))
        .env(
            "AWS_SHARED_CREDENTIALS_FILE",
            dir.path().join("no-credentials"),
        )
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("no AWS region is set"), "{err}");
}

#[tokio::test]
async fn without_a_contact_source_readyz_fails_and_pages_name_the_variable() {
    // No Connect instance: nothing but sign-in works, so not ready.
    let app = spawn_app().await;
    let (status, body) = readyz(&app).await;
    assert_eq!(status, 503, "{body}");
    assert!(
        body.contains("no contact source: CALLVAULT_CONNECT_INSTANCE_ID is not set"),
        "{body}"
    );
    let c = app.login_as(callvault::auth::Role::Supervisor).await;
    let r = c.get(app.url("/contacts")).send().await.unwrap();
    assert_eq!(r.status(), 503);
    let html = r.text().await.unwrap();
    assert!(html.contains("CALLVAULT_CONNECT_INSTANCE_ID"), "{html}");
    assert!(!html.contains("AWS service problem"), "{html}");
    let r = c.get(app.url("/logs")).send().await.unwrap();
    let html = r.text().await.unwrap();
    assert!(
        html.contains("CALLVAULT_LOG_GROUPS") || html.contains("No log groups"),
        "{html}"
    );
}

#[tokio::test]
async fn an_unknown_contact_is_a_not_found_page_of_its_own() {
    let app = spawn_demo_app().await;
    let c = app.login_as(callvault::auth::Role::Supervisor).await;
    let r = c
        .get(app.url("/contacts/00000000-0000-4000-8000-000000000000"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    let html = r.text().await.unwrap();
    assert!(html.contains("Not found"), "{html}");
    assert!(!html.contains("AWS service problem"), "{html}");
}
