//! The decoders of the target's memory (goroutine censuses, `runtime.g`,
//! frame-pointer stacks, sudogs, timer heaps) on memory the fuzzer writes.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    leaktrace::process::fuzz::memory(data);
});
