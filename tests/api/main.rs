//! Black-box tests of the console: the real app on a random loopback port,
//! a temporary database, a cookie-holding HTTP client. One folder per
//! capability of `src/` (docs/architecture.md); shared steps and the
//! stand-ins (Amazon Connect, CloudWatch Logs, the OpenID Provider) in
//! `support/`.

// Folders are named after capabilities, and some hold one file of that
// name; stand-ins answer with whole HTTP responses; builders hold closures.
#![allow(
    clippy::module_inception,
    clippy::result_large_err,
    clippy::type_complexity
)]

mod support {
    pub mod browser;
    pub mod connect_fake;
    pub mod helpers;
    pub mod logs_fake;
    pub mod oidc;
    pub mod steps;
}
pub use support::{connect_fake, helpers, logs_fake, oidc};

mod auth {
    pub mod csrf;
    pub mod login;
    pub mod proxies;
    pub mod sessions;
}
mod sso {
    pub mod browser_sso;
    pub mod sso;
    pub mod sso_flow;
}
mod admin {
    pub mod users_admin;
}
mod contacts {
    pub mod aws_pages;
    pub mod aws_paging;
    pub mod contacts;
    pub mod search_errors;
}
mod decrypt {
    pub mod keep_open;
    pub mod keypad;
    pub mod legacy;
    pub mod protection;
    pub mod retention;
    pub mod reveal_channels;
    pub mod reveal_form;
    pub mod reveal_once;
    pub mod reveal_pages;
}
mod keys {
    pub mod keys;
}
mod logs {
    pub mod logs;
}
mod review {
    pub mod audit_chain;
    pub mod audit_filters;
    pub mod audit_pages;
    pub mod shipping;
}
mod health {
    pub mod metrics;
    pub mod readiness;
}
mod sources {
    pub mod aws_bench;
    pub mod aws_sources;
    pub mod connect_model;
    pub mod logs_model;
}
mod web {
    pub mod accessibility;
    pub mod browser;
    pub mod browser_pages;
    pub mod headers;
    pub mod static_assets;
}
mod operations {
    pub mod cli;
    pub mod configuration;
    pub mod container;
    pub mod crash;
    pub mod demo_process;
    pub mod faults;
    pub mod migrations;
    pub mod preflight;
}
mod architecture {
    pub mod architecture;
    pub mod matrix;
}
mod attacks {
    pub mod attack_findings;
    pub mod attacks;
}
