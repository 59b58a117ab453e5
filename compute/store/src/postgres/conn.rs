//! One connection to the server, remade after it is lost, and how its failures
//! read: a URL is only ever shown without its password; a failure of the connection
//! itself (closed, the server shutting down) is [`StoreError::Unavailable`].

use crate::StoreError;
use postgres::config::Host;
use postgres::{Client, Config, NoTls, Row};
use std::time::Duration;

/// How long a connection attempt may take when the URL does not say.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// A column's value, or a corrupt-row error instead of the driver's panic.
pub fn col<'a, T: postgres::types::FromSql<'a>>(
    row: &'a Row,
    index: usize,
) -> Result<T, StoreError> {
    row.try_get(index).map_err(StoreError::from)
}

/// `url` as messages show it: user, hosts and database, never a password.
pub fn describe_url(url: &str) -> String {
    match url.parse::<Config>() {
        Ok(c) => describe(&c),
        Err(_) => redact(url),
    }
}

fn describe(c: &Config) -> String {
    let ports = c.get_ports();
    let mut tcp = Vec::new();
    let mut sockets = Vec::new();
    for (i, h) in c.get_hosts().iter().enumerate() {
        let port = ports.get(i).or(ports.first()).copied().unwrap_or(5432);
        match h {
            Host::Tcp(name) => tcp.push(format!("{name}:{port}")),
            Host::Unix(path) => sockets.push(path.display().to_string()),
        }
    }
    let mut out = format!(
        "postgresql://{}@{}/{}",
        c.get_user().unwrap_or(""),
        tcp.join(","),
        c.get_dbname().unwrap_or("")
    );
    if !sockets.is_empty() {
        out.push_str("?host=");
        out.push_str(&sockets.join(","));
    }
    out
}

/// The environment variable a password comes from when the URL has none (libpq's
/// name): a process started with it does not show it in its command line.
pub const PASSWORD_ENV: &str = "PGPASSWORD";

/// `url` without its password, and the password: to start a process with the URL
/// on its command line (which any local user can read) and the password in its
/// environment ([`PASSWORD_ENV`]). A URL whose password this cannot take out safely
/// (the rest would not parse back the same) comes back whole.
pub fn split_password(url: &str) -> (String, Option<Vec<u8>>) {
    let Ok(config) = url.parse::<Config>() else {
        return (url.to_owned(), None);
    };
    let Some(password) = config.get_password().map(<[u8]>::to_vec) else {
        return (url.to_owned(), None);
    };
    let stripped = without_password(url);
    match stripped.parse::<Config>() {
        Ok(c) if c.get_password().is_none() && describe(&c) == describe(&config) => {
            (stripped, Some(password))
        }
        _ => (url.to_owned(), None),
    }
}

/// [`redact`], taking the password out instead of blanking it.
fn without_password(url: &str) -> String {
    let mut out = url.to_owned();
    if let Some(scheme_end) = out.find("://") {
        let rest = &out[scheme_end + 3..];
        let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
        if let Some(at) = rest[..authority_end].rfind('@') {
            if let Some(colon) = rest[..at].find(':') {
                out.replace_range(scheme_end + 3 + colon..scheme_end + 3 + at, "");
            }
        }
    }
    if let Some(p) = out.find("password=") {
        let end = out[p..]
            .find(|ch: char| ch == '&' || ch.is_whitespace())
            .map_or(out.len(), |e| p + e + 1);
        out.replace_range(p..end, "");
        let trimmed = out.trim_end_matches(['&', '?', ' ']).len();
        out.truncate(trimmed);
    }
    out
}

/// A string that did not parse: its user-info password and any `password=` blanked.
fn redact(url: &str) -> String {
    let mut out = url.to_owned();
    if let Some(scheme_end) = out.find("://") {
        let rest = &out[scheme_end + 3..];
        if let Some(at) = rest.find('@') {
            if let Some(colon) = rest[..at].find(':') {
                let start = scheme_end + 3 + colon + 1;
                out.replace_range(start..scheme_end + 3 + at, "***");
            }
        }
    }
    if let Some(p) = out.find("password=") {
        let start = p + "password=".len();
        let end = out[start..]
            .find(|ch: char| ch == '&' || ch.is_whitespace())
            .map_or(out.len(), |e| start + e);
        out.replace_range(start..end, "***");
    }
    out
}

/// Whether an error means the connection, not the request, failed.
fn is_connection_error(e: &postgres::Error) -> bool {
    e.is_closed()
        || e.code().is_some_and(|c| {
            let code = c.code();
            code.starts_with("08") || code.starts_with("57")
        })
        || std::error::Error::source(e).is_some_and(|s| s.is::<std::io::Error>())
}

pub struct Conn {
    config: Config,
    location: String,
    client: Option<Client>,
    /// Channels to LISTEN on, on this connection and every one made after.
    listen: Vec<&'static str>,
}

impl Conn {
    /// Parses `url` and connects; a bad URL or a server that cannot be reached is
    /// [`StoreError::Open`] naming it.
    pub fn connect(url: &str) -> Result<Conn, StoreError> {
        Conn::connect_as(url, "compute")
    }

    /// [`Conn::connect`] under an application name that `pg_stat_activity` shows
    /// (unless the URL gives one).
    pub fn connect_as(url: &str, application: &str) -> Result<Conn, StoreError> {
        let mut config: Config = url.parse().map_err(|e: postgres::Error| StoreError::Open {
            location: redact(url),
            source: Box::new(e),
        })?;
        if config.get_password().is_none() {
            if let Some(p) = std::env::var_os(PASSWORD_ENV) {
                config.password(std::os::unix::ffi::OsStrExt::as_bytes(p.as_os_str()));
            }
        }
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(CONNECT_TIMEOUT);
        }
        if config.get_application_name().is_none() {
            config.application_name(application);
        }
        let location = describe(&config);
        let client = config.connect(NoTls).map_err(|e| StoreError::Open {
            location: location.clone(),
            source: Box::new(e),
        })?;
        Ok(Conn {
            config,
            location,
            client: Some(client),
            listen: Vec::new(),
        })
    }

    pub fn location(&self) -> &str {
        &self.location
    }

    /// LISTENs on `channel` from now on (again after every reconnection).
    pub fn listen(&mut self, channel: &'static str) -> Result<(), StoreError> {
        if self.listen.contains(&channel) {
            return Ok(());
        }
        self.listen.push(channel);
        if let Some(client) = self.client.as_mut() {
            let res = client.batch_execute(&format!("LISTEN {channel}"));
            if let Err(e) = res {
                return Err(self.failed(e.into()));
            }
        }
        Ok(())
    }

    fn client(&mut self) -> Result<&mut Client, StoreError> {
        if self.client.as_ref().is_some_and(Client::is_closed) {
            self.client = None;
        }
        let client = match self.client.take() {
            Some(c) => c,
            None => {
                let unavailable = |e: postgres::Error| StoreError::Unavailable {
                    location: self.location.clone(),
                    source: Box::new(e),
                };
                let mut c = self.config.connect(NoTls).map_err(unavailable)?;
                for channel in &self.listen {
                    c.batch_execute(&format!("LISTEN {channel}"))
                        .map_err(unavailable)?;
                }
                tracing::info!(location = self.location, "connected to the database");
                c
            }
        };
        Ok(self.client.insert(client))
    }

    /// Turns a failure into [`StoreError::Unavailable`] when the connection is gone
    /// (and forgets it, so that the next request reconnects).
    fn failed(&mut self, err: StoreError) -> StoreError {
        let lost = self.client.as_ref().is_none_or(Client::is_closed);
        match err {
            StoreError::Backend(source) => {
                let connection = lost
                    || source
                        .downcast_ref::<postgres::Error>()
                        .is_some_and(is_connection_error);
                if connection {
                    self.client = None;
                    tracing::warn!(location = self.location, "lost the database connection");
                    StoreError::Unavailable {
                        location: self.location.clone(),
                        source,
                    }
                } else {
                    StoreError::Backend(source)
                }
            }
            other => {
                if lost {
                    self.client = None;
                }
                other
            }
        }
    }

    /// Runs `f` on the connection, connecting first when there is none.
    pub fn run<T>(
        &mut self,
        f: impl FnOnce(&mut Client) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let client = self.client()?;
        f(client).map_err(|e| self.failed(e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_shown_without_their_password() {
        assert_eq!(
            describe_url("postgresql://nova:s3cret@db.example:5433/compute"),
            "postgresql://nova@db.example:5433/compute"
        );
        assert_eq!(
            describe_url("postgresql://nova@%2Frun%2Fpg/compute"),
            "postgresql://nova@/compute?host=/run/pg"
        );
        assert_eq!(
            describe_url("host=/run/pg user=nova password=s3cret dbname=c"),
            "postgresql://nova@/c?host=/run/pg"
        );
        let bad = describe_url("postgresql://nova:s3cret@db:notaport/compute");
        assert!(!bad.contains("s3cret"), "{bad}");
        assert!(!redact("x password=s3cret&y=1").contains("s3cret"));
    }

    #[test]
    fn a_password_is_taken_out_of_a_url_and_handed_back() {
        let split = |u: &str| {
            let (url, pw) = split_password(u);
            (url, pw.map(|p| String::from_utf8(p).expect("utf-8")))
        };
        let pw = Some("s3cr@t:".to_owned());
        assert_eq!(
            split("postgresql://nova:s3cr%40t%3A@db.example:5433/compute"),
            (
                "postgresql://nova@db.example:5433/compute".into(),
                pw.clone()
            )
        );
        assert_eq!(
            split("postgresql://nova@db.example/compute?password=s3cr%40t%3A&connect_timeout=5"),
            (
                "postgresql://nova@db.example/compute?connect_timeout=5".into(),
                pw.clone()
            )
        );
        assert_eq!(
            split("postgresql://nova@db.example/compute?connect_timeout=5&password=s3cr%40t%3A"),
            (
                "postgresql://nova@db.example/compute?connect_timeout=5".into(),
                pw
            )
        );
        assert_eq!(
            split("host=/run/pg user=nova password=s3cret dbname=c"),
            (
                "host=/run/pg user=nova dbname=c".into(),
                Some("s3cret".into())
            )
        );
        for whole in [
            "postgresql://nova@%2Frun%2Fpg/compute",
            "postgresql://nova:s3cret@db:notaport/compute",
        ] {
            assert_eq!(split(whole), (whole.to_owned(), None));
        }
    }
}
