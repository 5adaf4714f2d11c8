//! What a soak run must show, as a pure function of its figures, so the
//! rule is tested apart from the run.

use conn_test_support::proc::Usage;

/// Runs this long or longer are judged on growth in percent.
pub const LONG_RUN_MINUTES: f64 = 5.0;

/// In a long run, how much RSS and descriptors may grow from the
/// one-minute mark to the end, in percent.
pub const GROWTH_PERCENT: f64 = 5.0;

/// In a short run, how many more descriptors a server may hold at the end
/// than at the half-way mark (the good clients' connections come and go).
pub const SHORT_RUN_FD_SLACK: usize = 8;

/// Where the baseline is taken: at one minute for a long run, at half the
/// run for a shorter one (there is no steady one-minute mark in a run of a
/// minute or two).
pub fn mark_secs(minutes: f64) -> f64 {
    if minutes >= LONG_RUN_MINUTES {
        60.0
    } else {
        minutes * 60.0 / 2.0
    }
}

/// Growth from `from` to `to` in percent (negative when it shrank).
pub fn percent(from: f64, to: f64) -> f64 {
    if from == 0.0 {
        0.0
    } else {
        (to - from) / from * 100.0
    }
}

/// What is wrong with a server that used `mark` at the mark and `end` at
/// the end of a run of `minutes`; empty when nothing is.
///
/// A long run fails when RSS or descriptors at the end are more than
/// [`GROWTH_PERCENT`] above the one-minute mark. A short run only reports
/// RSS, and fails when descriptors grew by more than
/// [`SHORT_RUN_FD_SLACK`]. Shrinking is never a failure.
pub fn judge(server: &str, minutes: f64, mark: Usage, end: Usage) -> Vec<String> {
    let mut wrong = Vec::new();
    let (rss, fds) = (
        percent(mark.rss_kib as f64, end.rss_kib as f64),
        percent(mark.fds as f64, end.fds as f64),
    );
    if minutes >= LONG_RUN_MINUTES {
        if rss > GROWTH_PERCENT {
            wrong.push(format!(
                "{server}: RSS grew {rss:.1}% ({} -> {} KiB), more than {GROWTH_PERCENT}%",
                mark.rss_kib, end.rss_kib
            ));
        }
        if fds > GROWTH_PERCENT {
            wrong.push(format!(
                "{server}: descriptors grew {fds:.1}% ({} -> {}), more than {GROWTH_PERCENT}%",
                mark.fds, end.fds
            ));
        }
    } else if end.fds > mark.fds + SHORT_RUN_FD_SLACK {
        wrong.push(format!(
            "{server}: descriptors grew from {} to {}, more than {SHORT_RUN_FD_SLACK}",
            mark.fds, end.fds
        ));
    }
    wrong
}

#[cfg(test)]
mod tests {
    use super::*;

    fn usage(rss_kib: u64, fds: usize) -> Usage {
        Usage {
            rss_kib,
            fds,
            threads: 2,
        }
    }

    #[test]
    fn a_long_run_fails_on_rss_or_descriptors_more_than_five_percent_above_the_minute_mark() {
        assert_eq!(
            judge("s", 30.0, usage(10_000, 20), usage(10_500, 22)).len(),
            1
        );
        assert!(judge("s", 30.0, usage(10_000, 100), usage(10_500, 105)).is_empty());
        let wrong = judge("s", 30.0, usage(10_000, 100), usage(10_501, 106));
        assert_eq!(wrong.len(), 2, "{wrong:?}");
        assert!(wrong[0].contains("RSS grew") && wrong[1].contains("descriptors grew"));
        // Shrinking is no leak.
        assert!(judge("s", 30.0, usage(10_000, 100), usage(5_000, 50)).is_empty());
    }

    #[test]
    fn a_short_run_fails_only_on_descriptors_beyond_the_slack_and_marks_at_half_time() {
        assert_eq!(mark_secs(1.0), 30.0);
        assert_eq!(mark_secs(30.0), 60.0);
        assert!(judge("s", 1.0, usage(10_000, 20), usage(20_000, 28)).is_empty());
        let wrong = judge("s", 1.0, usage(10_000, 20), usage(10_000, 29));
        assert_eq!(wrong.len(), 1, "{wrong:?}");
    }
}
