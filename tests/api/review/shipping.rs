//! The record outside the database. Rows reach CloudWatch Logs
//! (moto) through the outbox, checkpoints are signed with a KMS key, and
//! `audit verify --checkpoints` catches a truncated log.

use std::time::Duration;

use aws_sdk_kms::types::{KeySpec, KeyUsageType};
use callvault::audit::ship::{ShipSettings, CHECKPOINT_STREAM, ROWS_STREAM};
use callvault::audit::AuditRow;
use callvault::auth::Role;
use callvault::demo::{demo_card, demo_contact_id};

use crate::helpers::*;

async fn signing_key(sdk: &aws_config::SdkConfig) -> String {
    aws_sdk_kms::Client::new(sdk)
        .create_key()
        .key_usage(KeyUsageType::SignVerify)
        .key_spec(KeySpec::EccNistP256)
        .send()
        .await
        .expect("moto creates an ECC signing key")
        .key_metadata()
        .unwrap()
        .key_id()
        .to_owned()
}

fn ship(group: &str, key: Option<String>, every_rows: i64) -> ShipSettings {
    ShipSettings {
        log_group: group.to_owned(),
        checkpoint_key: key,
        checkpoint_every_rows: every_rows,
        checkpoint_every: Duration::from_secs(300),
        poll: Duration::from_millis(100),
        checkpoint_retry: Duration::from_millis(500),
    }
}

async fn shipped_rows(sdk: &aws_config::SdkConfig, group: &str) -> Vec<AuditRow> {
    let logs = aws_sdk_cloudwatchlogs::Client::new(sdk);
    let mut rows = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let out = logs
            .get_log_events()
            .log_group_name(group)
            .log_stream_name(ROWS_STREAM)
            .start_from_head(true)
            .set_next_token(token.clone())
            .send()
            .await
            .unwrap();
        for e in out.events() {
            rows.push(serde_json::from_str(e.message().unwrap()).unwrap());
        }
        let next = out.next_forward_token().map(str::to_owned);
        if out.events().is_empty() || next == token {
            break;
        }
        token = next;
    }
    rows
}

async fn backlog(app: &TestApp) -> i64 {
    callvault::audit::ship::backlog(&app.state.audit)
        .await
        .unwrap()
        .0
}

fn verify_checkpoints(app: &TestApp, group: &str, key: &str) -> (bool, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_callvault"))
        .args(["audit", "verify", "--checkpoints"])
        .env("DATABASE_URL", &app.db_url)
        .env("CALLVAULT_SECRETS_DIR", &app.secrets_dir)
        .env("CALLVAULT_AUDIT_LOG_GROUP", group)
        .env("CALLVAULT_CHECKPOINT_KEY", key)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

#[tokio::test]
async fn every_row_is_shipped_and_signed_and_truncation_is_caught() {
    if require_env("AWS_ENDPOINT_URL").is_none() {
        return;
    }
    let sdk = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    let key = signing_key(&sdk).await;
    let group = format!("callvault-audit-{}", uuid::Uuid::new_v4().simple());
    let app = spawn_demo_app_custom(
        |_, _| {},
        |s| s.ship = Some(ship(&group, Some(key.clone()), 1)),
    )
    .await;
    let c = app.login_as(Role::Supervisor).await;
    for i in 0..3 {
        let r = app
            .post_form(
                &c,
                &format!("/contacts/{}", demo_contact_id(i)),
                &format!("/contacts/{}/decrypt", demo_contact_id(i)),
                &[("field", "creditcard"), ("reason", "shipping test")],
            )
            .await;
        assert!(r.text().await.unwrap().shows(&demo_card(i)));
    }
    let head = app.state.audit.head().await.unwrap().unwrap().0;
    eventually(30, "the outbox drains and the head is signed", || async {
        let signed = callvault::audit::ship::local_checkpoints(&app.state.audit)
            .await
            .unwrap()
            .last()
            .map_or(0, |c| c.seq);
        backlog(&app).await == 0 && signed >= head
    })
    .await;
    // CloudWatch holds every row, unchanged, in order.
    let shipped = shipped_rows(&sdk, &group).await;
    let local = app.audit_rows().await;
    assert_eq!(shipped.len(), local.len());
    assert_eq!(shipped, local);
    for row in &shipped {
        assert!(!format!("{row:?}").shows(&demo_card(0)));
    }
    // ...and the signed checkpoints.
    let out = aws_sdk_cloudwatchlogs::Client::new(&sdk)
        .get_log_events()
        .log_group_name(&group)
        .log_stream_name(CHECKPOINT_STREAM)
        .start_from_head(true)
        .send()
        .await
        .unwrap();
    assert!(!out.events().is_empty());
    let (ok, text) = verify_checkpoints(&app, &group, &key);
    assert!(ok, "{text}");
    assert!(text.contains("audit chain verified"), "{text}");

    // An attacker with the database deletes the newest 3 rows: the chain
    // alone still verifies, the checkpoints do not.
    let before = app.state.audit.head().await.unwrap().unwrap().0;
    eventually(30, "the CLI's own row is shipped and signed", || async {
        let signed = callvault::audit::ship::local_checkpoints(&app.state.audit)
            .await
            .unwrap()
            .last()
            .map_or(0, |c| c.seq);
        backlog(&app).await == 0 && signed >= before
    })
    .await;
    for sql in [
        "DROP TRIGGER audit_log_no_delete",
        "DELETE FROM audit_log WHERE seq > (SELECT MAX(seq) - 3 FROM audit_log)",
        "DELETE FROM audit_checkpoints WHERE seq > (SELECT MAX(seq) FROM audit_log)",
    ] {
        sqlx::query(sql).execute(&app.state.db.pool).await.unwrap();
    }
    assert!(
        app.state.audit.verify().await.unwrap().ok(),
        "a hash chain cannot see this"
    );
    let (ok, text) = verify_checkpoints(&app, &group, &key);
    assert!(!ok, "{text}");
    assert!(
        text.contains("signed in a checkpoint but is missing"),
        "{text}"
    );
    assert!(text.contains("(truncated)"), "{text}");
    // The failed check is itself on record.
    let row = app.last_audit("audit_verify").await.unwrap();
    assert_eq!(row.outcome, "broken");

    // A checkpoint signed with someone else's key proves nothing.
    let mallory = signing_key(&sdk).await;
    let (seq, hash, ts) = app.state.audit.head().await.unwrap().unwrap();
    let forged = callvault::audit::ship::sign_checkpoint(
        &aws_sdk_kms::Client::new(&sdk),
        &mallory,
        seq + 10,
        &hash,
        ts,
        ts,
    )
    .await
    .unwrap();
    sqlx::query("INSERT INTO audit_checkpoints (seq, hash, ts_us, signed_us, key_id, signature) VALUES ($1, $2, $3, $4, $5, $6)")
        .bind(forged.seq)
        .bind(&forged.hash)
        .bind(forged.ts_us)
        .bind(forged.signed_us)
        .bind(&forged.key_id)
        .bind(&forged.signature)
        .execute(&app.state.db.pool)
        .await
        .unwrap();
    let (ok, text) = verify_checkpoints(&app, &group, &key);
    assert!(!ok);
    assert!(text.contains("signed by another key"), "{text}");
    // Without the trusted key named, --checkpoints refuses to guess.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_callvault"))
        .args(["audit", "verify", "--checkpoints"])
        .env("DATABASE_URL", &app.db_url)
        .env("CALLVAULT_SECRETS_DIR", &app.secrets_dir)
        .env_remove("CALLVAULT_CHECKPOINT_KEY")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("CALLVAULT_CHECKPOINT_KEY"));
}

#[tokio::test]
async fn a_cloudwatch_outage_delays_shipping_but_not_the_console() {
    if require_env("CALLVAULT_PYTHON").is_none() {
        return;
    }
    let port = free_port();
    let endpoint = format!("http://127.0.0.1:{port}");
    let sdk = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .endpoint_url(&endpoint)
        .region(aws_config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_kms::config::Credentials::new(
            "t", "t", None, None, "test",
        ))
        .load()
        .await;
    let group = "callvault-audit-outage";
    // CloudWatch is down from the start.
    let app = spawn_demo_app_sdk(
        |_, _| {},
        |s| s.ship = Some(ship(group, None, 1000)),
        Some(sdk.clone()),
    )
    .await;
    let c = app.login_as(Role::Supervisor).await;
    let id = demo_contact_id(5);
    let r = app
        .post_form(
            &c,
            &format!("/contacts/{id}"),
            &format!("/contacts/{id}/decrypt"),
            &[("field", "zipcode"), ("reason", "during the outage")],
        )
        .await;
    assert_eq!(
        r.status(),
        reqwest::StatusCode::OK,
        "the local chain goes on"
    );
    // The gap is visible to auditors.
    let auditor = app.login_as(Role::Auditor).await;
    eventually(20, "the auditor sees the shipping error", || async {
        let html = app.page(&auditor, "/audit").await;
        html.contains("row(s) waiting") && html.contains("Last error")
    })
    .await;
    assert!(backlog(&app).await > 0);
    // CloudWatch comes back: shipping catches up with everything.
    let _moto = Moto::start(port).unwrap();
    eventually(90, "the outbox drains after the outage", || async {
        backlog(&app).await == 0
    })
    .await;
    let shipped = shipped_rows(&sdk, group).await;
    let local = app.audit_rows().await;
    // Everything, in order, once: nothing reached CloudWatch during the outage.
    assert_eq!(shipped, local);
}

/// A pass-through to moto that can fail KMS calls (and only those), as an
/// outage of KMS alone would.
struct KmsSwitch {
    up: std::sync::Arc<std::sync::atomic::AtomicBool>,
    address: String,
}

fn kms_switch(moto: String) -> KmsSwitch {
    use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
    let up = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
    let flag = up.clone();
    let client = reqwest::Client::new();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = format!("http://{}", listener.local_addr().unwrap());
    let server = HttpServer::new(move || {
        let (flag, client, moto) = (flag.clone(), client.clone(), moto.clone());
        App::new().default_service(web::to(move |req: HttpRequest, body: web::Bytes| {
            let (flag, client, moto) = (flag.clone(), client.clone(), moto.clone());
            async move {
                let target = req
                    .headers()
                    .get("x-amz-target")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("");
                if target.starts_with("TrentService.")
                    && !flag.load(std::sync::atomic::Ordering::SeqCst)
                {
                    return HttpResponse::ServiceUnavailable()
                        .content_type("application/x-amz-json-1.1")
                        .body(r#"{"__type":"KMSInternalException","message":"injected outage"}"#);
                }
                let method = reqwest::Method::from_bytes(req.method().as_str().as_bytes()).unwrap();
                let mut forward = client.request(method, format!("{moto}{}", req.uri()));
                for (k, v) in req.headers() {
                    if k.as_str() != "host" {
                        forward = forward.header(k.as_str(), v.as_bytes());
                    }
                }
                let r = forward.body(body.to_vec()).send().await.unwrap();
                let mut out = HttpResponse::build(
                    actix_web::http::StatusCode::from_u16(r.status().as_u16()).unwrap(),
                );
                for (k, v) in r.headers() {
                    if !matches!(
                        k.as_str(),
                        "content-length" | "transfer-encoding" | "connection"
                    ) {
                        out.insert_header((
                            k.as_str().to_owned(),
                            actix_web::http::header::HeaderValue::from_bytes(v.as_bytes()).unwrap(),
                        ));
                    }
                }
                out.body(r.bytes().await.unwrap().to_vec())
            }
        }))
    })
    .workers(1)
    .listen(listener)
    .unwrap()
    .run();
    tokio::spawn(server);
    KmsSwitch { up, address }
}

async fn newest_checkpoint(app: &TestApp) -> i64 {
    callvault::audit::ship::local_checkpoints(&app.state.audit)
        .await
        .unwrap()
        .last()
        .map_or(0, |c| c.seq)
}

#[tokio::test]
async fn a_kms_outage_delays_checkpoints_but_not_the_console_or_shipping() {
    let Some(moto) = require_env("AWS_ENDPOINT_URL") else {
        return;
    };
    let key =
        signing_key(&aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await).await;
    let switch = kms_switch(moto);
    let sdk = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .endpoint_url(&switch.address)
        .region(aws_config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_kms::config::Credentials::new(
            "t", "t", None, None, "test",
        ))
        .load()
        .await;
    let group = format!("callvault-kms-outage-{}", uuid::Uuid::new_v4().simple());
    let app = spawn_demo_app_sdk(
        |_, _| {},
        |s| s.ship = Some(ship(&group, Some(key.clone()), 1)),
        Some(sdk),
    )
    .await;
    let c = app.login_as(Role::Supervisor).await;
    let reveal = |k: usize| {
        let (app, c) = (&app, &c);
        async move {
            let id = demo_contact_id(k);
            app.post_form(
                c,
                &format!("/contacts/{id}"),
                &format!("/contacts/{id}/decrypt"),
                &[("field", "creditcard"), ("reason", "kms outage test")],
            )
            .await
            .status()
        }
    };
    assert_eq!(reveal(1).await, reqwest::StatusCode::OK);
    let head = app.state.audit.head().await.unwrap().unwrap().0;
    eventually(30, "the first checkpoint", || async {
        newest_checkpoint(&app).await >= head
    })
    .await;
    // KMS goes down: reveals and shipping go on, checkpoints stop, and the
    // auditor sees why.
    switch.up.store(false, std::sync::atomic::Ordering::SeqCst);
    assert_eq!(reveal(2).await, reqwest::StatusCode::OK);
    assert_eq!(reveal(3).await, reqwest::StatusCode::OK);
    let auditor = app.login_as(Role::Auditor).await;
    eventually(30, "the auditor sees the signing error", || async {
        app.page(&auditor, "/audit")
            .await
            .contains("Checkpoint error")
    })
    .await;
    let during = app.state.audit.head().await.unwrap().unwrap().0;
    eventually(30, "rows still ship during the KMS outage", || async {
        backlog(&app).await == 0
    })
    .await;
    assert!(
        newest_checkpoint(&app).await < during,
        "nothing was signed while KMS was down"
    );
    // KMS is back: signing catches up with the head.
    switch.up.store(true, std::sync::atomic::Ordering::SeqCst);
    eventually(30, "signing catches up", || async {
        newest_checkpoint(&app).await >= during
    })
    .await;
    let (ok, text) = verify_checkpoints(&app, &group, &key);
    assert!(ok, "{text}");
}
