//! Black-box tests of the console: the real app on a random loopback port,
//! a temporary database, a cookie-holding HTTP client.

mod connect_fake;
mod helpers;
mod logs_fake;
mod oidc;

mod architecture;
mod attacks;
mod audit_chain;
mod audit_filters;
mod audit_pages;
mod aws_bench;
mod aws_pages;
mod aws_paging;
mod aws_sources;
mod browser;
mod browser_pages;
mod browser_sso;
mod cli;
mod configuration;
mod connect_model;
mod contacts;
mod container;
mod crash;
mod csrf;
mod demo_process;
mod faults;
mod headers;
mod keys;
mod legacy;
mod login;
mod logs;
mod logs_model;
mod matrix;
mod metrics;
mod preflight;
mod protection;
mod proxies;
mod readiness;
mod reveal_pages;
mod sessions;
mod shipping;
mod sso;
mod sso_flow;
mod static_assets;
mod users_admin;
