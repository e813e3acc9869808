//! A whole executable: GoBinary::parse and the lookups leaktrace makes.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    leaktrace_gobinary::fuzz::go_binary(data);
});
