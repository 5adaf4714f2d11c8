#![no_main]
//! `utcp_rx_ip`: see `conn_fuzz_targets::TARGETS` for what it decodes.

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let target = conn_fuzz_targets::target("utcp_rx_ip").expect("a listed target");
    (target.run)(data);
});
