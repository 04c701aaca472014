//! What operators call rather than clients: `/healthcheck` as
//! oslo.middleware's healthcheck answers it, and `/metrics` (Prometheus
//! text exposition). Neither is part of the Placement API's microversions.

use actix_web::http::header;
use actix_web::http::{Method, StatusCode};
use actix_web::{HttpRequest, HttpResponse};

use crate::state::AppState;
use crate::storage;

/// GET 200 `OK`, HEAD 204; 503 with the reason when the database does not
/// answer. JSON when the client asks for it, as oslo.middleware does.
pub async fn healthcheck(request: &HttpRequest, state: &AppState) -> HttpResponse {
    let probe = state.db.run(storage::ping).await;
    let (status, reason) = match probe {
        Ok(()) => (StatusCode::OK, "OK".to_owned()),
        Err(error) => {
            tracing::warn!(%error, "health check failed");
            (StatusCode::SERVICE_UNAVAILABLE, error.to_string())
        }
    };
    if request.method() == Method::HEAD {
        let status = if status == StatusCode::OK {
            StatusCode::NO_CONTENT
        } else {
            status
        };
        return HttpResponse::build(status).finish();
    }
    let wants_json = request
        .headers()
        .get(header::ACCEPT)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|accept| accept.contains("application/json"));
    let mut response = HttpResponse::build(status);
    if wants_json {
        response.json(serde_json::json!({"detailed": false, "reasons": [reason]}))
    } else {
        response
            .content_type("text/plain; charset=UTF-8")
            .body(reason)
    }
}

/// The Prometheus text exposition of this process's metrics.
pub fn metrics(state: &AppState) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4; charset=utf-8")
        .body(state.metrics.render(&state.db.status()))
}
