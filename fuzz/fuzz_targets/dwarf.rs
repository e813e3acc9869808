//! DWARF sections, split out of the input: the runtime.g layout reader.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    leaktrace_gobinary::fuzz::dwarf(data);
});
