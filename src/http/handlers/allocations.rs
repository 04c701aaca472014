//! PLACEHOLDER: being implemented.

use actix_web::HttpResponse;
use actix_web::http::StatusCode;

use crate::errors::ApiError;
use crate::http::Request;

pub async fn delete_allocations(_request: Request) -> Result<HttpResponse, ApiError> {
    Err(ApiError::new(
        StatusCode::NOT_IMPLEMENTED,
        "not implemented",
    ))
}

pub async fn list_for_consumer(_request: Request) -> Result<HttpResponse, ApiError> {
    Err(ApiError::new(
        StatusCode::NOT_IMPLEMENTED,
        "not implemented",
    ))
}

pub async fn list_for_resource_provider(_request: Request) -> Result<HttpResponse, ApiError> {
    Err(ApiError::new(
        StatusCode::NOT_IMPLEMENTED,
        "not implemented",
    ))
}

pub async fn set_allocations(_request: Request) -> Result<HttpResponse, ApiError> {
    Err(ApiError::new(
        StatusCode::NOT_IMPLEMENTED,
        "not implemented",
    ))
}

pub async fn set_allocations_for_consumer(_request: Request) -> Result<HttpResponse, ApiError> {
    Err(ApiError::new(
        StatusCode::NOT_IMPLEMENTED,
        "not implemented",
    ))
}
