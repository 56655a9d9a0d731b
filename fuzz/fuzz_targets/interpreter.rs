#![no_main]
//! Feeds arbitrary bytes to `slicebox::fuzzing::interpreter`; see docs/reliability.md, "Fuzzing".

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    slicebox::fuzzing::interpreter(data);
});
