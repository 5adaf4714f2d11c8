//! gRPC over any connkit transport with tonic: a client [`channel`] through
//! connkit's connector, [`GrpcOr`] to serve a tonic service and plain HTTP
//! routes on one listener, and [`health_draining`] for the health service's
//! part of a graceful shutdown.
//!
//! A tonic server needs nothing here: `tonic::service::Routes` is a tower
//! service of `http::Request`s answering `http::Response<tonic::body::Body>`
//! with `Infallible` errors, so
//! [`connkit::http::serve`](crate::http::serve()) serves it as it is, over
//! `ipc://`, `tcp://`, `mem://` or `utcp://`, with connkit's drain and report.
//!
//! Clients of other gRPC stacks over `ipc://`: grpc-core (C++, Python's
//! grpcio, Ruby, ...) since 1.57 sends the percent-encoded socket path as
//! `:authority` (`tmp%2Fapp.sock`), and grpc-java the bare path; the `http`
//! crate does not parse either as an authority, so h2 resets such a stream
//! (PROTOCOL_ERROR) before the request reaches the service, and the client
//! sees `INTERNAL`. Such clients set their authority, e.g. grpcio's channel
//! option `grpc.default_authority` to `localhost`, which grpc-go sends
//! already (tests/grpcio.rs pins both behaviours).
//!
//! ```
//! use std::time::Duration;
//! use connkit::core::mem::MemListener;
//! use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let (_reporter, health) = tonic_health::server::health_reporter();
//! let server = connkit::http::serve(
//!     MemListener::bind("tonic-doc")?,
//!     tonic::service::Routes::new(health),
//! );
//! tokio::spawn(server.into_future());
//!
//! let channel = connkit::http::tonic::channel(connkit::registry(), "mem://tonic-doc".parse()?).await?;
//! let status = HealthClient::new(channel)
//!     .check(HealthCheckRequest { service: String::new() })
//!     .await?
//!     .into_inner()
//!     .status();
//! assert_eq!(status, tonic_health::pb::health_check_response::ServingStatus::Serving);
//! # Ok(()) }
//! ```

use std::task::{Context, Poll};
use std::time::Duration;

use ::tonic::transport::{Channel, Endpoint as TonicEndpoint};
use bytes::Bytes;
use futures::future::BoxFuture;
use http::{Request, Response};
use http_body_util::Either;
use tonic_health::ServingStatus;
use tonic_health::server::HealthReporter;
use tower::{Service, ServiceExt};

use crate::core::{Endpoint, Registry};
use crate::http::connector;

/// How long a [`channel`] waits for its transport to connect.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// A tonic client channel to `endpoint` over its connkit transport
/// (`ipc:///run/app.sock`, `tcp://host:port`, `mem://name`, ...), dialled
/// through `registry` with [`connector`](crate::http::connector()).
///
/// The channel speaks HTTP/2 with prior knowledge, as tonic does over plain
/// connections; the request URIs say `http://connkit`, which only names the
/// `:authority` the server sees. Connecting waits up to 10 s; the channel
/// reconnects on its own after a connection is lost.
pub async fn channel(
    registry: Registry,
    endpoint: Endpoint,
) -> Result<Channel, ::tonic::transport::Error> {
    TonicEndpoint::from_static("http://connkit")
        .connect_with_connector(connector(registry, Some(endpoint), CONNECT_TIMEOUT))
        .await
}

/// Sends gRPC requests (`content-type: application/grpc...`) to `grpc`, and
/// every other request to `http`: a tonic service and plain routes on one
/// listener.
///
/// The response body is the one of whichever answered.
#[derive(Clone, Debug)]
pub struct GrpcOr<G, S> {
    grpc: G,
    http: S,
}

impl<G, S> GrpcOr<G, S> {
    /// `grpc` for gRPC requests, `http` for the rest.
    pub fn new(grpc: G, http: S) -> Self {
        GrpcOr { grpc, http }
    }
}

/// Whether a request is gRPC: its content type is `application/grpc`, bare
/// or with a subtype (`application/grpc+proto`).
fn is_grpc<B>(req: &Request<B>) -> bool {
    req.headers()
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| {
            ct.strip_prefix("application/grpc")
                .is_some_and(|rest| rest.is_empty() || rest.starts_with(['+', ';']))
        })
}

impl<G, S, ReqBody, GB, SB, E> Service<Request<ReqBody>> for GrpcOr<G, S>
where
    G: Service<Request<ReqBody>, Response = Response<GB>> + Clone + Send + 'static,
    S: Service<Request<ReqBody>, Response = Response<SB>, Error = E> + Clone + Send + 'static,
    G::Error: Into<E>,
    G::Future: Send,
    S::Future: Send,
    ReqBody: Send + 'static,
    GB: http_body::Body<Data = Bytes>,
    SB: http_body::Body<Data = Bytes>,
{
    type Response = Response<Either<GB, SB>>;
    type Error = E;
    type Future = BoxFuture<'static, Result<Self::Response, E>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), E>> {
        // Which of the two a request needs is not known before it comes, so
        // readiness is waited for per call, on a clone (oneshot, below).
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request<ReqBody>) -> Self::Future {
        if is_grpc(&req) {
            let grpc = self.grpc.clone().oneshot(req);
            Box::pin(async move { Ok(grpc.await.map_err(Into::into)?.map(Either::Left)) })
        } else {
            let http = self.http.clone().oneshot(req);
            Box::pin(async move { Ok(http.await?.map(Either::Right)) })
        }
    }
}

/// The health service's part of a graceful shutdown, for the moment the
/// shutdown signal fires and before the drain begins: every one of
/// `services` (and the server as a whole, `""`) becomes `NOT_SERVING`, and
/// every open `Watch` stream on them ends after it has sent that.
///
/// A `Watch` is an open HTTP/2 stream, and the drain waits for open
/// streams: without this, each watcher (a load balancer, an orchestrator)
/// would hold the drain until its deadline and then be killed. Here each
/// service's status channel is replaced: the old one gets `NOT_SERVING` and
/// is dropped, so tonic-health's `WatchStream` yields that last status and
/// then ends, and the stream closes with `grpc-status: 0`. The new channel
/// says `NOT_SERVING` to a `Check` that arrives during the drain. (A new
/// `Watch` cannot arrive during it: HTTP/2 connections got GOAWAY, and
/// accepting has stopped.)
pub async fn health_draining(reporter: &mut HealthReporter, services: &[&str]) {
    for service in std::iter::once("").chain(services.iter().copied()) {
        reporter
            .set_service_status(service, ServingStatus::NotServing)
            .await;
        reporter.clear_service_status(service).await;
        reporter
            .set_service_status(service, ServingStatus::NotServing)
            .await;
    }
}
