//! `GET /extensions`: the paths this server serves beyond upstream's API.
//! Upstream answers 404 here, which is how a client tells them apart.

use actix_web::HttpResponse;
use serde::Serialize;

use crate::errors::ApiError;
use crate::http::Request;
use crate::policy::actions;

#[derive(Serialize)]
struct ExtensionView {
    name: &'static str,
    href: &'static str,
    methods: &'static [&'static str],
}

#[derive(Serialize)]
struct ExtensionsView {
    extensions: [ExtensionView; 2],
}

pub async fn list_extensions(request: Request) -> Result<HttpResponse, ApiError> {
    request.authorize(actions::EXTENSIONS_LIST)?;
    let body = ExtensionsView {
        extensions: [
            ExtensionView {
                name: "claims",
                href: "/claims",
                methods: &["POST"],
            },
            ExtensionView {
                name: "changes",
                href: "/changes",
                methods: &["GET"],
            },
        ],
    };
    Ok(request.json_ok(&body, None))
}
