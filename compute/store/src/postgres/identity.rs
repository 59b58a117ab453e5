//! Projects, users, role assignments and projects' usage on PostgreSQL.

use super::conn::col;
use crate::records::{ProjectRecord, ProjectUsage, Role, RoleAssignment, UserRecord};
use crate::StoreError;
use postgres::error::SqlState;
use postgres::{Client, Row};

fn exists_or(
    res: Result<u64, postgres::Error>,
    kind: &'static str,
    key: &str,
) -> Result<(), StoreError> {
    match res {
        Ok(_) => Ok(()),
        Err(e) if e.code() == Some(&SqlState::UNIQUE_VIOLATION) => Err(StoreError::Exists {
            kind,
            key: key.to_owned(),
        }),
        Err(e) => Err(e.into()),
    }
}

fn changed(n: u64, kind: &'static str, key: &str) -> Result<(), StoreError> {
    match n {
        0 => Err(StoreError::NotFound {
            kind,
            key: key.to_owned(),
        }),
        _ => Ok(()),
    }
}

const PROJECT_COLUMNS: &str = "id, name, description, enabled, created_at";

fn project_from_row(r: &Row) -> Result<ProjectRecord, StoreError> {
    Ok(ProjectRecord {
        id: col(r, 0)?,
        name: col(r, 1)?,
        description: col(r, 2)?,
        enabled: col(r, 3)?,
        created_at: col(r, 4)?,
    })
}

pub(super) fn add_project(c: &mut Client, p: &ProjectRecord) -> Result<(), StoreError> {
    exists_or(
        c.execute(
            &format!("INSERT INTO projects ({PROJECT_COLUMNS}) VALUES ($1, $2, $3, $4, $5)"),
            &[&p.id, &p.name, &p.description, &p.enabled, &p.created_at],
        ),
        "project",
        &p.name,
    )
}

pub(super) fn projects(c: &mut Client) -> Result<Vec<ProjectRecord>, StoreError> {
    c.query(
        &format!("SELECT {PROJECT_COLUMNS} FROM projects ORDER BY name"),
        &[],
    )?
    .iter()
    .map(project_from_row)
    .collect()
}

pub(super) fn project(c: &mut Client, key: &str) -> Result<ProjectRecord, StoreError> {
    match c.query_opt(
        &format!(
            "SELECT {PROJECT_COLUMNS} FROM projects WHERE id = $1 OR name = $1 \
             ORDER BY id = $1 DESC LIMIT 1"
        ),
        &[&key],
    )? {
        Some(r) => project_from_row(&r),
        None => Err(StoreError::NotFound {
            kind: "project",
            key: key.to_owned(),
        }),
    }
}

const USER_COLUMNS: &str = "id, name, password_hash, enabled, created_at";

fn user_from_row(r: &Row) -> Result<UserRecord, StoreError> {
    Ok(UserRecord {
        id: col(r, 0)?,
        name: col(r, 1)?,
        password_hash: col(r, 2)?,
        enabled: col(r, 3)?,
        created_at: col(r, 4)?,
    })
}

pub(super) fn add_user(c: &mut Client, u: &UserRecord) -> Result<(), StoreError> {
    exists_or(
        c.execute(
            &format!("INSERT INTO users ({USER_COLUMNS}) VALUES ($1, $2, $3, $4, $5)"),
            &[&u.id, &u.name, &u.password_hash, &u.enabled, &u.created_at],
        ),
        "user",
        &u.name,
    )
}

pub(super) fn users(c: &mut Client) -> Result<Vec<UserRecord>, StoreError> {
    c.query(
        &format!("SELECT {USER_COLUMNS} FROM users ORDER BY name"),
        &[],
    )?
    .iter()
    .map(user_from_row)
    .collect()
}

pub(super) fn user(c: &mut Client, key: &str) -> Result<UserRecord, StoreError> {
    match c.query_opt(
        &format!(
            "SELECT {USER_COLUMNS} FROM users WHERE id = $1 OR name = $1 \
             ORDER BY id = $1 DESC LIMIT 1"
        ),
        &[&key],
    )? {
        Some(r) => user_from_row(&r),
        None => Err(StoreError::NotFound {
            kind: "user",
            key: key.to_owned(),
        }),
    }
}

pub(super) fn set_user_enabled(c: &mut Client, id: &str, enabled: bool) -> Result<(), StoreError> {
    let n = c.execute(
        "UPDATE users SET enabled = $2 WHERE id = $1",
        &[&id, &enabled],
    )?;
    changed(n, "user", id)
}

pub(super) fn set_user_password(
    c: &mut Client,
    id: &str,
    hash: Option<&str>,
) -> Result<(), StoreError> {
    let n = c.execute(
        "UPDATE users SET password_hash = $2 WHERE id = $1",
        &[&id, &hash],
    )?;
    changed(n, "user", id)
}

pub(super) fn add_role(c: &mut Client, a: &RoleAssignment) -> Result<(), StoreError> {
    user(c, &a.user_id)?;
    project(c, &a.project_id)?;
    c.execute(
        "INSERT INTO role_assignments (user_id, project_id, role) VALUES ($1, $2, $3) \
         ON CONFLICT DO NOTHING",
        &[&a.user_id, &a.project_id, &a.role.as_str()],
    )?;
    Ok(())
}

pub(super) fn remove_role(c: &mut Client, a: &RoleAssignment) -> Result<(), StoreError> {
    let n = c.execute(
        "DELETE FROM role_assignments WHERE user_id = $1 AND project_id = $2 AND role = $3",
        &[&a.user_id, &a.project_id, &a.role.as_str()],
    )?;
    changed(
        n,
        "role assignment",
        &format!("{} on {} for {}", a.role.as_str(), a.project_id, a.user_id),
    )
}

fn role(name: String, key: &str) -> Result<Role, StoreError> {
    Role::parse(&name).ok_or_else(|| StoreError::Corrupt {
        what: "role",
        key: key.to_owned(),
        problem: name,
    })
}

pub(super) fn role_assignments(c: &mut Client) -> Result<Vec<RoleAssignment>, StoreError> {
    c.query(
        "SELECT user_id, project_id, role FROM role_assignments ORDER BY user_id, project_id, role",
        &[],
    )?
    .iter()
    .map(|r| {
        let user_id: String = col(r, 0)?;
        Ok(RoleAssignment {
            role: role(col(r, 2)?, &user_id)?,
            project_id: col(r, 1)?,
            user_id,
        })
    })
    .collect()
}

pub(super) fn roles_of(
    c: &mut Client,
    user_id: &str,
    project_id: &str,
) -> Result<Vec<Role>, StoreError> {
    c.query(
        "SELECT role FROM role_assignments WHERE user_id = $1 AND project_id = $2 ORDER BY role",
        &[&user_id, &project_id],
    )?
    .iter()
    .map(|r| role(col(r, 0)?, user_id))
    .collect()
}

pub(super) fn project_usage(c: &mut Client, project_id: &str) -> Result<ProjectUsage, StoreError> {
    let r = c.query_one(
        "SELECT COUNT(*), COALESCE(SUM(vcpus), 0)::BIGINT, COALESCE(SUM(ram_mb), 0)::BIGINT \
         FROM instances WHERE project_id = $1",
        &[&project_id],
    )?;
    let n = |i| -> Result<u64, StoreError> { Ok(col::<i64>(&r, i)?.max(0) as u64) };
    Ok(ProjectUsage {
        instances: n(0)?,
        vcpus: n(1)?,
        ram_mb: n(2)?,
    })
}
