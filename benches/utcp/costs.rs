//! What a workload cost the process per unit: minor faults and context
//! switches (getrusage) and syscalls (a perf counter every thread inherits).

use super::*;

/// What the whole process has used so far: both ends of every pair this
/// bench measures run in it (the kernel's share shows as syscalls).
#[derive(Clone, Copy)]
pub(super) struct Usage {
    minflt: i64,
    csw: i64,
    syscalls: Option<u64>,
}

/// The syscall counter: a perf tracepoint counter on `raw_syscalls:sys_enter`
/// opened on the main thread before any other thread exists, inheriting, so
/// it counts every thread the bench starts; or why there is none.
pub(super) static SYSCALLS: OnceLock<Result<OwnedFd, String>> = OnceLock::new();

/// perf_event_attr up to PERF_ATTR_SIZE_VER0 (64 bytes), which every
/// kernel with perf accepts; libc does not define it.
#[repr(C)]
pub(super) struct PerfAttr {
    kind: u32,
    size: u32,
    config: u64,
    sample_period: u64,
    sample_type: u64,
    read_format: u64,
    flags: u64,
    wakeup_events: u32,
    bp_type: u32,
    config1: u64,
}

pub(super) fn open_syscall_counter() -> Result<OwnedFd, String> {
    const PERF_TYPE_TRACEPOINT: u32 = 2;
    const INHERIT: u64 = 1 << 1;
    const PERF_FLAG_FD_CLOEXEC: libc::c_ulong = 1 << 3;
    const TRACEFS: &str = "/sys/kernel/tracing";
    let id_file = format!("{TRACEFS}/events/raw_syscalls/sys_enter/id");
    // A fresh machine boots with tracefs unmounted; root can mount it.
    if !std::path::Path::new(&id_file).exists() && rustix::process::geteuid().is_root() {
        let _ = std::process::Command::new("mount")
            .args(["-t", "tracefs", "nodev", TRACEFS])
            .status();
    }
    let id = std::fs::read_to_string(&id_file)
        .map_err(|e| format!("no raw_syscalls:sys_enter tracepoint ({id_file}): {e}"))?;
    let attr = PerfAttr {
        kind: PERF_TYPE_TRACEPOINT,
        size: std::mem::size_of::<PerfAttr>() as u32,
        config: id
            .trim()
            .parse()
            .map_err(|e| format!("tracepoint id: {e}"))?,
        sample_period: 0,
        sample_type: 0,
        read_format: 0,
        flags: INHERIT,
        wakeup_events: 0,
        bp_type: 0,
        config1: 0,
    };
    // SAFETY: `attr` is a valid perf_event_attr of the size it states and
    // outlives the call; pid 0, cpu -1: this thread (and, inherited, the
    // threads it starts) on any CPU; no group.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_perf_event_open,
            &attr as *const PerfAttr,
            0,
            -1,
            -1,
            PERF_FLAG_FD_CLOEXEC,
        )
    };
    if fd < 0 {
        return Err(format!(
            "perf_event_open: {}",
            std::io::Error::last_os_error()
        ));
    }
    // SAFETY: the kernel just returned this descriptor, owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

pub(super) fn usage() -> Usage {
    // SAFETY: all-zero is a valid `rusage` (integers and timevals).
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `ru` is a valid, writable rusage for the call.
    let got = unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) };
    assert_eq!(got, 0, "getrusage");
    let syscalls = SYSCALLS.get().and_then(|c| c.as_ref().ok()).map(|fd| {
        let mut count = [0u8; 8];
        // A counter reads as one u64 (read_format 0): this thread's count
        // plus its descendants', live and exited.
        let n = rustix::io::read(fd, &mut count).expect("read the syscall counter");
        assert_eq!(n, 8);
        u64::from_ne_bytes(count)
    });
    Usage {
        minflt: ru.ru_minflt,
        csw: ru.ru_nvcsw + ru.ru_nivcsw,
        syscalls,
    }
}

/// One run of a workload: its rate, and what it cost the process per unit
/// (connection, request, or MiB) of that rate.
#[derive(Clone, Copy)]
pub(super) struct Run {
    pub(super) rate: f64,
    minflt: f64,
    pub(super) csw: f64,
    pub(super) syscalls: Option<f64>,
}

impl Run {
    /// `units` done between `before` and now, in `secs`.
    pub(super) fn since(before: Usage, units: f64, secs: f64) -> Run {
        let after = usage();
        Run {
            rate: units / secs,
            minflt: (after.minflt - before.minflt) as f64 / units,
            csw: (after.csw - before.csw) as f64 / units,
            syscalls: before
                .syscalls
                .zip(after.syscalls)
                .map(|(b, a)| (a - b) as f64 / units),
        }
    }

    /// Field by field, the medians of `runs`.
    pub(super) fn median(runs: &[Run]) -> Run {
        let of = |f: fn(&Run) -> f64| median(runs.iter().map(f).collect());
        Run {
            rate: of(|r| r.rate),
            minflt: of(|r| r.minflt),
            csw: of(|r| r.csw),
            syscalls: runs
                .iter()
                .map(|r| r.syscalls)
                .collect::<Option<Vec<_>>>()
                .map(median),
        }
    }
}

/// The per-connection costs printed under the table, one line a row.
pub(super) struct Costs(pub(super) String);

impl Costs {
    pub(super) fn new() -> Costs {
        let md = String::from(
            "Per connection during the connect + close rows, whole process (both ends; the \
             kernel's work for its own TCP shows as syscalls of the same process), medians of \
             the rounds. Faults and context switches: getrusage(RUSAGE_SELF) deltas; \
             syscalls: a perf counter on raw_syscalls:sys_enter that every thread inherits:\n\n| row | minor faults connkit | peer | context switches connkit \
             | peer | syscalls connkit | peer |\n|---|---|---|---|---|---|---|\n",
        );
        Costs(md)
    }

    pub(super) fn add(&mut self, what: &str, ours: Run, peer: Run) {
        let sys = |r: Run| match (r.syscalls, SYSCALLS.get()) {
            (Some(s), _) => format!("{s:.1}"),
            (None, Some(Err(why))) => format!("n/a ({why})"),
            (None, _) => "n/a".into(),
        };
        let _ = writeln!(
            self.0,
            "| {what} | {:.2} | {:.2} | {:.2} | {:.2} | {} | {} |",
            ours.minflt,
            peer.minflt,
            ours.csw,
            peer.csw,
            sys(ours),
            sys(peer)
        );
    }
}
