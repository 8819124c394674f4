//! Load on loopback against the demo console (release build): requests per
//! second and latency percentiles for the contact page and a log-events page,
//! and audited decrypts per second (raw AES), with 64 concurrent clients.
//!
//!     cargo bench --bench load
//!     LOAD_SECONDS=10 LOAD_CLIENTS=64 cargo bench --bench load
//!     LOAD_FLOOD=40 LOAD_CLIENTS=8 cargo bench --bench load
//!     LOAD_FIELD=keypad_card cargo bench --bench load
//!
//! `LOAD_FIELD=keypad_card` reveals the demo's keypad values (Amazon
//! Connect's RSA-wrapped messages) instead of the Lex card numbers.
//!
//! `LOAD_FLOOD=N` runs the contact page alone and then again during a flood
//! of wrong passwords from N more clients, each attempt from its own
//! loopback address (127.x.y.z) under a name that is no user's, so no
//! throttle bucket ever locks and every attempt costs a full Argon2
//! verification: an attacker with many addresses.
//!
//! Every contact page and log page writes an audit row (durable commit), and
//! every decrypt writes one before answering, so these are end-to-end numbers.

use std::sync::Arc;
use std::time::{Duration, Instant};

use callvault::auth::password::Password;
use callvault::auth::users::Username;
use callvault::auth::Role;
use callvault::clock::SystemClock;
use callvault::demo::{demo_contact_id, DEMO_CONTACTS};

const PASSWORD: &str = "load test password";

fn csrf_in(html: &str) -> String {
    let marker = "name=\"csrf_token\" value=\"";
    let start = html.find(marker).expect("csrf token") + marker.len();
    html[start..]
        .split('"')
        .next()
        .unwrap_or_default()
        .to_owned()
}

async fn signed_in(base: &str) -> reqwest::Client {
    let c = reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .pool_max_idle_per_host(1)
        .build()
        .expect("client");
    let html = c
        .get(format!("{base}/login"))
        .send()
        .await
        .expect("login page")
        .text()
        .await
        .expect("body");
    let r = c
        .post(format!("{base}/login"))
        .form(&[
            ("username", "loadtest"),
            ("password", PASSWORD),
            ("csrf_token", &csrf_in(&html)),
        ])
        .send()
        .await
        .expect("login");
    assert_eq!(r.status(), 303, "signed in");
    c
}

/// One wrong-password sign-in from a fresh loopback address (a client bound
/// to it: the console sees a new address, so the address bucket never
/// locks); the time of the POST.
async fn wrong_password(base: &str, n: u32) -> Duration {
    let addr = std::net::Ipv4Addr::new(127, 1 + ((n >> 16) % 250) as u8, (n >> 8) as u8, n as u8);
    let c = reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .local_address(std::net::IpAddr::V4(addr))
        .build()
        .expect("client");
    let html = c
        .get(format!("{base}/login"))
        .send()
        .await
        .expect("login page")
        .text()
        .await
        .expect("body");
    let t = Instant::now();
    let r = c
        .post(format!("{base}/login"))
        .form(&[
            ("username", format!("flood{n}").as_str()),
            ("password", "not the password"),
            ("csrf_token", &csrf_in(&html)),
        ])
        .send()
        .await
        .expect("sign-in");
    assert_eq!(r.status(), 401, "refused, not throttled");
    let _ = r.bytes().await;
    t.elapsed()
}

fn summary(name: &str, clients: usize, seconds: f64, mut lat: Vec<Duration>) {
    lat.sort();
    let n = lat.len();
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    println!(
        "{name}: {clients} clients, {seconds:.1} s: {:.1} /s; latency p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms ({n} requests)",
        n as f64 / seconds,
        ms(lat[n / 2]),
        ms(lat[n * 99 / 100]),
        ms(lat[n - 1]),
    );
}

/// The contact page during a wrong-password flood of `flood` clients, and
/// one user signing in with the right password over and over meanwhile.
async fn during_flood(base: &str, clients: &[reqwest::Client], flood: usize, seconds: u64) {
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let next = Arc::new(std::sync::atomic::AtomicU32::new(0));
    let started = Instant::now();
    let attackers: Vec<_> = (0..flood)
        .map(|_| {
            let (stop, next, base) = (stop.clone(), next.clone(), base.to_owned());
            tokio::spawn(async move {
                let mut lat = Vec::new();
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let n = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    lat.push(wrong_password(&base, n).await);
                }
                lat
            })
        })
        .collect();
    let user = {
        let (stop, base) = (stop.clone(), base.to_owned());
        tokio::spawn(async move {
            let mut lat = Vec::new();
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let t = Instant::now();
                signed_in(&base).await;
                lat.push(t.elapsed());
            }
            lat
        })
    };
    // Let the flood build up before measuring the pages.
    tokio::time::sleep(Duration::from_secs(1)).await;
    run(
        &format!("contact page during a {flood}-client wrong-password flood"),
        base,
        clients,
        Work::ContactPage,
        seconds,
    )
    .await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let mut lat = Vec::new();
    for a in attackers {
        lat.extend(a.await.expect("flood client"));
    }
    let elapsed = started.elapsed().as_secs_f64();
    summary(
        "wrong-password sign-ins answered (POST /login, 401)",
        flood,
        elapsed,
        lat,
    );
    let signed = user.await.expect("user");
    summary(
        "right-password sign-ins during the flood (GET + POST /login)",
        1,
        elapsed,
        signed,
    );
}

#[derive(Clone, Copy)]
enum Work {
    ContactPage,
    LogPage,
    Decrypt,
}

async fn run(name: &str, base: &str, clients: &[reqwest::Client], work: Work, seconds: u64) {
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let mut tasks = Vec::new();
    for (n, c) in clients.iter().enumerate() {
        let (c, base) = (c.clone(), base.to_owned());
        let field = std::env::var("LOAD_FIELD").unwrap_or_else(|_| "creditcard".to_owned());
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            let mut i = n;
            // The demo's first 36 contacts are this month's: older ones are
            // past the demo's retention or under other months' keys.
            let pool: Vec<usize> = (0..36.min(DEMO_CONTACTS))
                .filter(|i| field != "keypad_card" || callvault::demo::keypad::keyed_on_keypad(*i))
                .collect();
            let id = demo_contact_id(pool[n % pool.len()]);
            let token = match work {
                Work::Decrypt => {
                    let html = c.get(format!("{base}/contacts/{id}")).send().await.expect("page").text().await.expect("body");
                    csrf_in(&html)
                }
                _ => String::new(),
            };
            while Instant::now() < deadline {
                i += 1;
                let t = Instant::now();
                let r = match work {
                    Work::ContactPage => c.get(format!("{base}/contacts/{}", demo_contact_id(i % DEMO_CONTACTS))).send().await,
                    Work::LogPage => {
                        c.get(format!("{base}/logs/%2Faws%2Fconnect%2Fcallvault-demo/legacy-debug-flow%2Fleaked"))
                            .send()
                            .await
                    }
                    // A reveal: the POST admits it and commits its row with a
                    // grant, the page it is sent to shows the value (once).
                    Work::Decrypt => {
                        let admitted = c
                            .post(format!("{base}/contacts/{id}/decrypt"))
                            .form(&[("field", field.as_str()), ("reason", "load test"), ("csrf_token", &token)])
                            .send()
                            .await
                            .expect("reveal form");
                        assert_eq!(admitted.status(), 303);
                        let page = admitted.headers()["location"].to_str().expect("location").to_owned();
                        c.get(format!("{base}{page}")).send().await
                    }
                };
                let r = r.expect("request");
                assert_eq!(r.status(), 200);
                let _ = r.bytes().await;
                lat.push(t.elapsed());
            }
            lat
        }));
    }
    let mut lat = Vec::new();
    for t in tasks {
        lat.extend(t.await.expect("client task"));
    }
    lat.sort();
    let n = lat.len();
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    println!(
        "{name}: {} clients, {seconds} s: {:.0} req/s; latency p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms ({n} requests)",
        clients.len(),
        n as f64 / seconds as f64,
        ms(lat[n / 2]),
        ms(lat[n * 99 / 100]),
        ms(lat[n - 1]),
    );
}

fn main() {
    if std::env::args().any(|a| a == "--list" || a == "--test") {
        return;
    }
    let seconds: u64 = std::env::var("LOAD_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(10);
    let n: usize = std::env::var("LOAD_CLIENTS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(64);
    // The console on its own runtime (as `callvault demo` runs it), the load
    // generator on another, both in this process.
    let server_rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let dir = tempfile::tempdir().expect("tempdir");
    let (base, app_state) = server_rt.block_on(async {
        let app = callvault::demo::run::prepare(
            dir.path(),
            "127.0.0.1:0",
            Arc::new(SystemClock),
            false,
            |s| {
                // One load user decrypts thousands of times: no budget here.
                s.policy.budget = callvault::decrypt::policy::BudgetLimit(None);
                // LOAD_SHIP_GROUP=<group> (with AWS_ENDPOINT_URL) measures shipping on.
                if let Ok(group) = std::env::var("LOAD_SHIP_GROUP") {
                    s.ship = Some(callvault::audit::ship::ShipSettings {
                        log_group: group,
                        checkpoint_key: std::env::var("LOAD_CHECKPOINT_KEY").ok(),
                        checkpoint_every_rows: 1000,
                        checkpoint_every: std::time::Duration::from_secs(300),
                        poll: std::time::Duration::from_millis(200),
                        checkpoint_retry: std::time::Duration::from_secs(30),
                    });
                }
                Ok(())
            },
        )
        .await
        .expect("demo");
        let base = format!("http://127.0.0.1:{}", app.port());
        let state = app.state();
        tokio::spawn(app.run_until_stopped());
        (base, state)
    });
    server_rt.block_on(async {
        app_state
            .users
            .add(
                &Username::parse("loadtest").expect("name"),
                &Password::new(PASSWORD.into()),
                Role::Supervisor,
            )
            .await
            .expect("user");
    });
    let client_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    client_rt.block_on(async {
        let mut clients = Vec::new();
        for _ in 0..n {
            clients.push(signed_in(&base).await);
        }
        let flood: usize = std::env::var("LOAD_FLOOD")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        if flood > 0 {
            run("contact page, no flood", &base, &clients, Work::ContactPage, seconds).await;
            during_flood(&base, &clients, flood, seconds).await;
            return;
        }
        run(
            "contact page (GET /contacts/{id}, audited)",
            &base,
            &clients,
            Work::ContactPage,
            seconds,
        )
        .await;
        run(
            "log events page (GET /logs/{group}/{stream}, audited, leak guard)",
            &base,
            &clients,
            Work::LogPage,
            seconds,
        )
        .await;
        // With shipping on, sample the outbox: rows waiting and the age of
        // the oldest one (the lag between commit and CloudWatch).
        let shipping = app_state.shipper.is_some();
        let sampler = shipping.then(|| {
            let state = app_state.clone();
            server_rt.spawn(async move {
                loop {
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                    if let Ok((n, oldest)) = callvault::audit::ship::backlog(&state.audit).await {
                        SAMPLES.fetch_max(n, std::sync::atomic::Ordering::Relaxed);
                        if let Some(t) = oldest {
                            LAG_US.fetch_max(
                                state.clock.now_us() - t,
                                std::sync::atomic::Ordering::Relaxed,
                            );
                        }
                    }
                }
            })
        });
        let keypad = std::env::var("LOAD_FIELD").is_ok_and(|f| f == "keypad_card");
        run(
            if keypad {
                "audited reveal (POST /contacts/{id}/decrypt, then GET /reveals/{grant}; keypad: Connect's RSA 4096, suite 0x0378)"
            } else {
                "audited reveal (POST /contacts/{id}/decrypt, then GET /reveals/{grant}; raw AES, signed suite)"
            },
            &base,
            &clients,
            Work::Decrypt,
            seconds,
        )
        .await;
        if let Some(sampler) = sampler {
            let started = std::time::Instant::now();
            loop {
                let (n, _) = callvault::audit::ship::backlog(&app_state.audit)
                    .await
                    .expect("backlog");
                if n == 0 || started.elapsed().as_secs() > 120 {
                    break;
                }
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
            sampler.abort();
            println!(
                "outbox under decrypt load: at most {} rows waiting, oldest waiting {:.0} ms; drained {:.1} s after the load stopped",
                SAMPLES.load(std::sync::atomic::Ordering::Relaxed),
                LAG_US.load(std::sync::atomic::Ordering::Relaxed) as f64 / 1000.0,
                started.elapsed().as_secs_f64()
            );
        }
    });
}

static SAMPLES: std::sync::atomic::AtomicI64 = std::sync::atomic::AtomicI64::new(0);
static LAG_US: std::sync::atomic::AtomicI64 = std::sync::atomic::AtomicI64::new(0);
