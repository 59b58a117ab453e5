//! What a request can fail with, and the one place its body is written: Nova's
//! fault (`{"itemNotFound": {"code": 404, "message": "..."}}`) on the Compute API,
//! Keystone's (`{"error": {"code", "title", "message"}}`) on Identity and Image
//! (openstacksdk reads a `message` under any top-level key).
//!
//! Messages are for the client and never carry a cause from inside (a database
//! error is logged with its chain and answered as a plain 500 or 503).

use crate::Service;
use compute_store::StoreError;
use http::StatusCode;
use serde_json::json;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    BadRequest(String),
    #[error("The request you have made requires authentication.")]
    Unauthorized,
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    #[error("The method {method} is not allowed on {path}.")]
    BadMethod { method: String, path: String },
    #[error("{0}")]
    NotAcceptable(String),
    #[error("{0}")]
    Conflict(String),
    #[error("The request body is bigger than the limit of {limit} bytes.")]
    TooLarge { limit: usize },
    #[error("The request body did not arrive within {secs} s.")]
    Timeout { secs: u64 },
    #[error("Content type {0} is not supported: send application/json.")]
    MediaType(String),
    #[error("{0}")]
    NotImplemented(String),
    #[error("The server is busy: try again.")]
    Unavailable,
    /// Something broke inside: logged with its cause, answered without it.
    #[error("The server has either erred or is incapable of performing the requested operation.")]
    Internal(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl ApiError {
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::Unauthorized => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::BadMethod { .. } => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::NotAcceptable(_) => StatusCode::NOT_ACCEPTABLE,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::Timeout { .. } => StatusCode::REQUEST_TIMEOUT,
            ApiError::MediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::NotImplemented(_) => StatusCode::NOT_IMPLEMENTED,
            ApiError::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// A policy refusal, in Nova's words.
    pub fn policy(rule: &str) -> ApiError {
        ApiError::Forbidden(format!("Policy doesn't allow {rule} to be performed."))
    }

    /// A store failure as the client sees it: what it asked for was not there (404)
    /// or is taken (409), the database is away (503), else a 500 logged here.
    pub fn from_store(err: StoreError) -> ApiError {
        match err {
            StoreError::NotFound { kind, key } => {
                ApiError::NotFound(format!("{} {key} could not be found.", capitalised(kind)))
            }
            StoreError::Exists { kind, key } => {
                ApiError::Conflict(format!("{} {key} already exists.", capitalised(kind)))
            }
            StoreError::Ambiguous { kind, key, .. } => {
                ApiError::Conflict(format!("More than one {kind} is named {key}: use its id."))
            }
            StoreError::Unavailable { .. } => {
                tracing::warn!(error = %::compute::error_chain(&err), "database unavailable");
                ApiError::Unavailable
            }
            // A handler's own refusal from inside a locked change of an image
            // record: the handler's error, as it was.
            StoreError::ImageRecordRefused { problem, id } => {
                match problem.downcast::<ApiError>() {
                    Ok(api) => *api,
                    Err(problem) => {
                        ApiError::Internal(Box::new(StoreError::ImageRecordRefused { id, problem }))
                    }
                }
            }
            other => ApiError::Internal(Box::new(other)),
        }
    }

    /// The fault's name in Nova's body (`wsgi.Fault._fault_names`).
    fn nova_name(status: StatusCode) -> &'static str {
        match status.as_u16() {
            400 => "badRequest",
            401 => "unauthorized",
            403 => "forbidden",
            404 => "itemNotFound",
            405 => "badMethod",
            409 => "conflictingRequest",
            413 | 429 => "overLimit",
            415 => "badMediaType",
            501 => "notImplemented",
            503 => "serviceUnavailable",
            _ => "computeFault",
        }
    }

    /// The body `service` answers this error with.
    pub fn body(&self, service: Service) -> serde_json::Value {
        let status = self.status();
        let message = self.to_string();
        match service {
            Service::Compute => {
                json!({ Self::nova_name(status): {"code": status.as_u16(), "message": message} })
            }
            Service::Identity | Service::Image => json!({"error": {
                "code": status.as_u16(),
                "title": status.canonical_reason().unwrap_or("Error"),
                "message": message,
            }}),
        }
    }
}

fn capitalised(kind: &str) -> String {
    let mut c = kind.chars();
    match c.next() {
        Some(f) => f.to_uppercase().chain(c).collect(),
        None => String::new(),
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> ApiError {
        ApiError::from_store(e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_are_novas_and_keystones() {
        let e = ApiError::NotFound("Flavor 9 could not be found.".into());
        assert_eq!(
            e.body(Service::Compute),
            json!({"itemNotFound": {"code": 404, "message": "Flavor 9 could not be found."}})
        );
        assert_eq!(
            ApiError::NotAcceptable("x".into()).body(Service::Compute),
            json!({"computeFault": {"code": 406, "message": "x"}}),
            "406 is not in Nova's map"
        );
        assert_eq!(
            ApiError::Unauthorized.body(Service::Identity),
            json!({"error": {"code": 401, "title": "Unauthorized",
                "message": "The request you have made requires authentication."}})
        );
        let e = ApiError::from_store(StoreError::Backend("secret detail".into()));
        assert_eq!(e.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert!(!e.body(Service::Compute).to_string().contains("secret"));
    }
}
