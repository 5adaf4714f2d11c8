//! HTTP/1.1 over any connkit transport: a server built on `serve()` and a
//! client connector that is a `tower::Service<Uri>`, so hyper-util's
//! `Client` dials `mem://`, `ipc://` and every other registered transport.

mod connector;
mod routes;
mod server;
mod stats;

pub use connector::{Connector, HttpConnection, connector};
pub use routes::{Routes, route};
pub use server::{HttpHandler, http_handler};
pub use stats::{Stats, StatsSnapshot};
