//! `/resource_classes` (upstream `handlers/resource_class.py`).

use actix_web::HttpResponse;
use actix_web::http::StatusCode;
use actix_web::http::header;
use serde_json::json;

use crate::domain::resource_classes as domain;
use crate::errors::ApiError;
use crate::http::{Request, microversion as mv, negotiation, newest};
use crate::policy::actions;
use crate::schemas::resource_classes::{
    CREATE_RESOURCE_CLASS, ResourceClassView, ResourceClassesView,
};

fn location(name: &str) -> String {
    format!("/resource_classes/{name}")
}

/// `GET /resource_classes` (1.2): every class. 200.
pub async fn list_resource_classes(request: Request) -> Result<HttpResponse, ApiError> {
    request.authorize(actions::RESOURCE_CLASSES_LIST)?;
    let rows = request.state.db.run(domain::list).await?;
    let mut last_modified = None;
    for row in &rows {
        last_modified = newest(last_modified, row.created_at, row.updated_at);
    }
    let body = ResourceClassesView {
        resource_classes: rows
            .iter()
            .map(|row| ResourceClassView::new(&row.name))
            .collect(),
    };
    Ok(request.json_ok(&body, last_modified))
}

/// `POST /resource_classes` (1.2): create a custom class. 201 with
/// Location; 400 for a bad name; 409 when it exists.
pub async fn create_resource_class(request: Request) -> Result<HttpResponse, ApiError> {
    request.authorize(actions::RESOURCE_CLASSES_CREATE)?;
    let data = request.json_body(&CREATE_RESOURCE_CLASS)?;
    let name = data["name"].as_str().unwrap_or_default().to_owned();
    let lookup = name.clone();
    let created = request
        .state
        .db
        .run(move |connection| domain::create(connection, &lookup))
        .await?;
    if created.is_none() {
        return Err(ApiError::conflict(format!(
            "Conflicting resource class already exists: {name}"
        )));
    }
    Ok(HttpResponse::Created()
        .insert_header((header::LOCATION, location(&name)))
        .finish())
}

/// `GET /resource_classes/{name}` (1.2). 200; 404.
pub async fn get_resource_class(request: Request) -> Result<HttpResponse, ApiError> {
    request.authorize(actions::RESOURCE_CLASSES_SHOW)?;
    let name = request.path_param("name").to_owned();
    let row = request
        .state
        .db
        .run(move |connection| domain::get(connection, &name))
        .await?;
    Ok(request.json_ok(
        &ResourceClassView::new(&row.name),
        newest(None, row.created_at, row.updated_at),
    ))
}

/// `PUT /resource_classes/{name}`: before 1.7 renames a custom class (200,
/// 400 standard, 404, 409 name taken); from 1.7 creates it if missing
/// (201) or confirms it exists (204).
pub async fn update_resource_class(request: Request) -> Result<HttpResponse, ApiError> {
    if !request.version.at_least(mv::RESOURCE_CLASS_PUT_CREATES) {
        negotiation::require_json_content(request.headers())?;
        request.authorize(actions::RESOURCE_CLASSES_UPDATE)?;
        let data = request.json_body(&CREATE_RESOURCE_CLASS)?;
        let new_name = data["name"].as_str().unwrap_or_default().to_owned();
        let name = request.path_param("name").to_owned();
        let row = request
            .state
            .db
            .run(move |connection| domain::rename(connection, &name, &new_name))
            .await?;
        return Ok(request.json_ok(&ResourceClassView::new(&row.name), None));
    }
    request.authorize(actions::RESOURCE_CLASSES_UPDATE)?;
    let name = request.path_param("name").to_owned();
    negotiation::validate_value(&json!({"name": name}), &CREATE_RESOURCE_CLASS)?;
    let lookup = name.clone();
    let created = request
        .state
        .db
        .run(move |connection| domain::ensure(connection, &lookup))
        .await?;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::NO_CONTENT
    };
    Ok(HttpResponse::build(status)
        .insert_header((header::LOCATION, location(&name)))
        .finish())
}

/// `DELETE /resource_classes/{name}` (1.2). 204; 400 standard; 404; 409
/// in use.
pub async fn delete_resource_class(request: Request) -> Result<HttpResponse, ApiError> {
    request.authorize(actions::RESOURCE_CLASSES_DELETE)?;
    let name = request.path_param("name").to_owned();
    request
        .state
        .db
        .run(move |connection| domain::delete(connection, &name))
        .await?;
    Ok(HttpResponse::NoContent().finish())
}
