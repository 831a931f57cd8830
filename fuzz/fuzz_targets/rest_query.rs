//! cargo-fuzz target: see `werkfunk_faults::fuzzing::rest_query` for the property it checks.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    werkfunk_faults::fuzzing::rest_query(data);
});
