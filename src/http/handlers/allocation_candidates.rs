//! PLACEHOLDER: being implemented.

use actix_web::HttpResponse;
use actix_web::http::StatusCode;

use crate::errors::ApiError;
use crate::http::Request;

pub async fn list_allocation_candidates(_request: Request) -> Result<HttpResponse, ApiError> {
    Err(ApiError::new(
        StatusCode::NOT_IMPLEMENTED,
        "not implemented",
    ))
}
