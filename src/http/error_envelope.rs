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
        401 => "This server could not verify that you are authorized to access the document you requested. Either you supplied the wrong credentials (e.g., bad password), or your browser does not understand how to supply the credentials required.".to_owned(),
        403 => "Access was denied to this resource.".to_owned(),
        404 => "The resource could not be found.".to_owned(),
        405 => format!("The method {} is not allowed for this resource.", request.method()),
        // HTTPNotAcceptable has a template of its own (`body_template`).
        406 => String::new(),
        409 => "There was a conflict when trying to complete your request.".to_owned(),
        // Only the change feed answers 410 (webob's HTTPGone).
        410 => "This resource is no longer available.  No forwarding address is given.".to_owned(),
        413 => "The body of your request was too large for this server.".to_owned(),
        415 => {
            // `require_content` makes a missing (or empty) one 'None'.
            let content_type = request
                .headers()
                .get(header::CONTENT_TYPE)
                .map(|value| String::from_utf8_lossy(value.as_bytes()).into_owned())
                .filter(|value| !value.is_empty())
                .unwrap_or_else(|| "None".to_owned());
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

/// The Accept header as webob's exceptions see it: upstream's request-log
/// middleware first makes an absent (or empty) one, or exactly `*/*`,
/// `application/json`.
fn effective_accept(request: &HttpRequest) -> String {
    let accept = request
        .headers()
        .get(header::ACCEPT)
        .map(|value| String::from_utf8_lossy(value.as_bytes()).into_owned())
        .unwrap_or_default();
    if accept.is_empty() || accept == "*/*" {
        "application/json".to_owned()
    } else {
        accept
    }
}

/// webob's `acceptable_offers(['text/html', 'application/json'])`: each
/// offer takes the quality of the most specific media range matching it;
/// the best quality above zero wins, html on a tie; with neither
/// acceptable, plain text.
fn preferred_format(accept: &str) -> Format {
    let html = super::negotiation::accept_quality(accept, "text", "html");
    let json = super::negotiation::accept_quality(accept, "application", "json");
    if html <= 0.0 && json <= 0.0 {
        Format::Plain
    } else if json > html {
        Format::Json
    } else {
        Format::Html
    }
}

/// webob's body template with the explanation and the detail, each passed
/// through `escape`: the generic one, or HTTPNotAcceptable's own (which
/// names the Accept header and, as webob has it, leaves a parenthesis
/// open).
fn body_template(
    status: StatusCode,
    explanation: &str,
    detail: &str,
    accept: &str,
    escape: fn(&str) -> String,
) -> String {
    if status == StatusCode::NOT_ACCEPTABLE {
        format!(
            "The resource could not be generated that was acceptable to your browser\n(content of type {}. <br /><br />\n{}",
            escape(accept),
            escape(detail)
        )
    } else if status == StatusCode::METHOD_NOT_ALLOWED {
        // HTTPMethodNotAllowed's own template (the explanation names the
        // method), and HTTPUnsupportedMediaType's below (it names the media
        // type): nothing follows the detail.
        format!("{} <br /><br />\n{}", escape(explanation), escape(detail))
    } else if status == StatusCode::UNSUPPORTED_MEDIA_TYPE {
        format!("{}\n<br /><br />\n{}", escape(explanation), escape(detail))
    } else {
        format!(
            "{}<br /><br />\n{}\n\n",
            escape(explanation),
            escape(detail)
        )
    }
}

fn no_escape(text: &str) -> String {
    text.to_owned()
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
    let accept = effective_accept(request);
    let format = preferred_format(&accept);
    if error.status == StatusCode::UNAUTHORIZED {
        // noauth2's 401 comes from before Placement's error formatter:
        // webob's own JSON, the body unstripped.
        return unauthorized(response, format, &explanation, title);
    }
    match format {
        Format::Json => {
            let body = Envelope {
                errors: [ErrorView {
                    status: error.status.as_u16(),
                    title,
                    detail: strip_tags(&body_template(
                        error.status,
                        &explanation,
                        &error.detail,
                        &accept,
                        no_escape,
                    )),
                    // The extensions' codes show at any version: no
                    // upstream client can ask for those paths.
                    code: version
                        .filter(|version| {
                            version.at_least(microversion::ERROR_CODES) || error.code.is_extension()
                        })
                        .map(|_| error.code.as_str()),
                    request_id,
                    max_version: unacceptable_version.then(|| microversion::MAX.to_string()),
                    min_version: unacceptable_version.then(|| microversion::MIN.to_string()),
                }],
            };
            response.content_type("application/json").json(body)
        }
        Format::Html => response.content_type("text/html; charset=UTF-8").body(format!(
            "<html>\n <head>\n  <title>{status} {title}</title>\n </head>\n <body>\n  <h1>{status} {title}</h1>\n  {body}\n </body>\n</html>",
            status = error.status.as_u16(),
            body = body_template(
                error.status,
                &explanation,
                &error.detail,
                &accept,
                escape_html
            ),
        )),
        Format::Plain => response.content_type("text/plain; charset=UTF-8").body(format!(
            "{} {title}\n\n{}",
            error.status.as_u16(),
            strip_tags(&body_template(
                error.status,
                &explanation,
                &error.detail,
                &accept,
                no_escape
            ))
        )),
    }
}

/// webob's rendering of a bare `HTTPUnauthorized()` with its default
/// formatters.
fn unauthorized(
    mut response: actix_web::HttpResponseBuilder,
    format: Format,
    explanation: &str,
    title: &str,
) -> HttpResponse {
    match format {
        Format::Json => {
            let message = format!("{explanation}<br /><br />\n\n\n");
            let body = format!(
                "{{\"message\": {}, \"code\": \"401 Unauthorized\", \"title\": \"{title}\"}}",
                serde_json::to_string(&message).unwrap_or_default()
            );
            response.content_type("application/json").body(body)
        }
        Format::Html => response.content_type("text/html; charset=UTF-8").body(format!(
            "<html>\n <head>\n  <title>401 {title}</title>\n </head>\n <body>\n  <h1>401 {title}</h1>\n  {}<br /><br />\n\n\n\n </body>\n</html>",
            escape_html(explanation)
        )),
        Format::Plain => response.content_type("text/plain; charset=UTF-8").body(format!(
            "401 {title}\n\n{}",
            plain_body(explanation, "")
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

/// webob's `html_escape`: Python's `html.escape(s, quote=True)`, then
/// every non-ASCII character as a decimal character reference.
fn escape_html(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#x27;"),
            c if c.is_ascii() => out.push(c),
            c => out.push_str(&format!("&#{};", u32::from(c))),
        }
    }
    out
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
