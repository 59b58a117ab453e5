//! What a handler answers: a status, a JSON body or none, and extra headers. The
//! server adds the rest (content type, microversion echo, request id).

use http::StatusCode;
use serde_json::Value;

#[derive(Debug, Clone, PartialEq)]
pub struct ApiResponse {
    pub status: StatusCode,
    pub body: Option<Value>,
    pub headers: Vec<(&'static str, String)>,
}

impl ApiResponse {
    /// 200 with `body`.
    pub fn ok(body: Value) -> ApiResponse {
        ApiResponse::with(StatusCode::OK, body)
    }

    pub fn with(status: StatusCode, body: Value) -> ApiResponse {
        ApiResponse {
            status,
            body: Some(body),
            headers: Vec::new(),
        }
    }

    /// `status` with no body (202, 204).
    pub fn empty(status: StatusCode) -> ApiResponse {
        ApiResponse {
            status,
            body: None,
            headers: Vec::new(),
        }
    }

    pub fn header(mut self, name: &'static str, value: impl Into<String>) -> ApiResponse {
        self.headers.push((name, value.into()));
        self
    }
}
