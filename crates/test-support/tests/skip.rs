//! `skip` records a skip where test-all counts it, and fails under CI=true.

use conn_test_support::{SKIP_LOG, child, role, skip};

#[test]
fn a_skip_is_recorded_for_test_all_and_fails_under_ci() {
    if role().as_deref() == Some("skipper") {
        skip("the skipper", "it has no reason to run");
        println!("returned from skip");
        return;
    }
    let log = std::env::temp_dir().join(format!("connkit-skips-{}.log", std::process::id()));
    let _ = std::fs::remove_file(&log);
    let name = "a_skip_is_recorded_for_test_all_and_fails_under_ci";

    let out = child(name, "skipper")
        .env(SKIP_LOG, &log)
        .env_remove("CI")
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stdout).contains("returned from skip"));
    let recorded = std::fs::read_to_string(&log).unwrap();
    assert_eq!(recorded, "the skipper: it has no reason to run\n");

    let out = child(name, "skipper")
        .env(SKIP_LOG, &log)
        .env("CI", "true")
        .output()
        .unwrap();
    assert!(!out.status.success(), "a skip under CI=true must fail");
    assert!(String::from_utf8_lossy(&out.stderr).contains("SKIPPED under CI=true"));
    // Nothing more was recorded: the failure is the record.
    assert_eq!(std::fs::read_to_string(&log).unwrap(), recorded);
    let _ = std::fs::remove_file(&log);
}
