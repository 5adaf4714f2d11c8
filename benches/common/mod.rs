//! What every bench shares: reading criterion's medians and writing the
//! ratio table that `cargo xtask bench` gathers into BENCHMARKS.md.

#![allow(dead_code)]

use std::fmt::Write as _;
use std::path::PathBuf;

/// Where criterion writes its estimates for this workspace.
pub fn criterion_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/criterion")
}

/// The median time, in nanoseconds, criterion measured for `group/id`.
pub fn median_ns(group: &str, id: &str) -> Option<f64> {
    let path = criterion_dir()
        .join(group)
        .join(id)
        .join("new/estimates.json");
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).ok()?).ok()?;
    json["median"]["point_estimate"].as_f64()
}

/// One row of a bench table: connkit's figure beside its peer's.
pub struct Row {
    /// What was measured.
    pub what: String,
    /// connkit's figure.
    pub ours: f64,
    /// The peer's figure, measured in the same run.
    pub peer: f64,
    /// Unit of both figures.
    pub unit: &'static str,
    /// The goal, in words.
    pub goal: String,
    /// Whether the goal was met.
    pub met: bool,
}

/// True when `cargo bench` runs this binary (it passes `--bench`). Under
/// `cargo test --all-targets` a bench runs as a smoke test instead: the
/// shortest settings, and no table written, so debug-build figures never
/// reach BENCHMARKS.md.
pub fn measuring() -> bool {
    std::env::args().any(|a| a == "--bench")
}

/// Writes `rows` as the markdown table for `bench`, and prints it.
pub fn write_table(bench: &str, title: &str, notes: &str, rows: &[Row]) {
    write_table_with(bench, title, notes, rows, "");
}

/// `write_table`, with `after` (markdown: a second table, notes) written
/// under the table.
pub fn write_table_with(bench: &str, title: &str, notes: &str, rows: &[Row], after: &str) {
    let mut md = format!(
        "## {title}\n\n{notes}\n\n| measured | connkit | peer | ratio | goal | met |\n|---|---|---|---|---|---|\n"
    );
    for r in rows {
        let _ = writeln!(
            md,
            "| {} | {:.1} {} | {:.1} {} | {:.2} | {} | {} |",
            r.what,
            r.ours,
            r.unit,
            r.peer,
            r.unit,
            r.ours / r.peer,
            r.goal,
            if r.met { "yes" } else { "**no**" }
        );
    }
    if !after.is_empty() {
        let _ = write!(md, "\n{after}");
    }
    println!("\n{md}");
    if !measuring() {
        println!("(smoke run under cargo test: {bench}'s table is not written)");
        return;
    }
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/bench-tables");
    let _ = std::fs::create_dir_all(&dir);
    if let Err(e) = std::fs::write(dir.join(format!("{bench}.md")), md) {
        eprintln!("cannot write the {bench} table: {e}");
    }
}

/// The peer server's side of one HTTP/1.1 connection: hyper's own http1
/// connection, keep-alive on, serving connkit's route handler over plain
/// tokio I/O. The same handler as connkit's server, so only what carries
/// it differs.
pub async fn hyper_peer_connection<I>(io: I, routes: connkit::http::Routes)
where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let hello = hyper::service::service_fn(move |req| {
        let routes = routes.clone();
        async move { Ok::<_, std::convert::Infallible>(connkit::http::route(routes, req).await) }
    });
    let _ = hyper::server::conn::http1::Builder::new()
        .keep_alive(true)
        .serve_connection(hyper_util::rt::TokioIo::new(io), hello)
        .await;
}
