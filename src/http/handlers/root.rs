//! `GET /`: the version document (upstream `handlers/root.py`).

use actix_web::HttpResponse;
use serde::Serialize;

use crate::errors::ApiError;
use crate::http::Request;
use crate::http::microversion;

#[derive(Serialize)]
struct VersionsView {
    versions: [VersionView; 1],
}

#[derive(Serialize)]
struct VersionView {
    id: &'static str,
    max_version: String,
    min_version: String,
    status: &'static str,
    links: [LinkView; 1],
}

#[derive(Serialize)]
struct LinkView {
    rel: &'static str,
    href: &'static str,
}

/// `GET /`: the supported microversion range. No authentication; 200.
pub async fn home(request: Request) -> Result<HttpResponse, ApiError> {
    let body = VersionsView {
        versions: [VersionView {
            id: "v1.0",
            max_version: microversion::MAX.to_string(),
            min_version: microversion::MIN.to_string(),
            status: "CURRENT",
            links: [LinkView {
                rel: "self",
                href: "",
            }],
        }],
    };
    Ok(request.json_ok(&body, None))
}
