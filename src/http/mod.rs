//! HTTP over any connkit transport: a server for any tower service
//! (HTTP/1.1 and HTTP/2, with connkit's drain and report) and a client
//! connector that is a `tower::Service<Uri>`, so hyper-util's `Client`
//! dials `mem://`, `ipc://` and every other registered transport.

#[cfg(feature = "axum")]
pub mod axum;
mod connector;
mod error;
mod peer;
mod routes;
mod server;
mod stats;
#[cfg(feature = "tonic")]
pub mod tonic;

pub use connector::{Connector, HttpConnection, connector};
pub use error::{GrpcCode, error_response, status_of};
pub use peer::Peer;
pub use routes::{RouteBody, Zeros};
pub use routes::{Routes, route};
pub use server::{Http, HttpHandler, Protocols, ResponseBody, ResponseFuture, serve};
pub use stats::{CountConnections, Counted, Stats, StatsSnapshot};
