//! The `connkit` command: `connkit demo` and friends.

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
    let result = match cli.command {
        Command::Demo => runtime.block_on(connkit::demo::run(&mut std::io::stdout())),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("connkit: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
