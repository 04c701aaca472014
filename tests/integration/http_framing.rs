//! Request framing over raw connections: a `Content-Length` the HTTP/1
//! parser refuses gets Placement's error body, and keep-alive connections
//! keep serving requests.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use serde_json::Value;

use crate::support::TestServer;

struct RawResponse {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl RawResponse {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(field, _)| field.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }

    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).expect("JSON body")
    }
}

/// A raw connection, with the bytes read past the last response.
struct Connection {
    stream: TcpStream,
    unread: Vec<u8>,
}

impl Connection {
    fn open(server: &TestServer) -> Connection {
        let address = server.base_url.trim_start_matches("http://");
        let stream = TcpStream::connect(address).expect("connect");
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .expect("read timeout");
        Connection {
            stream,
            unread: Vec::new(),
        }
    }

    fn send(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).expect("send");
    }

    fn fill(&mut self, what: &str) {
        let mut chunk = [0_u8; 4096];
        let read = self.stream.read(&mut chunk).expect("read");
        assert!(read > 0, "connection closed inside {what}");
        self.unread.extend_from_slice(&chunk[..read]);
    }

    /// Reads one response framed by its `content-length`.
    fn response(&mut self) -> RawResponse {
        let head_end = loop {
            if let Some(at) = self
                .unread
                .windows(4)
                .position(|window| window == b"\r\n\r\n")
            {
                break at;
            }
            self.fill("a response head");
        };
        let head = String::from_utf8(self.unread[..head_end].to_vec()).expect("ASCII head");
        let mut lines = head.split("\r\n");
        let status = lines
            .next()
            .and_then(|line| line.split(' ').nth(1))
            .and_then(|code| code.parse().ok())
            .expect("status code");
        let headers: Vec<(String, String)> = lines
            .filter_map(|line| line.split_once(':'))
            .map(|(name, value)| (name.trim().to_owned(), value.trim().to_owned()))
            .collect();
        let length: usize = headers
            .iter()
            .find(|(name, _)| name.eq_ignore_ascii_case("content-length"))
            .and_then(|(_, value)| value.parse().ok())
            .expect("content-length");
        while self.unread.len() < head_end + 4 + length {
            self.fill("a response body");
        }
        let body = self.unread[head_end + 4..head_end + 4 + length].to_vec();
        self.unread.drain(..head_end + 4 + length);
        RawResponse {
            status,
            headers,
            body,
        }
    }

    /// Asserts that the server closes the connection with nothing more.
    fn assert_closed(mut self) {
        self.stream
            .read_to_end(&mut self.unread)
            .expect("read to end");
        assert!(
            self.unread.is_empty(),
            "unexpected bytes after the response"
        );
    }
}

const BAD_LENGTH_REQUEST: &[u8] = b"POST /resource_providers HTTP/1.1\r\n\
    Host: placement\r\n\
    X-Auth-Token: admin\r\n\
    Content-Type: application/json\r\n\
    Content-Length: hi mom\r\n\r\n\
    {\"uuid\": \"ce13d7f1-9988-4dfd-8e16-ce071802eb36\"}";

fn assert_bad_length_error(response: &RawResponse) {
    assert_eq!(response.status, 400);
    assert_eq!(response.header("connection"), Some("close"));
    assert_eq!(response.header("content-type"), Some("application/json"));
    let body = response.json();
    let error = &body["errors"][0];
    assert_eq!(error["status"], 400);
    assert_eq!(error["title"], "Bad Request");
    let detail = error["detail"].as_str().expect("detail");
    assert!(
        detail.contains("content-length header must be an integer"),
        "{detail}"
    );
    let request_id = error["request_id"].as_str().expect("request id");
    assert!(request_id.starts_with("req-"));
    assert_eq!(response.header("x-openstack-request-id"), Some(request_id));
}

#[test]
fn content_length_not_an_integer_is_a_json_400() {
    let server = TestServer::start();
    let mut connection = Connection::open(&server);
    connection.send(BAD_LENGTH_REQUEST);
    assert_bad_length_error(&connection.response());
    connection.assert_closed();
    // Nothing was created from the body.
    let listed = server.client().get("/resource_providers");
    assert_eq!(listed.body["resource_providers"], serde_json::json!([]));
}

#[test]
fn keep_alive_serves_requests_in_turn_then_refuses_a_bad_length() {
    let server = TestServer::start();
    let mut connection = Connection::open(&server);
    let create = b"POST /resource_providers HTTP/1.1\r\n\
        Host: placement\r\n\
        X-Auth-Token: admin\r\n\
        OpenStack-API-Version: placement 1.20\r\n\
        Content-Type: application/json\r\n\
        Content-Length: 16\r\n\r\n\
        {\"name\": \"rp-1\"}";
    connection.send(create);
    let first = connection.response();
    assert_eq!(first.status, 200);
    assert_eq!(first.header("connection"), None);
    assert_eq!(first.json()["name"], "rp-1");

    connection.send(
        b"GET /resource_providers HTTP/1.1\r\nHost: placement\r\nX-Auth-Token: admin\r\n\r\n",
    );
    let second = connection.response();
    assert_eq!(second.status, 200);
    assert_eq!(second.json()["resource_providers"][0]["name"], "rp-1");

    // A later request on the same connection is checked as well.
    connection.send(BAD_LENGTH_REQUEST);
    assert_bad_length_error(&connection.response());
    connection.assert_closed();
}

#[test]
fn pipelined_requests_are_framed_by_their_lengths() {
    let server = TestServer::start();
    let mut connection = Connection::open(&server);
    // The first request's body looks like a head with a bad length; it is
    // a body, so it must not be taken for one.
    let body = b"GET / HTTP/1.1\r\nContent-Length: x\r\n\r\n";
    let mut requests = format!(
        "PUT /traits/CUSTOM_FRAMING HTTP/1.1\r\nHost: placement\r\nX-Auth-Token: admin\r\n\
         OpenStack-API-Version: placement 1.6\r\nContent-Type: text/plain\r\n\
         Content-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    requests.extend_from_slice(body);
    requests.extend_from_slice(b"GET / HTTP/1.1\r\nHost: placement\r\n\r\n");
    connection.send(&requests);
    let first = connection.response();
    assert_eq!(first.status, 201);
    let second = connection.response();
    assert_eq!(second.status, 200);
    assert_eq!(second.json()["versions"][0]["id"], "v1.0");
}
