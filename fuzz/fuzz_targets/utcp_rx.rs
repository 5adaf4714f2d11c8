#![no_main]
//! `utcp_rx`: see `conn_fuzz_targets::TARGETS` for what it decodes.

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let target = conn_fuzz_targets::target("utcp_rx").expect("a listed target");
    (target.run)(data);
});
