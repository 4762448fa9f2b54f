#![no_main]
//! See `remesa::fuzzing::httpsig` for the input format and the properties checked.

libfuzzer_sys::fuzz_target!(|data: &[u8]| remesa::fuzzing::httpsig(data));
