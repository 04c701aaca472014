//! PLACEHOLDER: being implemented.

use actix_web::HttpResponse;
use actix_web::http::StatusCode;

use crate::errors::ApiError;
use crate::http::Request;

pub async fn create_inventory(_request: Request) -> Result<HttpResponse, ApiError> {
    Err(ApiError::new(
        StatusCode::NOT_IMPLEMENTED,
        "not implemented",
    ))
}

pub async fn delete_inventories(_request: Request) -> Result<HttpResponse, ApiError> {
    Err(ApiError::new(
        StatusCode::NOT_IMPLEMENTED,
        "not implemented",
    ))
}

pub async fn delete_inventory(_request: Request) -> Result<HttpResponse, ApiError> {
    Err(ApiError::new(
        StatusCode::NOT_IMPLEMENTED,
        "not implemented",
    ))
}

pub async fn get_inventories(_request: Request) -> Result<HttpResponse, ApiError> {
    Err(ApiError::new(
        StatusCode::NOT_IMPLEMENTED,
        "not implemented",
    ))
}

pub async fn get_inventory(_request: Request) -> Result<HttpResponse, ApiError> {
    Err(ApiError::new(
        StatusCode::NOT_IMPLEMENTED,
        "not implemented",
    ))
}

pub async fn set_inventories(_request: Request) -> Result<HttpResponse, ApiError> {
    Err(ApiError::new(
        StatusCode::NOT_IMPLEMENTED,
        "not implemented",
    ))
}

pub async fn update_inventory(_request: Request) -> Result<HttpResponse, ApiError> {
    Err(ApiError::new(
        StatusCode::NOT_IMPLEMENTED,
        "not implemented",
    ))
}
