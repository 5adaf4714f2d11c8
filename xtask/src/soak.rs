//! `cargo xtask soak --minutes N [--out DIR]`: builds `connkit`, `mailboxd`,
//! `sessiond` and the soak driver (`examples/soak`) in release mode, and
//! runs the driver: the three servers under good and misbehaving clients
//! for N minutes, sampled every second, with a verdict (see
//! examples/soak/main.rs). xtask itself depends on none of the workspace.

use std::path::PathBuf;
use std::process::Command;

use crate::steps::root;

/// What `soak` was asked for.
#[derive(Debug, PartialEq)]
pub struct Options {
    /// How long the load runs.
    pub minutes: String,
    /// Where the CSV files and logs go.
    pub out: PathBuf,
}

/// Reads `--minutes N [--out DIR]`.
pub fn parse(args: &[String]) -> Result<Options, String> {
    let mut minutes = None;
    let mut out = root().join("target/soak");
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--minutes" => {
                let n = it.next().ok_or("--minutes needs a number")?;
                match n.parse::<f64>() {
                    Ok(m) if m > 0.0 => minutes = Some(n.clone()),
                    _ => return Err(format!("--minutes {n}: want a positive number")),
                }
            }
            "--out" => out = PathBuf::from(it.next().ok_or("--out needs a directory")?),
            other => return Err(format!("soak: unknown argument {other:?}")),
        }
    }
    Ok(Options {
        minutes: minutes.ok_or("soak: --minutes N is required")?,
        out,
    })
}

/// Builds and runs the soak; true when its verdict is a pass.
pub fn run(args: &[String]) -> bool {
    let options = match parse(args) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("{e}\nusage: cargo xtask soak --minutes N [--out DIR]");
            return false;
        }
    };
    println!(
        "soak: building connkit, mailboxd, sessiond and examples/soak (release), then {} minute(s) of load",
        options.minutes
    );
    let built = Command::new("cargo")
        .args(["build", "--release", "--locked"])
        .args([
            "-p",
            "connkit",
            "-p",
            "conn-mailbox",
            "-p",
            "signal-session",
        ])
        .args(["--bin", "connkit", "--bin", "mailboxd", "--bin", "sessiond"])
        .args(["--example", "soak"])
        .current_dir(root())
        .status()
        .is_ok_and(|s| s.success());
    if !built {
        eprintln!("soak: the build failed");
        return false;
    }
    let release = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join("target"))
        .join("release");
    let driver = release.join("examples/soak");
    println!("soak: running {}", driver.display());
    Command::new(&driver)
        .arg("--minutes")
        .arg(&options.minutes)
        .arg("--out")
        .arg(&options.out)
        .arg("--bins")
        .arg(&release)
        .current_dir(root())
        .status()
        .is_ok_and(|s| s.success())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn soak_wants_positive_minutes_and_takes_an_out_dir() {
        let args = |a: &[&str]| a.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let o = parse(&args(&["--minutes", "30", "--out", "/tmp/s"])).unwrap();
        assert_eq!(o.minutes, "30");
        assert_eq!(o.out, PathBuf::from("/tmp/s"));
        assert_eq!(
            parse(&args(&["--minutes", "1"])).unwrap().out,
            root().join("target/soak")
        );
        assert!(parse(&args(&[])).is_err());
        assert!(parse(&args(&["--minutes", "0"])).is_err());
        assert!(parse(&args(&["--minutes", "x"])).is_err());
        assert!(parse(&args(&["--hours", "1"])).is_err());
    }
}
