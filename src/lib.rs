//! The callvault console: an audited web console over ciphertext captured by
//! the Lex V2 Lambda (`lambda-encrypt`).
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

pub mod audit;
pub mod auth;
pub mod cli;
pub mod clock;
pub mod config;
pub mod db;
pub mod logs;
pub mod secrets;
pub mod startup;
pub mod web;
