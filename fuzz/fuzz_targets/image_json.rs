#![no_main]
//! Feeds arbitrary bytes to `slicebox::fuzzing::image` (an OCI layout made
//! of them, opened and its layers read); see docs/reliability.md, "Fuzzing".

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = slicebox::fuzzing::image(data);
});
