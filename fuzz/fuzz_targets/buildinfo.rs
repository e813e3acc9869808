//! A `.go.buildinfo` section.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    leaktrace_gobinary::fuzz::buildinfo(data);
});
