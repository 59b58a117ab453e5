//! The arguments `compute` starts `metadata-server` with: [`ServeArgs`] for the
//! managed server and [`RelayArgs`] for one instance's relay. `metadata-server`'s own
//! command line flattens these structs and compute-host builds argv with their
//! `to_args`, so the two sides cannot spell a flag differently.
//!
//! Each value is its own argv element: compute recognises its processes by one
//! (the instance's uuid for a relay, the listeners file for the server).

use crate::settings::SettingsArgs;
use std::ffi::OsString;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::path::PathBuf;
use uuid::Uuid;

/// Where passwords are kept unless `--password-dir` says otherwise.
pub const DEFAULT_PASSWORD_DIR: &str = "/var/lib/metadata-server/passwords";

/// Where guests reach the metadata service inside a relay's namespace.
pub const DEFAULT_METADATA_LISTEN: SocketAddr =
    SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::new(169, 254, 169, 254), 80));

// No `///` on these structs: a flattened struct's doc comment would become the
// about line of the verb that flattens it.

// The flags of `metadata-server serve` that compute sets; the server has more.
#[derive(Debug, Clone, PartialEq, Eq, clap::Args)]
pub struct ServeArgs {
    /// Address to serve on (repeatable); 127.0.0.1:8775 when nothing else is given to
    /// listen on (no --listen, --instance-listener or --instance-listeners-file).
    #[arg(long, value_name = "ADDR")]
    pub listen: Vec<SocketAddr>,
    /// A file of `ADDR=UUID` lines: bound listeners opened and closed as it changes.
    #[arg(long, value_name = "FILE")]
    pub instance_listeners_file: Option<PathBuf>,
    /// Serve the instances of compute's state folder (its database, read-only).
    #[arg(long, value_name = "DIR")]
    pub state_dir: Option<PathBuf>,
    /// Serve the instances of a PostgreSQL database that many hosts share
    /// (`postgresql://user@host/db`), following its change feed; guests' passwords
    /// are kept there too (not in --password-dir).
    #[arg(long, value_name = "URL", conflicts_with = "state_dir")]
    pub database: Option<String>,
    /// With --database or --state-dir: serve only the instances placed on this host
    /// (default: every instance).
    #[arg(long, value_name = "NAME")]
    pub host: Option<String>,
    /// The server's own state: the identity key it made and maintenance events
    /// (default: STATE/metadata with --state-dir, else /var/lib/metadata-server).
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Write the server's pid here once it listens (for a supervisor such as compute).
    #[arg(long, value_name = "FILE")]
    pub pid_file: Option<PathBuf>,
    /// Folder of the durable password store (shared with `password get|clear`).
    #[arg(long, value_name = "DIR", default_value = DEFAULT_PASSWORD_DIR)]
    pub password_dir: PathBuf,
    #[command(flatten)]
    pub settings: SettingsArgs,
}

impl ServeArgs {
    /// The verb these arguments follow.
    pub const VERB: &str = "serve";

    /// The argv after the program: the verb, then flags that parse back into `self`.
    pub fn to_args(&self) -> Vec<OsString> {
        let mut args: Vec<OsString> = vec![Self::VERB.into()];
        for addr in &self.listen {
            args.extend(["--listen".into(), addr.to_string().into()]);
        }
        push_path(
            &mut args,
            "--instance-listeners-file",
            &self.instance_listeners_file,
        );
        push_path(&mut args, "--state-dir", &self.state_dir);
        if let Some(url) = &self.database {
            args.extend(["--database".into(), url.into()]);
        }
        if let Some(host) = &self.host {
            args.extend(["--host".into(), host.into()]);
        }
        push_path(&mut args, "--data-dir", &self.data_dir);
        push_path(&mut args, "--pid-file", &self.pid_file);
        args.extend(["--password-dir".into(), self.password_dir.clone().into()]);
        args.extend(self.settings.to_args());
        args
    }
}

// The arguments of `metadata-server relay`, all of them (compute alone runs it).
#[derive(Debug, Clone, PartialEq, Eq, clap::Args)]
pub struct RelayArgs {
    /// The instance this relay serves (also lets compute recognise the process).
    #[arg(long, value_name = "UUID")]
    pub instance: Uuid,
    /// The instance's network namespace (`/run/netns/NAME`).
    #[arg(long, value_name = "PATH")]
    pub netns: PathBuf,
    /// Host-namespace address forwarded to QEMU's SSH `hostfwd` (bound before
    /// entering; port 0 lets the kernel choose, see --ssh-port-file).
    #[arg(long, value_name = "ADDR", requires = "ssh_target")]
    pub ssh_listen: Option<SocketAddr>,
    /// Where to write the port --ssh-listen bound (before the pid file), for a caller
    /// that asked for port 0.
    #[arg(long, value_name = "FILE", requires = "ssh_listen")]
    pub ssh_port_file: Option<PathBuf>,
    /// QEMU's SSH `hostfwd` address inside the namespace.
    #[arg(long, value_name = "ADDR")]
    pub ssh_target: Option<SocketAddr>,
    /// Where guests reach the metadata service inside the namespace.
    #[arg(long, value_name = "ADDR", default_value_t = DEFAULT_METADATA_LISTEN)]
    pub metadata_listen: SocketAddr,
    /// The metadata server's unix socket bound to this instance.
    #[arg(long, value_name = "PATH")]
    pub metadata_socket: PathBuf,
    /// Written once both listeners are up.
    #[arg(long, value_name = "FILE")]
    pub pid_file: PathBuf,
}

impl RelayArgs {
    /// The verb these arguments follow.
    pub const VERB: &str = "relay";

    /// The argv after the program: the verb, then flags that parse back into `self`.
    /// The uuid is an element of its own (compute finds the relay by it).
    pub fn to_args(&self) -> Vec<OsString> {
        let mut args: Vec<OsString> = vec![
            Self::VERB.into(),
            "--instance".into(),
            self.instance.hyphenated().to_string().into(),
            "--netns".into(),
            self.netns.clone().into(),
        ];
        for (flag, addr) in [
            ("--ssh-listen", self.ssh_listen),
            ("--ssh-target", self.ssh_target),
            ("--metadata-listen", Some(self.metadata_listen)),
        ] {
            if let Some(addr) = addr {
                args.extend([flag.into(), addr.to_string().into()]);
            }
        }
        args.extend([
            "--metadata-socket".into(),
            self.metadata_socket.clone().into(),
            "--pid-file".into(),
            self.pid_file.clone().into(),
        ]);
        push_path(&mut args, "--ssh-port-file", &self.ssh_port_file);
        args
    }
}

fn push_path(args: &mut Vec<OsString>, flag: &str, path: &Option<PathBuf>) {
    if let Some(p) = path {
        args.extend([flag.into(), p.clone().into()]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::{Parser, Subcommand};

    /// The two verbs as `metadata-server` declares them (flattened, as it does).
    #[derive(Parser)]
    struct Cli {
        #[command(subcommand)]
        verb: Verb,
    }

    #[derive(Subcommand)]
    enum Verb {
        Serve {
            #[command(flatten)]
            args: ServeArgs,
        },
        Relay {
            #[command(flatten)]
            args: RelayArgs,
        },
    }

    fn parse(args: Vec<OsString>) -> Verb {
        let mut argv: Vec<OsString> = vec!["metadata-server".into()];
        argv.extend(args);
        Cli::try_parse_from(argv).expect("parses").verb
    }

    fn serve(args: &ServeArgs) -> ServeArgs {
        match parse(args.to_args()) {
            Verb::Serve { args } => args,
            Verb::Relay { .. } => panic!("serve args parsed as relay"),
        }
    }

    fn relay(args: &RelayArgs) -> RelayArgs {
        match parse(args.to_args()) {
            Verb::Relay { args } => args,
            Verb::Serve { .. } => panic!("relay args parsed as serve"),
        }
    }

    #[test]
    fn serve_args_parse_back_into_the_same_struct() {
        let full = ServeArgs {
            listen: vec![
                "169.254.169.254:80".parse().expect("addr"),
                "[::1]:8775".parse().expect("addr"),
                "[fd00:ec2::254]:80".parse().expect("addr"),
                // bridge mode's link-local address, scoped by the bridge's ifindex
                "[fe80::a9fe:a9fe%7]:80".parse().expect("addr"),
            ],
            instance_listeners_file: Some("/state/metadata/listeners".into()),
            state_dir: Some("/state dir".into()),
            database: None,
            host: None,
            data_dir: None,
            pid_file: Some("/state/metadata/server.pid".into()),
            password_dir: "/state/metadata/passwords".into(),
            settings: SettingsArgs {
                dhcp_domain: String::new(),
                vendor_data: Some("/state/metadata/vendor_data.json".into()),
                disable_version: vec!["2009-04-04".into()],
                skip_versions: None,
                serve_files: true,
            },
        };
        assert_eq!(serve(&full), full);
        let shared = ServeArgs {
            state_dir: None,
            database: Some("postgresql://nova@%2Frun%2Fpostgresql/compute".into()),
            host: Some("compute-a".into()),
            data_dir: Some("/state/metadata".into()),
            ..full.clone()
        };
        assert_eq!(serve(&shared), shared);
        let scoped: OsString = "[fe80::a9fe:a9fe%7]:80".into();
        assert!(
            full.to_args().contains(&scoped),
            "the numeric scope is kept"
        );
        let bare = ServeArgs {
            listen: Vec::new(),
            instance_listeners_file: None,
            state_dir: None,
            database: None,
            host: None,
            data_dir: None,
            pid_file: None,
            password_dir: DEFAULT_PASSWORD_DIR.into(),
            settings: SettingsArgs {
                dhcp_domain: "novalocal".into(),
                ..SettingsArgs::default()
            },
        };
        assert_eq!(serve(&bare), bare);
    }

    #[test]
    fn relay_args_parse_back_into_the_same_struct() {
        let mut args = RelayArgs {
            instance: Uuid::from_u128(0xd8e0_2d56_2648_49a3_bf97_6be8_f120_4f38),
            netns: "/run/netns/cmpt-d8e02d56-2648-49a3-bf97-6be8f1204f38".into(),
            ssh_listen: Some("127.0.0.1:2222".parse().expect("addr")),
            ssh_target: Some("127.0.0.1:2222".parse().expect("addr")),
            ssh_port_file: Some("/state/instances/d8e02d56/relay.ssh-port".into()),
            metadata_listen: DEFAULT_METADATA_LISTEN,
            metadata_socket: "/state/metadata/d8e02d56.sock".into(),
            pid_file: "/state/instances/d8e02d56/relay.pid".into(),
        };
        assert_eq!(relay(&args), args);
        args.ssh_listen = None;
        args.ssh_target = None;
        args.ssh_port_file = None;
        assert_eq!(relay(&args), args);
        let uuid: OsString = "d8e02d56-2648-49a3-bf97-6be8f1204f38".into();
        assert!(args.to_args().contains(&uuid), "the uuid is an element");
    }
}
