//! What every target shares: a microversion picked by the input's first
//! byte, negotiated as a request header would be.

use actix_web::http::header::{HeaderMap, HeaderName, HeaderValue};
use placement::http::microversion::{self, Microversion};

/// 1.0 to 1.39 from one byte.
pub fn version(byte: u8) -> Microversion {
    let mut headers = HeaderMap::new();
    let minor = byte % 40;
    if let Ok(value) = HeaderValue::from_str(&format!("placement 1.{minor}")) {
        headers.insert(HeaderName::from_static(microversion::HEADER), value);
    }
    microversion::negotiate(&headers).unwrap_or(microversion::MIN)
}
