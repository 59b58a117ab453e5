//! What the service answers, before it becomes an HTTP response: status, content type
//! and bytes, plus the few extra headers some answers carry. Error bodies are shaped
//! like webob's plain-text errors, as Nova sends them.

use crate::etag::Etag;
use bytes::Bytes;
use compute::metadata::Body;
use http::StatusCode;

pub const TEXT: &str = "text/plain; charset=UTF-8";
/// webob's default, which Nova's password GET answers with.
pub const HTML: &str = "text/html; charset=UTF-8";

/// What `Allow` says on a 405.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Allow {
    GetHead,
    /// The token path, as AWS's `Allow` says.
    OptionsPut,
}

impl Allow {
    pub fn header_value(self) -> &'static str {
        match self {
            Allow::GetHead => "GET, HEAD",
            Allow::OptionsPut => "OPTIONS, PUT",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub status: StatusCode,
    pub content_type: &'static str,
    pub body: Body,
    /// `Allow` on 405.
    pub allow: Option<Allow>,
    /// `Retry-After` seconds on 429.
    pub retry_after: Option<u32>,
    /// Send with the IP TTL set to the token hop limit (the token reply).
    pub hop_limited: bool,
    /// `X-aws-ec2-metadata-token-ttl-seconds` on the token reply.
    pub token_ttl: Option<u32>,
    /// `ETag`: for answers read from the tree, its leaf's (kept with the tree);
    /// others get one from their bytes ([`Reply::tagged`]).
    pub etag: Option<Etag>,
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
            etag: None,
        }
    }

    pub fn with_etag(self, etag: Option<Etag>) -> Self {
        Reply { etag, ..self }
    }

    /// This answer with its tag: every successful read has one.
    pub fn tagged(mut self, method: &http::Method) -> Self {
        let read = method == http::Method::GET || method == http::Method::HEAD;
        if read && self.status == StatusCode::OK && self.etag.is_none() {
            self.etag = Some(Etag::of_body(&self.body));
        }
        self
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

    pub fn method_not_allowed(allow: Allow) -> Self {
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
