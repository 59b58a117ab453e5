//! Scheduled maintenance events (EC2 `meta-data/events/maintenance/scheduled` and
//! `history`): an operator schedules an event for an instance and clears it later;
//! the guest sees it in AWS's shape. Kept one small JSON file per instance under the
//! server's data folder (written atomically, under a lock, by the `metadata-server
//! events` commands), read by the server when a guest asks for one of the two paths.

use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use time::OffsetDateTime;
use uuid::Uuid;

#[derive(Debug, thiserror::Error)]
pub enum EventsError {
    #[error("cannot read {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path} is not an events file")]
    Parse {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("cannot write {path}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Replace(#[from] compute_io::atomic::AtomicError),
    #[error("no randomness for an event id")]
    Random {
        #[source]
        source: std::io::Error,
    },
    #[error("not-after ({not_after}) is before not-before ({not_before})")]
    Window {
        not_before: String,
        not_after: String,
    },
}

/// AWS's event codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum EventCode {
    InstanceReboot,
    SystemReboot,
    SystemMaintenance,
    InstanceRetirement,
    InstanceStop,
}

impl EventCode {
    pub fn as_str(self) -> &'static str {
        match self {
            EventCode::InstanceReboot => "instance-reboot",
            EventCode::SystemReboot => "system-reboot",
            EventCode::SystemMaintenance => "system-maintenance",
            EventCode::InstanceRetirement => "instance-retirement",
            EventCode::InstanceStop => "instance-stop",
        }
    }

    /// The description AWS gives events of this kind.
    pub fn default_description(self) -> &'static str {
        match self {
            EventCode::InstanceReboot | EventCode::SystemReboot => "scheduled reboot",
            EventCode::SystemMaintenance => "scheduled maintenance",
            EventCode::InstanceRetirement => "scheduled retirement",
            EventCode::InstanceStop => "scheduled stop",
        }
    }
}

/// Where an event is: scheduled ones are `active`; cleared ones went to the history.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EventState {
    Active,
    Completed,
    Canceled,
}

impl EventState {
    fn as_str(self) -> &'static str {
        match self {
            EventState::Active => "active",
            EventState::Completed => "completed",
            EventState::Canceled => "canceled",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MaintenanceEvent {
    pub event_id: String,
    pub code: EventCode,
    pub description: String,
    /// Seconds since the epoch.
    pub not_before: i64,
    pub not_after: Option<i64>,
    pub state: EventState,
}

/// One instance's events, as kept on disk.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InstanceEvents {
    #[serde(default)]
    pub scheduled: Vec<MaintenanceEvent>,
    #[serde(default)]
    pub history: Vec<MaintenanceEvent>,
}

/// AWS's time format in events: `21 Jan 2019 09:00:43 GMT`.
fn aws_time(secs: i64) -> String {
    OffsetDateTime::from_unix_timestamp(secs)
        .ok()
        .and_then(|t| {
            t.format(time::macros::format_description!(
                "[day padding:none] [month repr:short] [year] [hour]:[minute]:[second] GMT"
            ))
            .ok()
        })
        .unwrap_or_default()
}

fn json_string(s: &str) -> String {
    serde_json::Value::from(s).to_string()
}

/// A list of events as AWS prints it: `[]` when empty, else objects with keys in
/// AWS's order, 2-space indentation and ` : ` separators.
pub fn aws_json(events: &[MaintenanceEvent]) -> String {
    if events.is_empty() {
        return "[]".to_owned();
    }
    let objects: Vec<String> = events
        .iter()
        .map(|e| {
            let mut fields = vec![
                ("NotBefore", aws_time(e.not_before)),
                ("Code", e.code.as_str().to_owned()),
                ("Description", e.description.clone()),
                ("EventId", e.event_id.clone()),
            ];
            if let Some(after) = e.not_after {
                fields.push(("NotAfter", aws_time(after)));
            }
            fields.push(("State", e.state.as_str().to_owned()));
            let body: Vec<String> = fields
                .iter()
                .map(|(k, v)| format!("  {} : {}", json_string(k), json_string(v)))
                .collect();
            format!("{{\n{}\n}}", body.join(",\n"))
        })
        .collect();
    format!("[ {} ]", objects.join(", "))
}

/// The events of every instance, one file each under a folder.
#[derive(Debug, Clone)]
pub struct EventStore {
    dir: PathBuf,
}

impl EventStore {
    pub fn new(dir: PathBuf) -> Self {
        EventStore { dir }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn path(&self, instance: Uuid) -> PathBuf {
        self.dir.join(format!("{instance}.json"))
    }

    /// The instance's events; none when it has no file.
    pub fn get(&self, instance: Uuid) -> Result<InstanceEvents, EventsError> {
        let path = self.path(instance);
        match std::fs::read(&path) {
            Ok(bytes) => {
                serde_json::from_slice(&bytes).map_err(|source| EventsError::Parse { path, source })
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(InstanceEvents::default()),
            Err(source) => Err(EventsError::Read { path, source }),
        }
    }

    /// Changes an instance's events under the folder's lock, then writes them
    /// atomically; returns what `change` returned.
    pub fn update<T>(
        &self,
        instance: Uuid,
        change: impl FnOnce(&mut InstanceEvents) -> Result<T, EventsError>,
    ) -> Result<T, EventsError> {
        let write_err = |path: &Path| {
            let path = path.to_owned();
            move |source: std::io::Error| EventsError::Write { path, source }
        };
        std::fs::create_dir_all(&self.dir).map_err(write_err(&self.dir))?;
        let lock_path = self.dir.join(".lock");
        let lock = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(write_err(&lock_path))?;
        rustix::fs::flock(&lock, rustix::fs::FlockOperation::LockExclusive)
            .map_err(|e| write_err(&lock_path)(e.into()))?;
        let mut events = self.get(instance)?;
        let out = change(&mut events)?;
        let path = self.path(instance);
        let json = serde_json::to_vec_pretty(&events).map_err(|e| write_err(&path)(e.into()))?;
        compute_io::atomic::replace(&path, &json, 0o600)?;
        Ok(out)
    }

    /// Schedules an event; returns its id.
    pub fn schedule(
        &self,
        instance: Uuid,
        code: EventCode,
        description: Option<String>,
        not_before: OffsetDateTime,
        not_after: Option<OffsetDateTime>,
    ) -> Result<String, EventsError> {
        if let Some(after) = not_after.filter(|a| *a < not_before) {
            return Err(EventsError::Window {
                not_before: not_before.to_string(),
                not_after: after.to_string(),
            });
        }
        let mut raw = [0u8; 9];
        getrandom::getrandom(&mut raw).map_err(|e| EventsError::Random {
            source: std::io::Error::other(e.to_string()),
        })?;
        let event_id = format!("instance-event-{}", &hex::encode(raw)[..17]);
        let event = MaintenanceEvent {
            event_id: event_id.clone(),
            code,
            description: description.unwrap_or_else(|| code.default_description().to_owned()),
            not_before: not_before.unix_timestamp(),
            not_after: not_after.map(|a| a.unix_timestamp()),
            state: EventState::Active,
        };
        self.update(instance, |e| {
            e.scheduled.push(event);
            Ok(())
        })?;
        Ok(event_id)
    }

    /// Moves scheduled events (one by id, or all) to the history as `state`;
    /// returns how many moved.
    pub fn clear(
        &self,
        instance: Uuid,
        event_id: Option<&str>,
        state: EventState,
    ) -> Result<usize, EventsError> {
        self.update(instance, |e| {
            let (moved, kept): (Vec<_>, Vec<_>) = e
                .scheduled
                .drain(..)
                .partition(|ev| event_id.is_none_or(|id| ev.event_id == id));
            e.scheduled = kept;
            let n = moved.len();
            e.history.extend(moved.into_iter().map(|mut ev| {
                ev.state = state;
                ev
            }));
            Ok(n)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: Uuid = Uuid::from_u128(0xa);

    #[test]
    fn schedule_then_clear_moves_the_event_to_history() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = EventStore::new(dir.path().join("events"));
        assert_eq!(store.get(A).expect("none"), InstanceEvents::default());
        assert_eq!(aws_json(&store.get(A).expect("none").scheduled), "[]");
        let at = OffsetDateTime::from_unix_timestamp(1_548_061_243).expect("time");
        let id = store
            .schedule(
                A,
                EventCode::SystemReboot,
                None,
                at,
                Some(at + time::Duration::seconds(1000)),
            )
            .expect("scheduled");
        assert!(id.starts_with("instance-event-") && id.len() == 15 + 17);
        let ev = store.get(A).expect("events");
        assert_eq!(
            aws_json(&ev.scheduled),
            format!(
                "[ {{\n  \"NotBefore\" : \"21 Jan 2019 09:00:43 GMT\",\n  \"Code\" : \"system-reboot\",\n  \"Description\" : \"scheduled reboot\",\n  \"EventId\" : \"{id}\",\n  \"NotAfter\" : \"21 Jan 2019 09:17:23 GMT\",\n  \"State\" : \"active\"\n}} ]"
            )
        );
        let parsed: serde_json::Value =
            serde_json::from_str(&aws_json(&ev.scheduled)).expect("json");
        assert_eq!(parsed[0]["EventId"], id.as_str());
        assert_eq!(
            store
                .clear(A, Some("nope"), EventState::Canceled)
                .expect("ok"),
            0
        );
        assert_eq!(store.clear(A, None, EventState::Canceled).expect("ok"), 1);
        let ev = store.get(A).expect("events");
        assert!(ev.scheduled.is_empty());
        assert_eq!(ev.history[0].state, EventState::Canceled);
        assert!(aws_json(&ev.history).contains("\"State\" : \"canceled\""));
    }

    #[test]
    fn a_window_ending_before_it_starts_and_a_bad_file_are_errors() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = EventStore::new(dir.path().to_owned());
        let at = OffsetDateTime::from_unix_timestamp(1_000_000).expect("time");
        let err = store
            .schedule(
                A,
                EventCode::InstanceStop,
                None,
                at,
                Some(at - time::Duration::seconds(1)),
            )
            .expect_err("window");
        assert!(matches!(err, EventsError::Window { .. }));
        std::fs::write(dir.path().join(format!("{A}.json")), "{").expect("write");
        assert!(matches!(store.get(A), Err(EventsError::Parse { .. })));
    }
}
