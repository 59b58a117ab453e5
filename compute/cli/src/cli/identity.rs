//! Identity verbs, the users, projects and roles of the OpenStack API (`compute
//! api`): `user-create`, `user-list`, `user-set`, `project-create`, `project-list`,
//! `role-add`, `role-remove`, `role-list`. Passwords are read from a file or
//! standard input (never from the command line, where `ps` shows them) and kept as
//! argon2 hashes. All of it lives in the store, so it works on a state folder and
//! on a shared database alike.

use super::host::HostArgs;
use super::Format;
use anyhow::{bail, Context};
use compute_api::auth::password;
use compute_host::driver::now;
use compute_store::{ProjectRecord, Role, RoleAssignment, UserRecord};
use serde_json::json;
use std::io::Read;
use std::path::PathBuf;
use std::process::ExitCode;

// Where a password comes from. No `///`: it would become the about line of the
// verbs that flatten it.
#[derive(Debug, clap::Args)]
#[group(multiple = false)]
pub struct PasswordArgs {
    /// Read the password from this file (its first line; keep it mode 0600).
    #[arg(long, value_name = "FILE")]
    pub password_file: Option<PathBuf>,
    /// Read the password from standard input (its first line).
    #[arg(long)]
    pub password_stdin: bool,
}

impl PasswordArgs {
    /// The password, if one was given.
    fn read(&self) -> anyhow::Result<Option<String>> {
        let limit = password::MAX_PASSWORD_BYTES as u64 + 2;
        let text = match (&self.password_file, self.password_stdin) {
            (Some(p), _) => {
                let mut s = String::new();
                std::fs::File::open(p)
                    .and_then(|f| f.take(limit).read_to_string(&mut s))
                    .with_context(|| format!("cannot read the password file {}", p.display()))?;
                s
            }
            (None, true) => {
                let mut s = String::new();
                std::io::stdin()
                    .take(limit)
                    .read_to_string(&mut s)
                    .context("cannot read the password from standard input")?;
                s
            }
            (None, false) => return Ok(None),
        };
        let first = text.lines().next().unwrap_or("").to_owned();
        if first.is_empty() {
            bail!("the password is empty");
        }
        if first.len() > password::MAX_PASSWORD_BYTES {
            bail!(
                "the password is longer than {} bytes",
                password::MAX_PASSWORD_BYTES
            );
        }
        Ok(Some(first))
    }
}

/// Checks a user or project name: 1 to 255 characters, no control characters.
fn check_name(what: &str, name: &str) -> anyhow::Result<()> {
    if name.is_empty() || name.chars().count() > 255 || name.chars().any(char::is_control) {
        bail!(
            "{what} name {name:?} is invalid: use 1 to 255 characters without control characters"
        );
    }
    Ok(())
}

fn new_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

#[derive(Debug, clap::Args)]
pub struct UserCreateArgs {
    /// Name of the new user (unique).
    pub name: String,
    #[command(flatten)]
    pub password: PasswordArgs,
    /// Create it disabled (it cannot log in until `user-set --enable`).
    #[arg(long)]
    pub disabled: bool,
}

#[derive(Debug, clap::Args)]
pub struct UserSetArgs {
    /// Name or id of the user.
    pub user: String,
    /// Let the user log in again.
    #[arg(long, conflicts_with = "disable")]
    pub enable: bool,
    /// Stop the user: it cannot log in, and its tokens stop working at once.
    #[arg(long)]
    pub disable: bool,
    #[command(flatten)]
    pub password: PasswordArgs,
}

#[derive(Debug, clap::Args)]
pub struct ListArgs {
    /// Output format: text for people, json for scripts.
    #[arg(long, value_enum, default_value_t)]
    pub format: Format,
}

#[derive(Debug, clap::Args)]
pub struct ProjectCreateArgs {
    /// Name of the new project (unique).
    pub name: String,
    /// What the project is for.
    #[arg(long)]
    pub description: Option<String>,
}

/// The roles a user may hold on a project.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum RoleArg {
    /// Sees and manages every project's resources, and the flavors.
    Admin,
    /// Uses its project's resources.
    Member,
}

impl From<RoleArg> for Role {
    fn from(r: RoleArg) -> Role {
        match r {
            RoleArg::Admin => Role::Admin,
            RoleArg::Member => Role::Member,
        }
    }
}

#[derive(Debug, clap::Args)]
pub struct RoleArgs {
    /// Name or id of the user.
    #[arg(long)]
    pub user: String,
    /// Name or id of the project.
    #[arg(long)]
    pub project: String,
    /// The role.
    #[arg(value_enum)]
    pub role: RoleArg,
}

pub fn run_user_create(host: &HostArgs, a: UserCreateArgs) -> anyhow::Result<ExitCode> {
    check_name("user", &a.name)?;
    let Some(pw) = a.password.read()? else {
        bail!("give the password with --password-file FILE or --password-stdin");
    };
    let hash = password::hash(&pw)?;
    let records = host.store_only()?;
    let user = UserRecord {
        id: new_id(),
        name: a.name,
        password_hash: Some(hash),
        enabled: !a.disabled,
        created_at: now(),
    };
    records.add_user(&user)?;
    println!("{}", user.id);
    Ok(ExitCode::SUCCESS)
}

pub fn run_user_set(host: &HostArgs, a: UserSetArgs) -> anyhow::Result<ExitCode> {
    let store = host.store_only()?;
    let user = store.user(&a.user)?;
    let pw = a.password.read()?;
    if !a.enable && !a.disable && pw.is_none() {
        bail!("nothing to change: give --enable, --disable or a new password");
    }
    if let Some(pw) = pw {
        store.set_user_password(&user.id, Some(&password::hash(&pw)?))?;
    }
    if a.enable || a.disable {
        store.set_user_enabled(&user.id, a.enable)?;
    }
    Ok(ExitCode::SUCCESS)
}

pub fn run_user_list(host: &HostArgs, a: ListArgs) -> anyhow::Result<ExitCode> {
    let users = host.store_only()?.users()?;
    match a.format {
        Format::Json => println!(
            "{}",
            serde_json::to_string_pretty(
                &users
                    .iter()
                    .map(|u| json!({"id": u.id, "name": u.name, "enabled": u.enabled,
                        "password": u.password_hash.is_some(), "created_at": u.created_at}))
                    .collect::<Vec<_>>()
            )?
        ),
        Format::Text => super::table::print(
            &["ID", "Name", "Enabled", "Password"],
            users.iter().map(|u| {
                vec![
                    u.id.clone(),
                    u.name.clone(),
                    u.enabled.to_string(),
                    if u.password_hash.is_some() {
                        "set"
                    } else {
                        "none"
                    }
                    .into(),
                ]
            }),
        ),
    }
    Ok(ExitCode::SUCCESS)
}

pub fn run_project_create(host: &HostArgs, a: ProjectCreateArgs) -> anyhow::Result<ExitCode> {
    check_name("project", &a.name)?;
    let project = ProjectRecord {
        id: new_id(),
        name: a.name,
        description: a.description,
        enabled: true,
        created_at: now(),
    };
    host.store_only()?.add_project(&project)?;
    println!("{}", project.id);
    Ok(ExitCode::SUCCESS)
}

pub fn run_project_list(host: &HostArgs, a: ListArgs) -> anyhow::Result<ExitCode> {
    let projects = host.store_only()?.projects()?;
    match a.format {
        Format::Json => println!(
            "{}",
            serde_json::to_string_pretty(
                &projects
                    .iter()
                    .map(
                        |p| json!({"id": p.id, "name": p.name, "description": p.description,
                        "enabled": p.enabled})
                    )
                    .collect::<Vec<_>>()
            )?
        ),
        Format::Text => super::table::print(
            &["ID", "Name", "Description"],
            projects.iter().map(|p| {
                vec![
                    p.id.clone(),
                    p.name.clone(),
                    p.description.clone().unwrap_or_default(),
                ]
            }),
        ),
    }
    Ok(ExitCode::SUCCESS)
}

fn assignment(
    host: &HostArgs,
    a: &RoleArgs,
) -> anyhow::Result<(Box<dyn compute_store::Store>, RoleAssignment)> {
    let store = host.store_only()?;
    let user = store.user(&a.user)?;
    let project = store.project(&a.project)?;
    Ok((
        store,
        RoleAssignment {
            user_id: user.id,
            project_id: project.id,
            role: a.role.into(),
        },
    ))
}

pub fn run_role_add(host: &HostArgs, a: RoleArgs) -> anyhow::Result<ExitCode> {
    let (store, grant) = assignment(host, &a)?;
    store.add_role(&grant)?;
    Ok(ExitCode::SUCCESS)
}

pub fn run_role_remove(host: &HostArgs, a: RoleArgs) -> anyhow::Result<ExitCode> {
    let (store, grant) = assignment(host, &a)?;
    store.remove_role(&grant)?;
    Ok(ExitCode::SUCCESS)
}

pub fn run_role_list(host: &HostArgs, a: ListArgs) -> anyhow::Result<ExitCode> {
    let store = host.store_only()?;
    let users = store.users()?;
    let projects = store.projects()?;
    let name_of = |id: &str, names: &[(String, String)]| {
        names
            .iter()
            .find(|(i, _)| i == id)
            .map(|(_, n)| n.clone())
            .unwrap_or_else(|| id.to_owned())
    };
    let users: Vec<(String, String)> = users.into_iter().map(|u| (u.id, u.name)).collect();
    let projects: Vec<(String, String)> = projects.into_iter().map(|p| (p.id, p.name)).collect();
    let rows: Vec<Vec<String>> = store
        .role_assignments()?
        .iter()
        .map(|r| {
            vec![
                name_of(&r.user_id, &users),
                name_of(&r.project_id, &projects),
                r.role.as_str().to_owned(),
            ]
        })
        .collect();
    match a.format {
        Format::Json => println!(
            "{}",
            serde_json::to_string_pretty(
                &rows
                    .iter()
                    .map(|r| json!({"user": r[0], "project": r[1], "role": r[2]}))
                    .collect::<Vec<_>>()
            )?
        ),
        Format::Text => super::table::print(&["User", "Project", "Role"], rows),
    }
    Ok(ExitCode::SUCCESS)
}
