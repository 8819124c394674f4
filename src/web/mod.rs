//! The web kernel: the generic error and its page, the base layout, form
//! helpers, the route table, request ids and security headers. It names no
//! capability; capabilities build on it (`docs/architecture.md`).

pub mod assets;
pub mod client_addr;
pub mod error;
pub mod forms;
pub mod layout;
pub mod middleware;
pub mod routes;

pub use error::AppError;
pub use forms::{day_start_us, local_path, non_empty, see_other, DAY_US};
pub use layout::{html, Layout, NavIdentity};
pub use middleware::{request_meta, RequestMeta};
pub use routes::{Access, Route, Routes};
