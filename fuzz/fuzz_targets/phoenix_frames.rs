//! cargo-fuzz target: see `werkfunk_faults::fuzzing::phoenix_frames` for the property it checks.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    werkfunk_faults::fuzzing::phoenix_frames(data);
});
