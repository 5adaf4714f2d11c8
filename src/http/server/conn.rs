//! One connection: hyper-util's auto server (HTTP/1.1 and HTTP/2 by the
//! first bytes) driven under connkit's drain, timeouts and report.

use std::error::Error as StdError;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response};
use http_body::Body;
use hyper_util::rt::TokioIo;
use tokio::time::{Instant, sleep_until};
use tower::Service;

use super::Settings;
use super::io::{CloseCell, CloseOutcome, ClosingIo};
use super::limit::{Place, RoomWait};
use super::request::RequestService;
use crate::core::serve::Incoming;
use crate::core::{BoxError, Connection, Error, ErrorKind, Result};
use crate::http::Peer;

/// The connection handler of [`Http::handler`](super::Http::handler): hand
/// it to [`serve`](crate::core::serve()) or
/// [`Server::per_core`](crate::core::serve::Server::per_core). Its `poll_ready` waits while
/// the connection limit is reached, so the serve loop stops accepting
/// (peers wait in the listen backlog) instead of running out of
/// descriptors. Loops that share a limit may each accept one connection
/// past it, which then waits for a free place before it is served.
#[derive(Debug)]
pub struct HttpHandler<S> {
    service: S,
    settings: Arc<Settings>,
    room: RoomWait,
}

impl<S: Clone> Clone for HttpHandler<S> {
    fn clone(&self) -> Self {
        HttpHandler {
            service: self.service.clone(),
            settings: self.settings.clone(),
            room: self.room.clone(),
        }
    }
}

impl<S> HttpHandler<S> {
    pub(super) fn new(service: S, settings: Arc<Settings>) -> Self {
        let room = RoomWait::new(settings.limit.clone());
        HttpHandler {
            service,
            settings,
            room,
        }
    }
}

impl<C, S, B> Service<Incoming<C>> for HttpHandler<S>
where
    C: Connection,
    S: Service<Request<hyper::body::Incoming>, Response = Response<B>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Into<BoxError>,
    B: Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    type Response = ();
    type Error = Error;
    type Future = Pin<Box<dyn Future<Output = Result<()>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<()>> {
        // Only look: a place held while the loop waits in accept would
        // starve the other loops sharing the limit (per-core threads, a
        // second listener), so the place is taken in `call`.
        std::task::ready!(self.room.poll_room(cx));
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, incoming: Incoming<C>) -> Self::Future {
        let (self_settings, service) = (self.settings.clone(), self.service.clone());
        // One allocation per connection, none per request.
        Box::pin(async move {
            // Another loop may have taken the last place since this one
            // looked: the connection is accepted, and waits here for its
            // turn (so the limit is exceeded by at most one per loop).
            let limit = &self_settings.limit;
            let place = match limit.try_take() {
                Some(place) => place,
                None => limit.take().await,
            };
            drive(self_settings, service, incoming, place).await
        })
    }
}

/// Why a connection's own timers ended it.
enum Timer {
    /// No request arrived within the header timeout.
    Silent,
}

/// What a look at the timer decided.
#[derive(Debug, PartialEq, Eq)]
enum Verdict {
    /// Nothing to do before `Quiet::next`.
    Wait,
    /// The first request did not come within the header timeout.
    Silent,
    /// Quiet for longer than allowed: end the connection gracefully.
    End,
}

/// A connection's quiet spells (no request running, none arriving) and
/// their limits, looked at when the timer fires:
///
/// * the first request must arrive within the header timeout of the
///   accept (else the connection is killed: the peer never spoke);
/// * on HTTP/1, the next request's head within the header timeout of the
///   end of the last response, as hyper's own header timer counts it (it
///   runs while a keep-alive connection waits); or the idle timeout, if
///   shorter;
/// * on HTTP/2, a request within the idle timeout.
///
/// A spell is noticed at the first look after it begins, so the limit is
/// counted from up to a quarter of it late: a connection ends between the
/// limit and 1.25 times it after its last request, never early.
#[derive(Debug)]
struct Quiet {
    header: Option<Duration>,
    idle: Option<Duration>,
    /// When the current spell was first seen; `None` while busy.
    since: Option<Instant>,
    /// Requests started at the previous look.
    started: u64,
    /// When to look next; `None`: no limit applies, never.
    next: Option<Instant>,
}

impl Quiet {
    fn new(settings: &Settings, accepted: Instant) -> Quiet {
        let mut quiet = Quiet {
            header: settings.header_read_timeout,
            idle: settings.idle_timeout,
            since: Some(accepted),
            started: 0,
            next: None,
        };
        quiet.next = quiet.limit(0, false).map(|l| accepted + l);
        quiet
    }

    /// How long a spell may last, with `started` requests so far.
    fn limit(&self, started: u64, http2: bool) -> Option<Duration> {
        if started == 0 {
            return self.header.or(self.idle);
        }
        match (http2, self.header, self.idle) {
            (true, _, idle) => idle,
            (false, Some(h), Some(i)) => Some(h.min(i)),
            (false, h, i) => h.or(i),
        }
    }

    /// A look at `now`, with the connection's request counts.
    fn check(&mut self, now: Instant, started: u64, running: u64, http2: bool) -> Verdict {
        let arrived = started != self.started;
        self.started = started;
        if running > 0 {
            self.since = None;
        } else if arrived || self.since.is_none() {
            // The spell began since the last look: count it from now.
            self.since = Some(now);
        }
        let Some(limit) = self.limit(started, http2) else {
            self.next = None;
            return Verdict::Wait;
        };
        let look = (limit / 4).max(Duration::from_millis(1));
        match self.since {
            Some(since) if now >= since + limit => {
                self.next = None;
                if started == 0 {
                    Verdict::Silent
                } else {
                    Verdict::End
                }
            }
            Some(since) => {
                self.next = Some(since + limit);
                Verdict::Wait
            }
            None => {
                self.next = Some(now + look);
                Verdict::Wait
            }
        }
    }
}

async fn drive<C, S, B>(
    settings: Arc<Settings>,
    service: S,
    incoming: Incoming<C>,
    _place: Place,
) -> Result<()>
where
    C: Connection,
    S: Service<Request<hyper::body::Incoming>, Response = Response<B>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Into<BoxError>,
    B: Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    let work = incoming.work().connection();
    let (conn, graceful) = incoming.into_parts();
    let peer = Peer::of(&conn);
    let seen = Arc::new(CloseCell::default());
    // HTTP/2 streams run as tasks of their own. They need no handle of
    // ours to end with their connection: when it goes (killed at the drain
    // deadline included), h2 wakes every stream, hyper's stream task sees
    // the reset and drops the handler's future (tests/http_serve.rs:
    // a_stream_killed_at_the_deadline_drops_its_handler_at_once).
    let builder = settings.builder(hyper_util::rt::TokioExecutor::new());
    let service = RequestService {
        inner: service,
        peer,
        work: work.clone(),
    };
    let io = TokioIo::new(ClosingIo::new(conn, settings.close_within, seen.clone()));
    let http = builder.serve_connection(io, service);
    tokio::pin!(http);

    // The connection's timeouts, on one timer that is looked at only when
    // it has fired (hyper's own HTTP/1 header timer costs a timer per
    // request; this one is re-armed a few times a period at most).
    let mut quiet = Quiet::new(&settings, Instant::now());
    let timer = sleep_until(quiet.next.unwrap_or_else(far_future));
    tokio::pin!(timer);
    let mut timer_unpolled = quiet.next.is_some();

    // The graceful signal, without re-polling its future on every wake-up
    // of a busy connection (a lock per request).
    let cancelled = graceful.token().cancelled();
    tokio::pin!(cancelled);
    let mut registered: Option<std::task::Waker> = None;
    let mut asked_to_end = false;
    // A connection the drain finds before its first request began: it was
    // accepted (in a handover, perhaps by the old process, from a queue it
    // shares with the new) and its request is on the way. Ended at once, its
    // client would see an empty reply; it gets FIRST_REQUEST_GRACE for the
    // request to begin, which is then answered with `Connection: close`.
    let mut first_request_grace: Option<Pin<Box<tokio::time::Sleep>>> = None;
    let fresh = || work.started() == 0;

    let served = std::future::poll_fn(|cx| {
        if !asked_to_end && first_request_grace.is_none() && graceful.is_shutting_down() {
            if fresh() {
                first_request_grace = Some(Box::pin(tokio::time::sleep(FIRST_REQUEST_GRACE)));
            } else {
                asked_to_end = true;
                http.as_mut().graceful_shutdown();
            }
        }
        if let Poll::Ready(result) = http.as_mut().poll(cx) {
            return Poll::Ready(Ok(result));
        }
        if let Some(grace) = first_request_grace.as_mut() {
            if !asked_to_end && (!fresh() || grace.as_mut().poll(cx).is_ready()) {
                asked_to_end = true;
                http.as_mut().graceful_shutdown();
                cx.waker().wake_by_ref();
            }
            return Poll::Pending;
        }
        // Closing already: its own deadline bounds the wait for the peer's
        // end, and neither the drain nor a timeout has anything to add. A
        // connection that ends within its first turns (one request, then
        // `Connection: close`) so never registers with either.
        if asked_to_end || seen.is_closing() {
            return Poll::Pending;
        }
        // Registered for the graceful signal once, and again only if the
        // waker changes; in between the atomic load above tells.
        if registered.as_ref().is_none_or(|w| !w.will_wake(cx.waker())) {
            if cancelled.as_mut().poll(cx).is_ready() {
                // Seen at the top of the next turn, as the flag is.
                cx.waker().wake_by_ref();
                return Poll::Pending;
            }
            registered = Some(cx.waker().clone());
        }
        // The timer holds this task's waker once polled: after that it
        // needs a look only when it has fired.
        while !asked_to_end
            && quiet.next.is_some()
            && (timer_unpolled || timer.is_elapsed())
            && timer.as_mut().poll(cx).is_ready()
        {
            let now = Instant::now();
            match quiet.check(now, work.started(), work.running(), seen.is_http2()) {
                Verdict::Wait => {
                    if let Some(next) = quiet.next {
                        timer.as_mut().reset(next);
                    }
                    timer_unpolled = true;
                }
                Verdict::Silent => return Poll::Ready(Err(Timer::Silent)),
                Verdict::End => {
                    // Quiet for too long: end it as the drain would.
                    asked_to_end = true;
                    http.as_mut().graceful_shutdown();
                    cx.waker().wake_by_ref();
                }
            }
        }
        timer_unpolled = false;
        Poll::Pending
    })
    .await;

    match served {
        Ok(Ok(())) => match seen.get() {
            CloseOutcome::InOrder | CloseOutcome::NotClosed => Ok(()),
            CloseOutcome::Reset => Err(Error::new(ErrorKind::ConnectionReset)
                .during("close http connection")
                .detail("the peer reset instead of ending its side")),
            CloseOutcome::TimedOut => Err(Error::new(ErrorKind::TimedOut)
                .during("close http connection")
                .detail("the peer did not end its side in time")),
        },
        Ok(Err(e)) => classify(e, asked_to_end),
        Err(Timer::Silent) => Err(Error::new(ErrorKind::TimedOut)
            .during("read http request")
            .detail("no request within the header timeout")),
    }
}

/// How long a connection the drain finds before its first request began
/// is given for that request to begin (see `first_request_grace`).
const FIRST_REQUEST_GRACE: Duration = Duration::from_millis(200);

/// What hyper's error says about the connection.
fn classify(e: BoxError, asked_to_end: bool) -> Result<()> {
    let io_kind = io_error_kind(&*e);
    if let Some(h) = e.downcast_ref::<hyper::Error>() {
        if h.is_timeout() {
            return Err(Error::new(ErrorKind::TimedOut)
                .during("read http request")
                .detail("the header timeout passed")
                .with_source(e));
        }
        if h.is_parse() || h.is_parse_status() {
            return Err(Error::new(ErrorKind::Protocol)
                .during("read http request")
                .with_source(e));
        }
        if h.is_incomplete_message() || h.is_canceled() || h.is_closed() {
            return Err(Error::new(ErrorKind::ConnectionReset)
                .during("serve http")
                .with_source(e));
        }
    }
    match io_kind {
        // hyper-util's answer to a graceful end while it still waited for
        // the first bytes: the peer never spoke, and we ended it.
        Some(io::ErrorKind::Interrupted) if asked_to_end => Ok(()),
        Some(kind) => Err(Error::from(io::Error::from(kind))
            .during("serve http")
            .with_source(e)),
        None => Err(Error::new(ErrorKind::Protocol)
            .during("serve http")
            .with_source(e)),
    }
}

/// The kind of the first `io::Error` in `e`'s chain.
fn io_error_kind(e: &(dyn StdError + 'static)) -> Option<io::ErrorKind> {
    let mut next = Some(e);
    while let Some(e) = next {
        if let Some(io) = e.downcast_ref::<io::Error>() {
            return Some(io.kind());
        }
        next = e.source();
    }
    None
}

fn far_future() -> Instant {
    // tokio's own "never" for a timer that must exist.
    Instant::now() + std::time::Duration::from_secs(86400 * 365 * 30)
}
