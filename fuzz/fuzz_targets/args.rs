#![no_main]
//! Feeds arbitrary bytes to `slicebox::fuzzing::args`; see docs/reliability.md, "Fuzzing".

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    slicebox::fuzzing::args(data);
});
