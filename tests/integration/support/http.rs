//! A small blocking HTTP client speaking to a test server as a Placement
//! client does: JSON bodies, a token and a microversion on every request.

use serde_json::Value;

/// What came back: status and JSON body (Null when empty or not JSON).
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub body: Value,
    pub headers: Vec<(String, String)>,
}

impl Reply {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }

    /// The first error's `code`.
    pub fn error_code(&self) -> String {
        super::text(&self.body, "/errors/0/code")
    }

    pub fn error_detail(&self) -> String {
        super::text(&self.body, "/errors/0/detail")
    }
}

#[derive(Clone)]
pub struct Client {
    base_url: String,
    agent: ureq::Agent,
    token: String,
    version: String,
}

impl Client {
    pub fn new(base_url: &str) -> Client {
        Client {
            base_url: base_url.to_owned(),
            agent: ureq::AgentBuilder::new().build(),
            token: "admin".to_owned(),
            version: "latest".to_owned(),
        }
    }

    /// The same client at another microversion.
    pub fn at(&self, version: &str) -> Client {
        Client {
            version: version.to_owned(),
            ..self.clone()
        }
    }

    /// The same client with another token.
    pub fn as_user(&self, token: &str) -> Client {
        Client {
            token: token.to_owned(),
            ..self.clone()
        }
    }

    fn request(&self, method: &str, path: &str) -> ureq::Request {
        self.agent
            .request(method, &format!("{}{path}", self.base_url))
            .set("x-auth-token", &self.token)
            .set(
                "openstack-api-version",
                &format!("placement {}", self.version),
            )
            .set("accept", "application/json")
    }

    fn finish(result: Result<ureq::Response, ureq::Error>) -> Reply {
        let response = match result {
            Ok(response) => response,
            Err(ureq::Error::Status(_, response)) => response,
            Err(error) => panic!("transport error: {error}"),
        };
        let status = response.status();
        let headers = response
            .headers_names()
            .into_iter()
            .filter_map(|name| {
                let value = response.header(&name)?.to_owned();
                Some((name, value))
            })
            .collect();
        let text = response.into_string().unwrap_or_default();
        let body = serde_json::from_str(&text).unwrap_or(Value::Null);
        Reply {
            status,
            body,
            headers,
        }
    }

    pub fn get(&self, path: &str) -> Reply {
        Self::finish(self.request("GET", path).call())
    }

    pub fn delete(&self, path: &str) -> Reply {
        Self::finish(self.request("DELETE", path).call())
    }

    pub fn send(&self, method: &str, path: &str, body: &Value) -> Reply {
        Self::finish(
            self.request(method, path)
                .set("content-type", "application/json")
                .send_string(&body.to_string()),
        )
    }

    /// Sends raw bytes as the body, with a content type of the caller's choice.
    pub fn send_raw(&self, method: &str, path: &str, content_type: &str, body: &str) -> Reply {
        Self::finish(
            self.request(method, path)
                .set("content-type", content_type)
                .send_string(body),
        )
    }

    pub fn put(&self, path: &str, body: &Value) -> Reply {
        self.send("PUT", path, body)
    }

    pub fn post(&self, path: &str, body: &Value) -> Reply {
        self.send("POST", path, body)
    }
}
