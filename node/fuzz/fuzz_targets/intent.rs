#![no_main]
//! See `remesa::fuzzing::intent` for the input format and the properties checked.

libfuzzer_sys::fuzz_target!(|data: &[u8]| remesa::fuzzing::intent(data));
