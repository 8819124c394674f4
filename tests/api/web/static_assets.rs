//! Static assets are embedded in the binary: a copy of it alone in an empty
//! directory serves them, with content-hashed URLs and long cache lifetimes.

use std::io::{BufRead as _, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::helpers::*;

/// Kills the demo process on drop.
struct Child(std::process::Child);

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test]
async fn the_binary_copied_alone_into_an_empty_directory_serves_its_stylesheet() {
    let dir = tempfile::tempdir().unwrap();
    let bin = dir.path().join("callvault");
    std::fs::copy(env!("CARGO_BIN_EXE_callvault"), &bin).unwrap();
    let mut child = Child(
        Command::new(&bin)
            .args(["demo", "--dir", "demo", "--listen", "127.0.0.1:0"])
            .current_dir(dir.path())
            .env_remove("CALLVAULT_DEMO_DIR")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let stdout = child.0.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let url = loop {
        let line = rx
            .recv_timeout(Duration::from_secs(60))
            .expect("the demo prints its URL");
        if let Some(u) = line.strip_prefix("callvault demo: ") {
            break u.trim().trim_end_matches('/').to_owned();
        }
    };
    let c = client();
    let page = c.get(format!("{url}/login")).send().await.unwrap();
    assert_eq!(
        page.headers()["cache-control"],
        "no-store",
        "pages are not cached"
    );
    let html = page.text().await.unwrap();
    let marker = "<link rel=\"stylesheet\" href=\"";
    let start = html.find(marker).expect("the page links a stylesheet") + marker.len();
    let href = html[start..].split('"').next().unwrap().to_owned();
    assert!(href.starts_with("/static/app.css?v="), "{href}");

    let css = c.get(format!("{url}{href}")).send().await.unwrap();
    assert_eq!(css.status(), 200);
    assert!(css.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/css"));
    assert_eq!(
        css.headers()["cache-control"],
        "public, max-age=31536000, immutable",
        "the hashed URL is cached for good"
    );
    let etag = css.headers()["etag"].to_str().unwrap().to_owned();
    let body = css.text().await.unwrap();
    assert_eq!(
        body,
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/static/app.css")).unwrap(),
        "the embedded stylesheet is the source's"
    );

    // The plain URL works too, revalidated by its ETag.
    let plain = c.get(format!("{url}/static/app.css")).send().await.unwrap();
    assert_eq!(plain.status(), 200);
    assert_eq!(plain.headers()["cache-control"], "no-cache");
    assert_eq!(plain.headers()["etag"].to_str().unwrap(), etag);
    let again = c
        .get(format!("{url}/static/app.css"))
        .header("if-none-match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 304);
    assert!(again.text().await.unwrap().is_empty());

    for missing in ["/static/nope.css", "/static/..%2FCargo.toml", "/static/"] {
        let r = c.get(format!("{url}{missing}")).send().await.unwrap();
        assert_eq!(r.status(), 404, "{missing}");
    }
    assert!(
        std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .all(|n| n == "callvault" || n == "demo"),
        "nothing but the binary and its demo data in the directory"
    );
}
