//! Per-call cost of connkit's layers against a bare service and tower's own
//! TimeoutLayer, all in one run on a current-thread runtime.
//!
//! Every call is driven the way a server drives it: `poll_ready`, `call`,
//! then one poll of the response future, which the bare service answers at
//! once. So the figures are the layers' own overhead per call.

mod common;

use std::future::Future;
use std::hint::black_box;
use std::pin::pin;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use conn_core::layer::{CancelLayer, DeadlineLayer, Shutdown};
use criterion::Criterion;
use tokio_util::sync::CancellationToken;
use tower::timeout::TimeoutLayer;
use tower::{Layer, Service, service_fn};

const GROUP: &str = "layers_per_call";

fn bare() -> impl Service<u64, Response = u64, Error = conn_core::Error, Future: Future> + Clone {
    service_fn(|x: u64| std::future::ready(Ok::<_, conn_core::Error>(x + 1)))
}

/// One call, driven by hand with a no-op waker.
#[inline]
fn call_once<S: Service<u64>>(svc: &mut S, cx: &mut Context<'_>) {
    match svc.poll_ready(cx) {
        Poll::Ready(Ok(())) => {}
        _ => panic!("bench services are always ready"),
    }
    let fut = pin!(svc.call(black_box(1)));
    match fut.poll(cx) {
        Poll::Ready(Ok(out)) => {
            black_box(out);
        }
        _ => panic!("bench calls complete on their first poll"),
    }
}

fn bench_one<S: Service<u64>>(c: &mut Criterion, id: &str, mut svc: S) {
    let mut cx = Context::from_waker(Waker::noop());
    c.benchmark_group(GROUP)
        .bench_function(id, |b| b.iter(|| call_once(&mut svc, &mut cx)));
}

fn main() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let _inside = runtime.enter(); // tower's Timeout needs a timer handle
    let timeout = Duration::from_secs(30);
    let mut c = Criterion::default()
        .output_directory(&common::criterion_dir())
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .configure_from_args();

    // Alternate connkit and its peers so drift on a noisy machine hits both.
    bench_one(&mut c, "bare", bare());
    bench_one(
        &mut c,
        "tower_timeout",
        TimeoutLayer::new(timeout).layer(bare()),
    );
    bench_one(
        &mut c,
        "deadline",
        DeadlineLayer::new(timeout).layer(bare()),
    );
    bench_one(
        &mut c,
        "cancel",
        CancelLayer::new(CancellationToken::new()).layer(bare()),
    );
    bench_one(&mut c, "shutdown", Shutdown::new().layer().layer(bare()));
    let stacked = tower::ServiceBuilder::new()
        .layer(Shutdown::new().layer())
        .layer(CancelLayer::new(CancellationToken::new()))
        .layer(DeadlineLayer::new(timeout))
        .service(bare());
    bench_one(&mut c, "stacked", stacked);
    c.final_summary();

    let m = |id| common::median_ns(GROUP, id).unwrap_or(f64::NAN);
    let (bare_ns, timeout_ns) = (m("bare"), m("tower_timeout"));
    let added = |id| m(id) - bare_ns;
    let mut rows = vec![common::Row {
        what: "DeadlineLayer vs tower TimeoutLayer, per call".into(),
        ours: m("deadline"),
        peer: timeout_ns,
        unit: "ns",
        goal: "ratio <= 1".into(),
        met: m("deadline") <= timeout_ns,
    }];
    for (id, what) in [
        ("deadline", "DeadlineLayer"),
        ("cancel", "CancelLayer"),
        ("shutdown", "ShutdownLayer"),
        ("stacked", "all three stacked"),
    ] {
        rows.push(common::Row {
            what: format!("{what} vs bare service, per call"),
            ours: m(id),
            peer: bare_ns,
            unit: "ns",
            goal: if id == "stacked" {
                "adds < 60 ns".into()
            } else {
                "-".into()
            },
            met: id != "stacked" || added(id) < 60.0,
        });
    }
    common::write_table(
        "layers",
        "Layers: per-call overhead (benches/layers.rs)",
        &format!(
            "Current-thread runtime, calls driven by hand (poll_ready, call, one poll), medians from criterion. \
             The three layers stacked add {:.1} ns per call over the bare service.",
            added("stacked")
        ),
        &rows,
    );
}
