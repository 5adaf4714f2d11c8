//! The lifecycle's tracing spans, read back through a subscriber: every
//! step of real tcp connections (accept, connect, done, close, kill) and
//! the serve loop's drain, each with its transport, endpoint, outcome and
//! duration.

use std::collections::HashMap;
use std::fmt::Debug;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use conn_core::serve::{lines, serve};
use conn_core::{Connection, Deadline};
use conn_tcp::{TcpListener, TcpStream};
use tokio::io::AsyncReadExt;
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Subscriber, subscriber::set_default};
use tracing_subscriber::layer::{Context, Layer, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;

/// A closed span: its name and its fields as text (the last value of each).
type Closed = (String, HashMap<String, String>);

/// Keeps every span's fields and hands them over when it closes.
#[derive(Clone, Default)]
struct Recorder(Arc<Mutex<Vec<Closed>>>);

#[derive(Default)]
struct Fields(HashMap<String, String>);

impl Visit for Fields {
    fn record_debug(&mut self, field: &Field, value: &dyn Debug) {
        self.0.insert(field.name().into(), format!("{value:?}"));
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().into(), value.into());
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.0.insert(field.name().into(), value.to_string());
    }
}

impl<S: Subscriber + for<'a> LookupSpan<'a>> Layer<S> for Recorder {
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let mut fields = Fields::default();
        attrs.record(&mut fields);
        ctx.span(id).unwrap().extensions_mut().insert(fields);
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: Context<'_, S>) {
        let span = ctx.span(id).unwrap();
        let mut extensions = span.extensions_mut();
        values.record(extensions.get_mut::<Fields>().unwrap());
    }

    fn on_close(&self, id: Id, ctx: Context<'_, S>) {
        let span = ctx.span(&id).unwrap();
        let fields = span.extensions_mut().remove::<Fields>().unwrap();
        self.0.lock().unwrap().push((span.name().into(), fields.0));
    }
}

/// A recorder of this thread's lifecycle spans, until the guard drops.
fn recording() -> (Recorder, tracing::subscriber::DefaultGuard) {
    let recorder = Recorder::default();
    let filter = tracing_subscriber::filter::Targets::new()
        .with_target(conn_core::trace::TARGET, tracing::Level::DEBUG);
    let on = set_default(
        tracing_subscriber::registry()
            .with(recorder.clone())
            .with(filter),
    );
    (recorder, on)
}

fn soon() -> Deadline {
    Deadline::after(Duration::from_secs(10))
}

/// The closed spans named `name`, failing with all of them if none is.
fn named<'a>(spans: &'a [Closed], name: &str) -> Vec<&'a HashMap<String, String>> {
    let found: Vec<_> = spans
        .iter()
        .filter(|(n, _)| n == name)
        .map(|(_, f)| f)
        .collect();
    assert!(!found.is_empty(), "no {name} span in {spans:#?}");
    found
}

/// The fields every lifecycle span has, with an outcome of `ok`.
fn assert_step(fields: &HashMap<String, String>, endpoint_has: &str) {
    assert_eq!(fields["transport"], "tcp", "{fields:?}");
    assert!(fields["endpoint"].contains(endpoint_has), "{fields:?}");
    assert_eq!(fields["outcome"], "ok", "{fields:?}");
    let us: u64 = fields["duration_us"].parse().expect("a duration in µs");
    assert!(us < 10_000_000, "{fields:?}");
}

#[tokio::test]
async fn every_lifecycle_step_and_the_drain_is_a_span_with_its_fields() {
    let (recorder, _on) = recording();

    let mut listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr();
    let mut client = TcpStream::connect(addr, soon()).await.unwrap();
    let mut server = listener.accept(soon()).await.unwrap();
    client.done(soon()).await.unwrap();
    let mut rest = Vec::new();
    server.read_to_end(&mut rest).await.unwrap();
    server.done(soon()).await.unwrap();
    server.close(soon()).await.unwrap();
    client.close(soon()).await.unwrap();
    let killed = TcpStream::connect(addr, soon()).await.unwrap();
    killed.kill();

    // The serve loop's drain, on a listener of its own.
    let served = TcpListener::bind("127.0.0.1:0").unwrap();
    let echo = tower::service_fn(|line: String| async move { Ok::<_, conn_core::Error>(line) });
    let report = serve(served, lines(echo))
        .with_graceful_shutdown(async {}, Duration::from_secs(1))
        .await
        .unwrap();
    assert_eq!(report.accepted, 0);

    let spans = recorder.0.lock().unwrap().clone();
    // Each names its peer (or, for accept, the listener) as errors do.
    for name in ["connect", "accept", "done", "close", "kill"] {
        for fields in named(&spans, name) {
            assert_step(fields, "tcp://127.0.0.1:");
        }
    }
    let port = format!(":{}", addr.port());
    assert!(
        named(&spans, "accept")[0]["endpoint"].ends_with(&port),
        "{spans:#?}"
    );
    for connect in named(&spans, "connect") {
        assert!(connect["endpoint"].ends_with(&port), "{connect:?}");
    }
    assert_eq!(named(&spans, "connect").len(), 2, "{spans:#?}");
    assert_eq!(named(&spans, "done").len(), 2, "{spans:#?}");
    let drain = named(&spans, "drain");
    assert_eq!(drain.len(), 1, "{spans:#?}");
    assert_step(drain[0], "127.0.0.1");
    assert_eq!(drain[0]["accepted"], "0", "{drain:?}");
    assert_eq!(drain[0]["killed"], "0", "{drain:?}");
}

#[tokio::test]
async fn a_failed_step_records_the_errno_name_of_its_error_as_its_outcome() {
    let (_hold, refused) = conn_test_support::refused_tcp_addr();
    let (recorder, _on) = recording();
    assert!(TcpStream::connect(refused, soon()).await.is_err());
    let spans = recorder.0.lock().unwrap().clone();
    let connect = named(&spans, "connect");
    assert_eq!(
        connect.len(),
        1,
        "only the attempt made under the subscriber: {spans:#?}"
    );
    assert_eq!(connect[0]["outcome"], "ECONNREFUSED", "{connect:?}");
    assert!(
        connect[0]["endpoint"].contains(&refused.port().to_string()),
        "{connect:?}"
    );
}
