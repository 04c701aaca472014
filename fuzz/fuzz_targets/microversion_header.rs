//! The `OpenStack-API-Version` header: any bytes give a version, a 400 or
//! a 406, never a panic.
#![no_main]

use actix_web::http::header::{HeaderMap, HeaderName, HeaderValue};
use libfuzzer_sys::fuzz_target;
use placement::http::microversion;

fuzz_target!(|data: &[u8]| {
    let mut headers = HeaderMap::new();
    for value in data.split(|byte| *byte == b'\n') {
        if let Ok(value) = HeaderValue::from_bytes(value) {
            headers.append(HeaderName::from_static(microversion::HEADER), value);
        }
    }
    let _ = microversion::negotiate(&headers);
});
