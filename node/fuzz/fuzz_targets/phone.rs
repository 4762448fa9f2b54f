#![no_main]
//! See `remesa::fuzzing::phone` for the input format and the properties checked.

libfuzzer_sys::fuzz_target!(|data: &[u8]| remesa::fuzzing::phone(data));
