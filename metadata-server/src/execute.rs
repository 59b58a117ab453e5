//! The I/O an answer names ([`Outcome`]): the password store, dynamic vendor data,
//! signing the identity document, maintenance events. Each runs off the async
//! workers when it blocks, and a failure becomes the status a guest should see.

use crate::answer::{password_get_reply, password_post_check, Outcome};
use crate::reply::{Reply, TEXT};
use crate::state::State;
use bytes::Bytes;
use compute::metadata::LiveLeaf;
use http::StatusCode;

pub async fn execute(state: &State, outcome: Outcome) -> Reply {
    match outcome {
        Outcome::Reply(r) => r,
        Outcome::PasswordGet(uuid) => {
            let store = state.passwords.clone();
            match tokio::task::spawn_blocking(move || store.get(uuid)).await {
                Ok(Ok(stored)) => password_get_reply(stored),
                Ok(Err(e)) => store_failed(e),
                Err(e) => store_failed(e),
            }
        }
        Outcome::PasswordPost(uuid, body) => {
            let store = state.passwords.clone();
            let result = tokio::task::spawn_blocking(
                move || -> Result<Reply, crate::password::PasswordError> {
                    if let Some(refusal) = password_post_check(&body, store.get(uuid)?.is_some()) {
                        return Ok(refusal);
                    }
                    Ok(match store.set_if_absent(uuid, &body)? {
                        true => password_get_reply(None),
                        false => Reply::error(StatusCode::CONFLICT),
                    })
                },
            )
            .await;
            match result {
                Ok(Ok(r)) => r,
                Ok(Err(e)) => password_failed(e),
                Err(e) => store_failed(e),
            }
        }
        Outcome::VendorData2 { entry, static_json } => {
            let body = state.vendor.vendor_data2(&entry, &static_json).await;
            Reply::ok(compute::metadata::ContentType::Json.header_value(), body)
        }
        Outcome::Identity {
            instance,
            leaf,
            document,
        } => {
            let Some(signer) = state.signer.clone() else {
                return Reply::not_found();
            };
            let signed = match signer.cached(instance, &document) {
                Some(hit) => Ok(hit),
                None => {
                    let sign = move || signer.sign_and_cache(instance, document);
                    match tokio::task::spawn_blocking(sign).await {
                        Ok(r) => r,
                        Err(e) => return task_failed("signing", e),
                    }
                }
            };
            match signed.map(|s| s.form(leaf)) {
                Ok(Some(body)) => Reply::ok(TEXT, body),
                Ok(None) => Reply::not_found(),
                Err(e) => {
                    tracing::error!(instance = %instance, error = %crate::error_chain(&e), "signing the identity document failed");
                    Reply::error(StatusCode::INTERNAL_SERVER_ERROR)
                }
            }
        }
        Outcome::Events { instance, leaf } => {
            let store = state.events.clone();
            match tokio::task::spawn_blocking(move || store.get(instance)).await {
                Ok(Ok(events)) => {
                    let list = match leaf {
                        LiveLeaf::MaintenanceHistory => &events.history,
                        _ => &events.scheduled,
                    };
                    Reply::ok(TEXT, Bytes::from(crate::events::aws_json(list)))
                }
                Ok(Err(e)) => {
                    tracing::error!(instance = %instance, error = %crate::error_chain(&e), "reading maintenance events failed");
                    Reply::error(StatusCode::INTERNAL_SERVER_ERROR)
                }
                Err(e) => task_failed("reading events", e),
            }
        }
    }
}

fn task_failed(what: &str, e: tokio::task::JoinError) -> Reply {
    tracing::error!(error = %e, "{what} failed");
    Reply::error(StatusCode::INTERNAL_SERVER_ERROR)
}

fn store_failed<E: std::error::Error>(e: E) -> Reply {
    tracing::error!(error = %crate::error_chain(&e), "password store failed");
    Reply::error(StatusCode::INTERNAL_SERVER_ERROR)
}

/// Seconds a guest is told to wait before posting again while the database is away.
const PASSWORD_RETRY_AFTER: u64 = 5;

fn password_failed(e: crate::password::PasswordError) -> Reply {
    use crate::password::PasswordError;
    match e {
        PasswordError::Unavailable { .. } => {
            tracing::warn!(error = %crate::error_chain(&e), "password not stored: the database is away; the guest is told to retry");
            Reply::unavailable(PASSWORD_RETRY_AFTER)
        }
        PasswordError::NotText => Reply::error(StatusCode::BAD_REQUEST),
        PasswordError::NoInstance(_) => Reply::not_found(),
        e => store_failed(e),
    }
}
