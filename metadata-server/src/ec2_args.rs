//! The command line of the AWS side of the EC2 API, kept apart from the rest of the
//! `serve` flags: which EC2 tree, instance tags, `services/domain`, the key and
//! certificate that sign identity documents, the server's data folder; and the
//! operator commands `identity-cert` and `events`.

use crate::events::{aws_json, EventCode, EventState, EventStore};
use crate::instance_identity::{IdentityKeys, IdentitySigner};
use compute::metadata::{Ec2Api, Settings, DEFAULT_SERVICES_DOMAIN};
use std::path::{Path, PathBuf};
use time::OffsetDateTime;
use uuid::Uuid;

/// Where the server keeps its own state when `--data-dir` is not given and there is
/// no `--state-dir`.
pub const DEFAULT_DATA_DIR: &str = "/var/lib/metadata-server";

/// The data folder: `--data-dir`, else the `metadata` folder of compute's state
/// folder, else [`DEFAULT_DATA_DIR`].
pub fn data_dir(data_dir: Option<&Path>, state_dir: Option<&Path>) -> PathBuf {
    match (data_dir, state_dir) {
        (Some(d), _) => d.to_owned(),
        (None, Some(s)) => s.join("metadata"),
        (None, None) => PathBuf::from(DEFAULT_DATA_DIR),
    }
}

/// Where identity keys and events live in the data folder.
pub fn identity_dir(data: &Path) -> PathBuf {
    data.join("identity")
}

pub fn events_dir(data: &Path) -> PathBuf {
    data.join("events")
}

/// `--ec2-versions`: the command-line spelling of the core's [`Ec2Api`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Ec2ApiArg {
    /// AWS's versions and categories on top of Nova's (Nova's answers unchanged).
    Aws,
    /// Nova's versions and answers only, byte for byte.
    Nova,
}

impl From<Ec2ApiArg> for Ec2Api {
    fn from(a: Ec2ApiArg) -> Ec2Api {
        match a {
            Ec2ApiArg::Aws => Ec2Api::Aws,
            Ec2ApiArg::Nova => Ec2Api::Nova,
        }
    }
}

#[derive(Debug, Clone, clap::Args)]
pub struct Ec2Args {
    /// The EC2 tree: AWS's versions and categories on top of Nova's answers (aws), or
    /// Nova's versions and answers only, byte for byte (nova).
    #[arg(long, value_enum, value_name = "API", default_value_t = Ec2ApiArg::Aws)]
    pub ec2_versions: Ec2ApiArg,
    /// Serve every instance's metadata (`meta`) as EC2 tags/instance/ (an instance
    /// document's `metadata_tags` enables it for that instance alone).
    #[arg(long)]
    pub ec2_tags: bool,
    /// The EC2 services/domain answer.
    #[arg(long, value_name = "DOMAIN", default_value = DEFAULT_SERVICES_DOMAIN)]
    pub ec2_services_domain: String,
    /// Private key (PEM, PKCS#8 or PKCS#1, RSA of 2048 bits or more) that signs instance
    /// identity documents; without it the server makes one in its data folder.
    #[arg(long, value_name = "FILE", requires = "identity_cert")]
    pub identity_key: Option<PathBuf>,
    /// Certificate (PEM) of --identity-key, for verifiers.
    #[arg(long, value_name = "FILE", requires = "identity_key")]
    pub identity_cert: Option<PathBuf>,
    /// The server's own state: the identity key it made and maintenance events
    /// (default: STATE/metadata with --state-dir, else /var/lib/metadata-server).
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
}

impl Ec2Args {
    /// Puts these flags into the rendering settings.
    pub fn apply(&self, settings: &mut Settings) {
        settings.ec2_tags = self.ec2_tags;
        settings.ec2_services_domain = self.ec2_services_domain.clone();
        if self.ec2_versions == Ec2ApiArg::Nova {
            settings.use_nova_ec2();
        }
    }

    /// The signer of identity documents: the operator's key, else the one kept in
    /// the data folder (made now when absent). `None` for Nova's tree, which has no
    /// identity document.
    pub fn signer(
        &self,
        data: &Path,
        capacity: usize,
    ) -> Result<Option<IdentitySigner>, crate::instance_identity::IdentityError> {
        if self.ec2_versions == Ec2ApiArg::Nova {
            return Ok(None);
        }
        let keys = match (&self.identity_key, &self.identity_cert) {
            (Some(key), Some(cert)) => IdentityKeys::from_files(key, cert)?,
            _ => IdentityKeys::load_or_create(&identity_dir(data))?,
        };
        Ok(Some(IdentitySigner::new(keys, capacity)))
    }
}

/// `--data-dir` and `--state-dir` of the operator commands.
#[derive(Debug, Clone, clap::Args)]
pub struct DataArgs {
    /// The server's data folder (`serve --data-dir`).
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Compute's state folder, whose server keeps its data in STATE/metadata.
    #[arg(long, value_name = "DIR", conflicts_with = "data_dir")]
    pub state_dir: Option<PathBuf>,
}

impl DataArgs {
    pub fn dir(&self) -> PathBuf {
        data_dir(self.data_dir.as_deref(), self.state_dir.as_deref())
    }
}

/// `metadata-server identity-cert`: the certificate the server made, PEM.
pub fn identity_cert(args: &DataArgs) -> Result<String, crate::instance_identity::IdentityError> {
    IdentityKeys::stored_certificate(&identity_dir(&args.dir()))
}

#[derive(Debug, clap::Subcommand)]
pub enum EventsAction {
    /// Schedule a maintenance event: the guest sees it in
    /// meta-data/events/maintenance/scheduled; prints its id.
    Schedule(ScheduleArgs),
    /// Move scheduled events (all, or --event) to the history, as canceled (or
    /// --completed); exit 3 when there was none.
    Clear(ClearArgs),
    /// Print an instance's scheduled events and history as the guest sees them.
    List(ListArgs),
}

#[derive(Debug, clap::Args)]
pub struct ScheduleArgs {
    /// The instance the event is for.
    #[arg(long, value_name = "UUID")]
    pub instance: Uuid,
    /// What will happen.
    #[arg(long, value_enum, default_value_t = EventCode::SystemReboot)]
    pub code: EventCode,
    /// Earliest start, RFC 3339 (2026-03-01T09:00:00Z).
    #[arg(long, value_name = "TIME", value_parser = parse_time)]
    pub not_before: OffsetDateTime,
    /// Latest end, RFC 3339.
    #[arg(long, value_name = "TIME", value_parser = parse_time)]
    pub not_after: Option<OffsetDateTime>,
    /// What the guest is told (default: AWS's words for the code, like "scheduled reboot").
    #[arg(long, value_name = "TEXT")]
    pub description: Option<String>,
    #[command(flatten)]
    pub data: DataArgs,
}

#[derive(Debug, clap::Args)]
pub struct ClearArgs {
    /// The instance whose events to clear.
    #[arg(long, value_name = "UUID")]
    pub instance: Uuid,
    /// Only this event (an id `schedule` printed).
    #[arg(long, value_name = "ID")]
    pub event: Option<String>,
    /// Record the events as completed rather than canceled.
    #[arg(long)]
    pub completed: bool,
    #[command(flatten)]
    pub data: DataArgs,
}

#[derive(Debug, clap::Args)]
pub struct ListArgs {
    /// The instance whose events to print.
    #[arg(long, value_name = "UUID")]
    pub instance: Uuid,
    #[command(flatten)]
    pub data: DataArgs,
}

/// A time on the command line that is not RFC 3339.
#[derive(Debug, thiserror::Error)]
#[error("not an RFC 3339 time like 2026-03-01T09:00:00Z")]
pub struct BadTime(#[source] time::error::Parse);

fn parse_time(s: &str) -> Result<OffsetDateTime, BadTime> {
    OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339).map_err(BadTime)
}

/// Runs an `events` command: what to print, and the exit code.
pub fn run_events(action: EventsAction) -> Result<(String, i32), crate::events::EventsError> {
    let store = |d: &DataArgs| EventStore::new(events_dir(&d.dir()));
    match action {
        EventsAction::Schedule(a) => {
            let id = store(&a.data).schedule(
                a.instance,
                a.code,
                a.description,
                a.not_before,
                a.not_after,
            )?;
            Ok((format!("{id}\n"), 0))
        }
        EventsAction::Clear(a) => {
            let state = match a.completed {
                true => EventState::Completed,
                false => EventState::Canceled,
            };
            let n = store(&a.data).clear(a.instance, a.event.as_deref(), state)?;
            match n {
                0 => Ok((String::new(), 3)),
                n => Ok((format!("{n} event(s) moved to the history\n"), 0)),
            }
        }
        EventsAction::List(a) => {
            let events = store(&a.data).get(a.instance)?;
            Ok((
                format!(
                    "scheduled: {}\nhistory: {}\n",
                    aws_json(&events.scheduled),
                    aws_json(&events.history)
                ),
                0,
            ))
        }
    }
}
