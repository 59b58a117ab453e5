//! The control plane's verbs on recorded instances, shared by every front door
//! (the `compute` command over a shared database, the OpenStack API over either
//! store): queue a lifecycle action once the state machine allows it now, and
//! change an instance's metadata or admin password in its stored document (the
//! metadata service follows the document's revision; config drives already built
//! keep what they had, as in Nova). No processes here: work queued is carried out
//! by the instance's host agent through [`super::Host`].

use super::DriverError;
use compute::instance::InstanceDocument;
use compute::lifecycle::Action;
use compute::meta_edit::{edit_metadata, MetaEdit};
use compute::Instance;
use compute_store::{DocumentProblem, FaultChange, InstanceRecord, Store, WorkAction};

/// The lifecycle step a work action is, for the state check before queueing
/// (`None`: no state change, e.g. reading the console).
pub fn lifecycle(action: &WorkAction) -> Option<Action> {
    Some(match action {
        WorkAction::Stop { .. } => Action::Stop,
        WorkAction::Start => Action::Start,
        WorkAction::Reboot { hard } => Action::Reboot { hard: *hard },
        WorkAction::Pause => Action::Pause,
        WorkAction::Unpause => Action::Unpause,
        WorkAction::Suspend => Action::Suspend,
        WorkAction::Resume => Action::Resume,
        WorkAction::Rebuild { .. } => Action::Rebuild,
        WorkAction::Snapshot { .. } => Action::Snapshot,
        WorkAction::Delete => Action::Delete,
        WorkAction::Boot { .. } | WorkAction::ConsoleLog { .. } => return None,
    })
}

/// Queues `action` on the instance `key` for its host's agent after checking that
/// the lifecycle allows it now ([`DriverError::Lifecycle`] otherwise) and
/// recording its task; returns the instance as it was and the work item's id.
pub fn queue_action(
    store: &dyn Store,
    key: &str,
    action: &WorkAction,
) -> Result<(InstanceRecord, u64), DriverError> {
    let rec = store.find_instance(key)?;
    if let WorkAction::Rebuild { image: Some(i) } = action {
        store.image(i)?;
    }
    // The task shows from now on (Nova's task state), so that a client polling for
    // the outcome never sees the state from before; the agent carries on from it.
    // Should the work never run, the host's reconciliation clears a task nobody
    // holds the instance's lock for.
    if let Some(a) = lifecycle(action) {
        let running = rec.state.begin(a)?;
        store.set_state(&rec.uuid, running, FaultChange::Keep, &super::now())?;
    }
    let id = match store.enqueue(&rec.host, &rec.uuid, action) {
        Ok(id) => id,
        Err(e) => {
            if lifecycle(action).is_some() {
                let _ = store.set_state(&rec.uuid, rec.state, FaultChange::Keep, &super::now());
            }
            return Err(e.into());
        }
    };
    tracing::info!(
        uuid = rec.uuid,
        host = rec.host,
        work = id,
        action = action.name(),
        "work queued"
    );
    Ok((rec, id))
}

/// The document with `edit` applied, checked as a whole (every rule an instance
/// document has), for changes other than metadata (those are
/// [`compute::meta_edit`]'s).
fn rewrite(
    document: &str,
    edit: &dyn Fn(&mut InstanceDocument) -> Result<(), DocumentProblem>,
) -> Result<String, DocumentProblem> {
    let mut doc = InstanceDocument::from_json(document.as_bytes())?;
    edit(&mut doc)?;
    let instance = Instance::new(doc)?;
    Ok(serde_json::to_string(instance.document())?)
}

/// How a metadata change treats the keys it does not name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetaChange {
    /// Keep them (`meta-set`, Nova's `POST .../metadata`).
    Merge,
    /// Drop them (Nova's `PUT .../metadata`).
    Replace,
}

/// Sets metadata items of the instance `key` in one locked update of its document.
pub fn set_metadata(
    store: &mut dyn Store,
    key: &str,
    items: &[(String, String)],
    change: MetaChange,
) -> Result<InstanceRecord, DriverError> {
    let edit = match change {
        MetaChange::Merge => MetaEdit::Set(items),
        MetaChange::Replace => MetaEdit::Replace(items),
    };
    Ok(store.update_document(key, &super::now(), &|document| {
        Ok(edit_metadata(document, edit)?)
    })?)
}

/// Deletes metadata keys of the instance `key`; a key it lacks refuses the whole
/// change ([`compute_store::StoreError::DocumentRefused`]).
pub fn delete_metadata(
    store: &mut dyn Store,
    key: &str,
    keys: &[String],
) -> Result<InstanceRecord, DriverError> {
    Ok(store.update_document(key, &super::now(), &|document| {
        Ok(edit_metadata(document, MetaEdit::Delete(keys))?)
    })?)
}

/// Replaces the admin password the instance's document carries (what the
/// metadata service and a later config drive hand the guest); the lifecycle must
/// allow it (an active instance with no task, as Nova's `changePassword`).
pub fn set_admin_pass(
    store: &mut dyn Store,
    key: &str,
    password: &str,
) -> Result<InstanceRecord, DriverError> {
    let rec = store.find_instance(key)?;
    rec.state.check_password_change()?;
    let password = password.to_owned();
    Ok(
        store.update_document(&rec.uuid, &super::now(), &|document| {
            rewrite(document, &|doc| {
                doc.admin_pass = Some(password.clone());
                Ok(())
            })
        })?,
    )
}

/// Renames the instance `key` (its document's and record's name; the guest's
/// hostname stays what it booted with, as in Nova before 2.90).
pub fn rename(store: &mut dyn Store, key: &str, name: &str) -> Result<InstanceRecord, DriverError> {
    let name = name.to_owned();
    Ok(store.update_document(key, &super::now(), &|document| {
        rewrite(document, &|doc| {
            if doc.hostname.is_none() {
                let kept = Instance::new(doc.clone())?;
                doc.hostname = Some(kept.hostname().to_owned());
            }
            doc.name = name.clone();
            Ok(())
        })
    })?)
}
