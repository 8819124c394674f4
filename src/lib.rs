//! The callvault console: an audited web console over ciphertext captured by
//! the Lex V2 Lambda (`lambda-encrypt`).
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

pub mod audit;
pub mod auth;
pub mod aws;
pub mod cli;
pub mod clock;
pub mod config;
pub mod contacts;
pub mod db;
pub mod decrypt;
pub mod demo;
pub mod logs;
pub mod metrics;
pub mod preflight;
pub mod readiness;
pub mod secrets;
pub mod sources;
pub mod startup;
pub mod text;
pub mod web;
