//! What pages may show of data from Connect and CloudWatch: the leak guard,
//! and values as it lets them through.

pub mod leak_guard;
pub mod shown;

pub use leak_guard::*;
pub use shown::{canonical_key, CiphertextView, Sensitive, ShownValue};

#[cfg(test)]
mod props;
