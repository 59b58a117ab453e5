//! Server actions (`POST /servers/{id}/action`, Nova's `servers.py`,
//! `pause_server.py`, `suspend_server.py`, `console_output.py`): one key per body.
//! Lifecycle actions are queued for the instance's host agent after the
//! lifecycle's check (a wrong state is Nova's 409) and answered 202; the console
//! and a snapshot are work whose output the answer carries, so those wait for it.

use super::servers::{self, driver_error, visible, wait_work};
use crate::microversion::deltas;
use crate::{ApiError, ApiResponse, Call};
use compute_host::driver::control::{self, MetaChange};
use compute_store::{StoreError, Visibility, WorkAction};
use http::StatusCode;
use serde_json::{json, Value};
use std::time::Duration;

/// How long an answer waits for the console (the agent reads a file).
const CONSOLE_PATIENCE: Duration = Duration::from_secs(60);
/// How long `createImage` waits for the snapshot (a disk copy).
const SNAPSHOT_PATIENCE: Duration = Duration::from_secs(600);

fn bad(m: impl Into<String>) -> ApiError {
    ApiError::BadRequest(m.into())
}

/// `POST /servers/{id}/action`.
pub fn act(call: &mut Call<'_>) -> Result<ApiResponse, ApiError> {
    let rec = visible(call, call.segment(1))?;
    let body = call.req.json_value()?;
    let obj = body
        .as_object()
        .filter(|o| o.len() == 1)
        .ok_or_else(|| bad("An action body is an object with exactly one key, the action."))?;
    let (name, args) = obj.iter().next().ok_or_else(|| bad("No action."))?;
    let simple = |action: WorkAction| -> Option<(WorkAction, &'static str)> {
        let verb = match &action {
            WorkAction::Start => "start",
            WorkAction::Stop { .. } => "stop",
            WorkAction::Pause => "pause",
            WorkAction::Unpause => "unpause",
            WorkAction::Suspend => "suspend",
            WorkAction::Resume => "resume",
            _ => "action",
        };
        Some((action, verb))
    };
    let queued = match name.as_str() {
        "os-start" => simple(WorkAction::Start),
        "os-stop" => simple(WorkAction::Stop {
            timeout_secs: call.api.shutdown_timeout.as_secs(),
        }),
        "pause" => simple(WorkAction::Pause),
        "unpause" => simple(WorkAction::Unpause),
        "suspend" => simple(WorkAction::Suspend),
        "resume" => simple(WorkAction::Resume),
        "reboot" => {
            let kind = args.get("type").and_then(Value::as_str).ok_or_else(|| {
                bad("Invalid input for field/attribute reboot. 'type' is a required property")
            })?;
            let hard = match kind {
                "HARD" | "Hard" | "hard" => true,
                "SOFT" | "Soft" | "soft" => false,
                other => {
                    return Err(bad(format!(
                        "Invalid input for field/attribute type. Value: {}. It must be one of SOFT, HARD.",
                        other.chars().take(32).collect::<String>()
                    )))
                }
            };
            Some((WorkAction::Reboot { hard }, "reboot"))
        }
        _ => None,
    };
    if let Some((action, verb)) = queued {
        control::queue_action(call.store, &rec.uuid, &action)
            .map_err(|e| driver_error(e, verb, &rec.uuid))?;
        call.api.wake_agent();
        return Ok(ApiResponse::empty(StatusCode::ACCEPTED));
    }
    match name.as_str() {
        "rebuild" => rebuild(call, &rec.uuid, args),
        "createImage" => create_image(call, &rec.uuid, args),
        "os-getConsoleOutput" => console_output(call, &rec.uuid, args),
        "changePassword" => {
            let pass = args
                .get("adminPass")
                .and_then(Value::as_str)
                .ok_or_else(|| bad("Invalid input for field/attribute changePassword. 'adminPass' is a required property"))?;
            control::set_admin_pass(call.store, &rec.uuid, pass)
                .map_err(|e| driver_error(e, "changePassword", &rec.uuid))?;
            Ok(ApiResponse::empty(StatusCode::ACCEPTED))
        }
        other => Err(bad(format!(
            "There is no such action: {}",
            other.chars().take(64).collect::<String>()
        ))),
    }
}

/// `rebuild`: the image (`imageRef`, the current one if it is the same), with the
/// name and metadata (replaced) when given; 202 with the server.
fn rebuild(call: &mut Call<'_>, uuid: &str, args: &Value) -> Result<ApiResponse, ApiError> {
    let image_ref = args
        .get("imageRef")
        .and_then(Value::as_str)
        .ok_or_else(|| {
            bad("Invalid input for field/attribute rebuild. 'imageRef' is a required property")
        })?;
    let image_ref = image_ref
        .trim_end_matches('/')
        .rsplit('/')
        .next()
        .unwrap_or(image_ref);
    let caller = call.caller()?.clone();
    let image = match call.store.image(image_ref) {
        Ok(i)
            if i.id == image_ref
                && (i.owner == caller.project_id
                    || matches!(i.visibility, Visibility::Public | Visibility::Community)
                    || caller.is_admin()) =>
        {
            i
        }
        Ok(_) | Err(StoreError::NotFound { .. }) => {
            return Err(bad(format!("Image {image_ref} could not be found.")))
        }
        Err(e) => return Err(e.into()),
    };
    let name = args.get("name").and_then(Value::as_str).map(str::to_owned);
    let meta = match args.get("metadata") {
        None | Some(Value::Null) => None,
        Some(m) => Some(servers::metadata(m, "metadata")?),
    };
    if let Some(n) = &name {
        if n.trim().is_empty() || n.chars().count() > 255 {
            return Err(bad(
                "Invalid input for field/attribute name: 1 to 255 characters, not only spaces.",
            ));
        }
    }
    let action = WorkAction::Rebuild {
        image: Some(image.id),
    };
    let (rec, _) = control::queue_action(call.store, uuid, &action)
        .map_err(|e| driver_error(e, "rebuild", uuid))?;
    if let Some(n) = &name {
        control::rename(call.store, &rec.uuid, n).map_err(|e| driver_error(e, "rebuild", uuid))?;
    }
    if let Some(m) = &meta {
        control::set_metadata(call.store, &rec.uuid, m, MetaChange::Replace)
            .map_err(|e| driver_error(e, "rebuild", uuid))?;
    }
    call.api.wake_agent();
    let now = call.store.instance_by_uuid(&rec.uuid)?;
    let location = format!("{}/servers/{}", call.req.urls.compute, rec.uuid);
    Ok(ApiResponse::with(
        StatusCode::ACCEPTED,
        json!({"server": servers::shown(call, &now, true)}),
    )
    .header("location", location))
}

/// `createImage`: a snapshot of the root disk as a new private image of the
/// caller's project; 202 with its id (2.45) or its URL in `Location` (before).
fn create_image(call: &mut Call<'_>, uuid: &str, args: &Value) -> Result<ApiResponse, ApiError> {
    let name = args.get("name").and_then(Value::as_str).ok_or_else(|| {
        bad("Invalid input for field/attribute createImage. 'name' is a required property")
    })?;
    if name.trim().is_empty() || name.chars().count() > 255 {
        return Err(bad(
            "Invalid input for field/attribute name: 1 to 255 characters, not only spaces.",
        ));
    }
    let action = WorkAction::Snapshot {
        image_name: name.to_owned(),
    };
    let (_, id) = control::queue_action(call.store, uuid, &action)
        .map_err(|e| driver_error(e, "createImage", uuid))?;
    call.api.wake_agent();
    let work = wait_work(call, id, SNAPSHOT_PATIENCE)?;
    let image_id = work.output.unwrap_or_default();
    let url = format!("{}/v2/images/{image_id}", call.req.urls.image);
    if call.version().at_least(deltas::SERVER_IMAGE_ID_BODY) {
        Ok(ApiResponse::with(
            StatusCode::ACCEPTED,
            json!({ "image_id": image_id }),
        ))
    } else {
        Ok(ApiResponse::empty(StatusCode::ACCEPTED).header("location", url))
    }
}

/// `os-getConsoleOutput`: the last `length` lines (all with none, null or -1),
/// read by the instance's host.
fn console_output(call: &mut Call<'_>, uuid: &str, args: &Value) -> Result<ApiResponse, ApiError> {
    let length = match args.get("length") {
        None | Some(Value::Null) => None,
        Some(Value::Number(n)) => match n.as_i64() {
            Some(-1) => None,
            Some(n) if n >= 0 => Some(n as u64),
            _ => return Err(bad("Invalid input for field/attribute length.")),
        },
        Some(Value::String(s)) => match s.parse::<i64>() {
            Ok(-1) => None,
            Ok(n) if n >= 0 => Some(n as u64),
            _ => return Err(bad("Invalid input for field/attribute length.")),
        },
        Some(_) => return Err(bad("Invalid input for field/attribute length.")),
    };
    let action = WorkAction::ConsoleLog { length };
    let (_, id) = control::queue_action(call.store, uuid, &action)
        .map_err(|e| driver_error(e, "get_console_output", uuid))?;
    call.api.wake_agent();
    let work = wait_work(call, id, CONSOLE_PATIENCE)?;
    // The agent hands back at most CONSOLE_OUTPUT_LIMIT bytes, the end of the log.
    Ok(ApiResponse::ok(
        json!({ "output": work.output.unwrap_or_default() }),
    ))
}
