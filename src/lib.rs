//! The callvault console: an audited web console over ciphertext captured by
//! the Lex V2 Lambda (`lambda-encrypt`).
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

// Foundation: no capability.
pub mod clock;
pub mod db;
pub mod metrics;
pub mod secrets;
pub mod text;
// The web kernel: error page, layout, forms, route table, middleware.
pub mod web;
// Services.
pub mod audit;
pub mod aws;
pub mod guard;
pub mod keys;
pub mod sources;
// Capabilities: services and their pages.
pub mod account;
pub mod admin;
pub mod auth;
pub mod contacts;
pub mod decrypt;
pub mod health;
pub mod logs;
pub mod review;
pub mod sso;
// Composition.
pub mod cli;
pub mod config;
pub mod demo;
pub mod preflight;
pub mod startup;
