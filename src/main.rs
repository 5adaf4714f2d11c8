//! The `connkit` command: `connkit demo` and friends.

use std::time::Duration;

use clap::{Parser, Subcommand};

/// One connection lifecycle over many transports.
#[derive(Parser, Debug)]
#[command(name = "connkit", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Shows the lifecycle, the layers and graceful shutdown, with no set-up.
    Demo,
    /// Serves HTTP/1.1 (`/`, `/slow?ms=N`, `/stats`) on any transport until
    /// SIGTERM or Ctrl-C, then shuts down gracefully and prints the report.
    Http {
        /// Where to listen, e.g. ipc:///tmp/x.sock or mem://name.
        #[arg(long)]
        listen: String,
        /// How long in-flight requests may take to finish after the signal.
        #[arg(long, default_value_t = 5000)]
        drain_ms: u64,
        /// Serve utcp:// from a userspace stack on this TAP device, created
        /// in the host namespace (needs root).
        #[arg(long, requires = "tap_host")]
        tap: Option<String>,
        /// The kernel side's address on the TAP device, e.g. 10.7.0.1/24.
        #[arg(long, requires = "tap")]
        tap_host: Option<String>,
    },
    /// Fetches a URL through the connkit client stack and prints the body;
    /// exits non-zero with a one-line reason unless the status is 2xx.
    Get {
        /// Send the request over this endpoint (e.g. ipc:///tmp/x.sock)
        /// instead of TCP to the URL's host.
        #[arg(long)]
        via: Option<String>,
        /// Give up after this many milliseconds (connect and response).
        #[arg(long, default_value_t = 10_000)]
        timeout_ms: u64,
        /// The URL to fetch, e.g. http://localhost/stats.
        url: String,
    },
}

fn main() -> std::process::ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let registry = connkit::registry();
    let result = match cli.command {
        Command::Demo => runtime
            .block_on(connkit::demo::run(&mut std::io::stdout()))
            .map_err(|e| e.to_string()),
        Command::Http {
            listen,
            drain_ms,
            tap,
            tap_host,
        } => runtime
            .block_on(async {
                let mut registry = registry;
                // Kept until the server ends; dropping it removes the device.
                let _stack = match tap.zip(tap_host) {
                    Some((tap, host)) => Some(
                        connkit::cli::http::tap_stack(&mut registry, &listen, &tap, &host).await?,
                    ),
                    None => None,
                };
                connkit::cli::http::run(&registry, &listen, Duration::from_millis(drain_ms)).await
            })
            .map_err(|e| e.to_string()),
        Command::Get {
            via,
            timeout_ms,
            url,
        } => runtime.block_on(connkit::cli::get::run(
            &registry,
            &url,
            via.as_deref(),
            Duration::from_millis(timeout_ms),
        )),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("connkit: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
