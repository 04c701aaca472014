//! Renders every error the way upstream's webob exceptions with
//! `json_error_formatter` do (`placement/util.py`): the status's standard
//! explanation followed by the detail, as JSON, or as HTML or plain text
//! when the client's Accept header prefers those.

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderName, HeaderValue};
use actix_web::{HttpRequest, HttpResponse};
use std::sync::LazyLock;

use regex::Regex;
use serde::Serialize;

use super::microversion::{self, Microversion};
use crate::errors::ApiError;

#[derive(Serialize)]
struct Envelope<'a> {
    errors: [ErrorView<'a>; 1],
}

#[derive(Serialize)]
struct ErrorView<'a> {
    status: u16,
    title: &'a str,
    detail: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    code: Option<&'static str>,
    request_id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    max_version: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    min_version: Option<String>,
}

/// webob's explanation for each status, shown before the detail.
fn explanation(status: StatusCode, request: &HttpRequest) -> String {
    match status.as_u16() {
        400 => "The server could not comply with the request since it is either malformed or otherwise incorrect.".to_owned(),
        401 => "This server could not verify that you are authorized to access the document you requested.  Either you supplied the wrong credentials (e.g., bad password), or your browser does not understand how to supply the credentials required.".to_owned(),
        403 => "Access was denied to this resource.".to_owned(),
        404 => "The resource could not be found.".to_owned(),
        405 => format!("The method {} is not allowed for this resource.", request.method()),
        406 => "The resource could not be generated that was acceptable to your browser (content of type application/json).".to_owned(),
        409 => "There was a conflict when trying to complete your request.".to_owned(),
        413 => "The body of your request was too large for this server.".to_owned(),
        415 => {
            let content_type = request
                .headers()
                .get(header::CONTENT_TYPE)
                .and_then(|value| value.to_str().ok())
                .unwrap_or("");
            format!("The request media type {content_type} is not supported by this server.")
        }
        503 => "The server is currently unavailable. Please try again at a later time.".to_owned(),
        _ => "The server has either erred or is incapable of performing the requested operation.".to_owned(),
    }
}

#[derive(PartialEq)]
enum Format {
    Json,
    Html,
    Plain,
}

/// webob matches the Accept header against html, json and plain text, in
/// that order of preference; no Accept header (or `*/*`) means JSON here.
fn preferred_format(request: &HttpRequest) -> Format {
    let Some(accept) = request
        .headers()
        .get(header::ACCEPT)
        .and_then(|value| value.to_str().ok())
    else {
        return Format::Json;
    };
    let mut best: Option<(f32, Format)> = None;
    for range in accept.split(',') {
        let mut parts = range.split(';');
        let media = parts.next().unwrap_or("").trim().to_ascii_lowercase();
        let quality = parts
            .filter_map(|param| param.trim().strip_prefix("q="))
            .find_map(|q| q.parse::<f32>().ok())
            .unwrap_or(1.0);
        let format = match media.as_str() {
            "text/html" => Format::Html,
            "application/json" | "application/*" => Format::Json,
            "text/plain" => Format::Plain,
            "text/*" => Format::Html,
            _ => continue,
        };
        if quality > 0.0 && best.as_ref().is_none_or(|(q, _)| quality > *q) {
            best = Some((quality, format));
        }
    }
    best.map_or(Format::Json, |(_, format)| format)
}

/// Builds the error response. `version` is the negotiated microversion, if
/// negotiation got that far; `unacceptable_version` marks the 406 of a
/// version out of range, whose body names the supported range.
pub fn render(
    request: &HttpRequest,
    error: &ApiError,
    version: Option<Microversion>,
    request_id: &str,
    unacceptable_version: bool,
) -> HttpResponse {
    let title = match error.status {
        // webob's name for it.
        StatusCode::PAYLOAD_TOO_LARGE => "Request Entity Too Large",
        status => status.canonical_reason().unwrap_or("Error"),
    };
    let explanation = explanation(error.status, request);
    let mut response = HttpResponse::build(error.status);
    for (name, value) in &error.headers {
        if let Ok(value) = HeaderValue::from_str(value) {
            response.insert_header((HeaderName::from_static(name), value));
        }
    }
    match preferred_format(request) {
        Format::Json => {
            let body = Envelope {
                errors: [ErrorView {
                    status: error.status.as_u16(),
                    title,
                    detail: plain_body(&explanation, &error.detail),
                    code: version
                        .filter(|version| version.at_least(microversion::ERROR_CODES))
                        .map(|_| error.code.as_str()),
                    request_id,
                    max_version: unacceptable_version.then(|| microversion::MAX.to_string()),
                    min_version: unacceptable_version.then(|| microversion::MIN.to_string()),
                }],
            };
            response.content_type("application/json").json(body)
        }
        Format::Html => response.content_type("text/html; charset=UTF-8").body(format!(
            "<html>\n <head>\n  <title>{status} {title}</title>\n </head>\n <body>\n  <h1>{status} {title}</h1>\n  {explanation}<br /><br />\n{detail}\n\n\n </body>\n</html>",
            status = error.status.as_u16(),
            explanation = escape_html(&explanation),
            detail = escape_html(&error.detail),
        )),
        Format::Plain => response.content_type("text/plain; charset=UTF-8").body(format!(
            "{} {title}\n\n{}",
            error.status.as_u16(),
            plain_body(&explanation, &error.detail)
        )),
    }
}

/// webob's body template (`${explanation}<br /><br />\n${detail}\n${html_comment}\n`,
/// unescaped) through its `strip_tags`, as both the JSON (placement's
/// `json_error_formatter`) and the plain-text bodies show it: every newline
/// of the detail becomes a space, only the `<br />`s become newlines, and
/// anything that looks like a tag is dropped.
fn plain_body(explanation: &str, detail: &str) -> String {
    strip_tags(&format!("{explanation}<br /><br />\n{detail}\n\n"))
}

/// webob's `strip_tags`.
fn strip_tags(value: &str) -> String {
    static BR: LazyLock<Regex> = LazyLock::new(|| compile(r"(?is)<br.*?>"));
    static COMMENT: LazyLock<Regex> = LazyLock::new(|| compile(r"<!--|-->"));
    static TAG: LazyLock<Regex> = LazyLock::new(|| compile(r"(?s)<.*?>"));
    let value = value.replace('\n', " ").replace('\r', "");
    let value = BR.replace_all(&value, "\n");
    let value = COMMENT.replace_all(&value, "");
    TAG.replace_all(&value, "").into_owned()
}

fn compile(pattern: &str) -> Regex {
    match Regex::new(pattern) {
        Ok(regex) => regex,
        Err(error) => unreachable!("fixed pattern {pattern}: {error}"),
    }
}

fn escape_html(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// keystonemiddleware's 401, in its own error format (not Placement's),
/// with the `WWW-Authenticate` header that tells clients where to log in.
pub fn keystone_unauthorized(www_authenticate: &str) -> HttpResponse {
    let mut response = HttpResponse::Unauthorized();
    if let Ok(value) = HeaderValue::from_str(www_authenticate) {
        response.insert_header((header::WWW_AUTHENTICATE, value));
    }
    response.content_type("application/json").body(
        r#"{"error": {"code": 401, "title": "Unauthorized", "message": "The request you have made requires authentication."}}"#,
    )
}

/// keystonemiddleware's 503 when Keystone cannot be asked: webob's JSON
/// rendering of its `ServiceError`.
pub fn keystone_unavailable() -> HttpResponse {
    HttpResponse::ServiceUnavailable()
        .content_type("application/json")
        .body(
            r#"{"message": "The server is currently unavailable. Please try again at a later time.<br /><br />\nThe Keystone service is temporarily unavailable.\n\n", "code": "503 Service Unavailable", "title": "Service Unavailable"}"#,
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_detail_is_stripped_as_webob_strips_it() {
        assert_eq!(
            plain_body(
                "Bad.",
                "JSON does not validate: 'x' is bad\n\nFailed validating 'pattern'\r\n"
            ),
            "Bad.\n\n JSON does not validate: 'x' is bad  Failed validating 'pattern'   "
        );
        assert_eq!(
            plain_body("Gone.", "no <b>such</b> <!-- thing -->"),
            "Gone.\n\n no such  thing   "
        );
    }
}
