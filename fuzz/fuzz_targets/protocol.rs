#![no_main]
//! Feeds arbitrary bytes to `slicebox::fuzzing::protocol`: a whole server
//! session from a hostile peer; see docs/reliability.md, "Fuzzing".

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    slicebox::fuzzing::protocol(data);
});
