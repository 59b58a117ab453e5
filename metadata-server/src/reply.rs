//! What the service answers, before it becomes an HTTP response: status, content type
//! and bytes, plus the few extra headers some answers carry. Error bodies are shaped
//! like webob's plain-text errors, as Nova sends them.

use bytes::Bytes;
use compute::metadata::Body;
use http::StatusCode;

pub const TEXT: &str = "text/plain; charset=UTF-8";
/// webob's default, which Nova's password GET answers with.
pub const HTML: &str = "text/html; charset=UTF-8";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub status: StatusCode,
    pub content_type: &'static str,
    pub body: Body,
    /// `Allow` on 405.
    pub allow: Option<&'static str>,
    /// `Retry-After` seconds on 429.
    pub retry_after: Option<u32>,
    /// Send with the IP TTL set to the token hop limit (the token reply).
    pub hop_limited: bool,
    /// `X-aws-ec2-metadata-token-ttl-seconds` on the token reply.
    pub token_ttl: Option<u32>,
}

impl Reply {
    pub fn ok(content_type: &'static str, body: Bytes) -> Self {
        Reply::new(StatusCode::OK, content_type, Body::Static(body))
    }

    pub fn file(file: &compute::metadata::File) -> Self {
        Reply::new(
            StatusCode::OK,
            file.content_type.header_value(),
            file.body.clone(),
        )
    }

    fn new(status: StatusCode, content_type: &'static str, body: Body) -> Self {
        Reply {
            status,
            content_type,
            body,
            allow: None,
            retry_after: None,
            hop_limited: false,
            token_ttl: None,
        }
    }

    /// An error with webob's plain body: `404 Not Found\n\nThe resource could not be found.\n\n   `.
    pub fn error(status: StatusCode) -> Self {
        let body = format!(
            "{} {}\n\n{}\n\n   ",
            status.as_u16(),
            status.canonical_reason().unwrap_or(""),
            explanation(status)
        );
        Reply::new(status, TEXT, Body::Static(Bytes::from(body)))
    }

    pub fn not_found() -> Self {
        Reply::error(StatusCode::NOT_FOUND)
    }

    pub fn method_not_allowed(allow: &'static str) -> Self {
        Reply {
            allow: Some(allow),
            ..Reply::error(StatusCode::METHOD_NOT_ALLOWED)
        }
    }

    pub fn too_many_requests(retry_after: u64) -> Self {
        Reply {
            retry_after: Some(u32::try_from(retry_after).unwrap_or(u32::MAX)),
            ..Reply::error(StatusCode::TOO_MANY_REQUESTS)
        }
    }

    /// 503 with `Retry-After`: a dependency (the database) is away for now.
    pub fn unavailable(retry_after: u64) -> Self {
        Reply {
            retry_after: Some(u32::try_from(retry_after).unwrap_or(u32::MAX)),
            ..Reply::error(StatusCode::SERVICE_UNAVAILABLE)
        }
    }
}

/// webob's explanation line for each status we answer.
fn explanation(status: StatusCode) -> &'static str {
    match status.as_u16() {
        400 => "The server could not comply with the request since it is either malformed or otherwise incorrect.",
        401 => "This server could not verify that you are authorized to access the document you requested. Either you supplied the wrong credentials (e.g., bad password), or your browser does not understand how to supply the credentials required.",
        403 => "Access was denied to this resource.",
        404 => "The resource could not be found.",
        405 => "The method is not allowed for this resource.",
        409 => "There was a conflict when trying to complete your request.",
        413 => "The request is larger than the server is willing or able to process.",
        429 => "The client has sent too many requests in a given amount of time.",
        503 => "The server is currently unavailable. Please try again at a later time.",
        _ => "The server has either erred or is incapable of performing the requested operation.",
    }
}
