//! A `.gopclntab` section: parsing, function lookup, file:line decoding.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    leaktrace_gobinary::fuzz::pclntab(data);
});
