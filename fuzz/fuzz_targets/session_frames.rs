#![no_main]
//! `session_frames`: see `conn_fuzz_targets::TARGETS` for what it decodes.

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let target = conn_fuzz_targets::target("session_frames").expect("a listed target");
    (target.run)(data);
});
