//! `connkit http --listen URL`: the HTTP server over any transport.

use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

use crate::core::{Registry, Result, serve};
use crate::http::{Routes, Stats, http_handler};

/// Serves `/`, `/slow?ms=N` and `/stats` on `listen` until SIGTERM or
/// Ctrl-C, then shuts down gracefully within `drain` and prints the report.
pub async fn run(registry: &Registry, listen: &str, drain: Duration) -> Result<()> {
    let listener = registry.bind(listen).await?;
    let endpoint = crate::core::Listener::local_endpoint(&listener);
    say(format_args!("listening on {endpoint}"));
    let routes = Routes::new(Arc::new(Stats::default()));
    let report = serve(listener, http_handler(routes))
        .with_graceful_shutdown(
            async move {
                super::terminate_signal().await;
                say(format_args!("shutting down, draining for up to {drain:?}"));
            },
            drain,
        )
        .await?;
    say(format_args!("shutdown report: {report}"));
    Ok(())
}

/// Sets up `--tap NAME --tap-host CIDR` for `connkit http`: creates the
/// TAP device `tap` in this namespace, gives the kernel side `host` (e.g.
/// `10.7.0.1/24`) and brings it up, builds a userspace stack on it at the
/// address of `listen` (`utcp://10.7.0.2:8080`, same prefix) and registers
/// it as `registry`'s `utcp://` transport. The device goes when the
/// returned stack (and every connection of it) is dropped.
pub async fn tap_stack(
    registry: &mut Registry,
    listen: &str,
    tap: &str,
    host: &str,
) -> Result<crate::utcp::Stack> {
    use crate::core::{Endpoint, Error, ErrorKind};
    let bad = |what: &str| {
        Error::new(ErrorKind::InvalidType)
            .during("http --tap")
            .detail(what.to_owned())
    };
    let endpoint = Endpoint::parse(listen)?;
    if endpoint.scheme() != "utcp" {
        return Err(bad(
            "--tap serves utcp:// endpoints, e.g. utcp://10.7.0.2:8080",
        ));
    }
    let addr: std::net::SocketAddrV4 = endpoint
        .address()
        .parse()
        .map_err(|_| bad("--listen utcp:// needs IPv4:port"))?;
    let host_cidr: crate::utcp::Ipv4Cidr = host
        .parse()
        .map_err(|_| bad("--tap-host takes an IPv4 address and prefix, e.g. 10.7.0.1/24"))?;
    let device = crate::utcp::Tap::open(tap)?;
    for args in [
        &["addr", "add", host, "dev", tap][..],
        &["link", "set", tap, "up"][..],
    ] {
        let status = tokio::process::Command::new("ip")
            .args(args)
            .status()
            .await
            .map_err(|e| Error::io(e, "http --tap", "ip"))?;
        if !status.success() {
            return Err(bad(&format!("ip {} failed", args.join(" "))));
        }
    }
    let stack = crate::utcp::Stack::builder(device)
        .address(crate::utcp::Ipv4Cidr::new(
            *addr.ip(),
            host_cidr.prefix_len(),
        ))
        .gateway(host_cidr.address())
        .build()?;
    crate::utcp::register(registry, stack.clone());
    say(format_args!(
        "tap {tap}: kernel side {host}, userspace stack {}",
        addr.ip()
    ));
    Ok(stack)
}

/// One line of progress on stdout; a closed stdout must not stop the server.
fn say(line: std::fmt::Arguments<'_>) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "connkit http: {line}").and_then(|()| out.flush());
}
