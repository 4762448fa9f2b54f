#![no_main]
//! See `remesa::fuzzing::whatsapp_body` for the input format and the properties checked.

libfuzzer_sys::fuzz_target!(|data: &[u8]| remesa::fuzzing::whatsapp_body(data));
