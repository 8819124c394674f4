//! A stand-in for the Lambda Runtime API (2018-06-01) on loopback, and a
//! launcher for the real `lambda-encrypt` binary against it.
#![allow(dead_code)]

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

#[derive(Default)]
pub struct State {
    events: VecDeque<(String, Vec<u8>)>,
    /// (path, body, when) of every POST the runtime made.
    posts: Vec<(String, Vec<u8>, Instant)>,
    next_id: usize,
}

/// Speaks just enough of the Lambda Runtime API (2018-06-01) for one function.
pub struct FakeRuntimeApi {
    pub addr: String,
    state: Arc<(Mutex<State>, Condvar)>,
}

impl FakeRuntimeApi {
    pub fn start(events: Vec<Vec<u8>>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let state = Arc::new((Mutex::new(State::default()), Condvar::new()));
        state.0.lock().unwrap().events = events
            .into_iter()
            .enumerate()
            .map(|(i, e)| (format!("req-{i:04}"), e))
            .collect();
        let queued = state.0.lock().unwrap().events.len();
        state.0.lock().unwrap().next_id = queued;
        let shared = Arc::clone(&state);
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let shared = Arc::clone(&shared);
                std::thread::spawn(move || serve(stream, &shared));
            }
        });
        Self { addr, state }
    }

    /// Queues one more event; the runtime's long poll picks it up.
    pub fn push(&self, event: Vec<u8>) {
        let (lock, _) = &*self.state;
        let mut s = lock.lock().unwrap();
        let id = format!("req-{:04}", s.next_id);
        s.next_id += 1;
        s.events.push_back((id, event));
    }

    /// Waits until `n` POSTs have arrived.
    pub fn wait_for_posts(&self, n: usize, timeout: Duration) -> Vec<(String, Vec<u8>, Instant)> {
        let (lock, cvar) = &*self.state;
        let guard = lock.lock().unwrap();
        let (guard, _) = cvar
            .wait_timeout_while(guard, timeout, |s| s.posts.len() < n)
            .unwrap();
        guard.posts.clone()
    }
}

fn serve(stream: TcpStream, state: &(Mutex<State>, Condvar)) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut out = stream;
    loop {
        let mut request_line = String::new();
        if reader.read_line(&mut request_line).unwrap_or(0) == 0 {
            return;
        }
        let mut content_length = 0usize;
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line).unwrap_or(0) == 0 {
                return;
            }
            if line == "\r\n" {
                break;
            }
            if let Some((k, v)) = line.split_once(':') {
                if k.eq_ignore_ascii_case("content-length") {
                    content_length = v.trim().parse().unwrap_or(0);
                }
            }
        }
        let mut body = vec![0u8; content_length];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        let mut parts = request_line.split_whitespace();
        let (method, path) = (
            parts.next().unwrap_or(""),
            parts.next().unwrap_or("").to_owned(),
        );
        let (lock, cvar) = state;
        if method == "GET" && path.ends_with("/runtime/invocation/next") {
            let next = loop {
                if let Some(e) = lock.lock().unwrap().events.pop_front() {
                    break e;
                }
                // No more events: hold the long poll, as the real API does.
                std::thread::sleep(Duration::from_millis(50));
            };
            let (id, event) = next;
            let deadline = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_millis()
                + 30_000;
            let head = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nLambda-Runtime-Aws-Request-Id: {id}\r\n\
                 Lambda-Runtime-Deadline-Ms: {deadline}\r\n\
                 Lambda-Runtime-Invoked-Function-Arn: arn:aws:lambda:us-east-1:123456789012:function:callvault-encrypt\r\n\
                 Lambda-Runtime-Trace-Id: Root=1-5759e988-bd862e3fe1be46a994272793\r\nContent-Length: {}\r\n\r\n",
                event.len()
            );
            if out
                .write_all(head.as_bytes())
                .and_then(|_| out.write_all(&event))
                .is_err()
            {
                return;
            }
        } else {
            lock.lock()
                .unwrap()
                .posts
                .push((path, body, Instant::now()));
            cvar.notify_all();
            let reply = b"{\"status\":\"OK\"}";
            let head = format!("HTTP/1.1 202 Accepted\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n", reply.len());
            if out
                .write_all(head.as_bytes())
                .and_then(|_| out.write_all(reply))
                .is_err()
            {
                return;
            }
        }
    }
}

pub fn spawn_lambda(
    api: &FakeRuntimeApi,
    keyring: Option<&str>,
    log_dir: &Path,
    extra_env: &[(&str, &str)],
) -> Child {
    // CALLVAULT_LAMBDA_BIN lets the measurement compare another build of the binary.
    let bin = std::env::var("CALLVAULT_LAMBDA_BIN")
        .unwrap_or_else(|_| env!("CARGO_BIN_EXE_lambda-encrypt").to_owned());
    let mut cmd = Command::new(bin);
    cmd.env_clear()
        .env("AWS_LAMBDA_RUNTIME_API", &api.addr)
        .env("AWS_LAMBDA_FUNCTION_NAME", "callvault-encrypt")
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")
        .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        .env("AWS_REGION", "us-east-1")
        .env("CALLVAULT_LOG_LEVEL", "debug")
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(log_dir.join("stdout.log")).unwrap())
        .stderr(std::fs::File::create(log_dir.join("stderr.log")).unwrap());
    if let Some(k) = keyring {
        cmd.env("CALLVAULT_KEYRING", k);
    }
    cmd.envs(extra_env.iter().copied());
    cmd.spawn().unwrap()
}

pub fn read_logs(dir: &Path) -> String {
    std::fs::read_to_string(dir.join("stdout.log")).unwrap()
        + &std::fs::read_to_string(dir.join("stderr.log")).unwrap()
}
