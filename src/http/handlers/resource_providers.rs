//! PLACEHOLDER: being implemented.

use actix_web::HttpResponse;
use actix_web::http::StatusCode;

use crate::errors::ApiError;
use crate::http::Request;

pub async fn create_resource_provider(_request: Request) -> Result<HttpResponse, ApiError> {
    Err(ApiError::new(
        StatusCode::NOT_IMPLEMENTED,
        "not implemented",
    ))
}

pub async fn delete_resource_provider(_request: Request) -> Result<HttpResponse, ApiError> {
    Err(ApiError::new(
        StatusCode::NOT_IMPLEMENTED,
        "not implemented",
    ))
}

pub async fn get_resource_provider(_request: Request) -> Result<HttpResponse, ApiError> {
    Err(ApiError::new(
        StatusCode::NOT_IMPLEMENTED,
        "not implemented",
    ))
}

pub async fn list_resource_providers(_request: Request) -> Result<HttpResponse, ApiError> {
    Err(ApiError::new(
        StatusCode::NOT_IMPLEMENTED,
        "not implemented",
    ))
}

pub async fn update_resource_provider(_request: Request) -> Result<HttpResponse, ApiError> {
    Err(ApiError::new(
        StatusCode::NOT_IMPLEMENTED,
        "not implemented",
    ))
}
