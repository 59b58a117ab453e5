//! Projects, users, role assignments and projects' usage on SQLite.

use crate::records::{ProjectRecord, ProjectUsage, Role, RoleAssignment, UserRecord};
use crate::StoreError;
use rusqlite::{params, Connection, OptionalExtension, Row};

fn exists_or(
    res: rusqlite::Result<usize>,
    kind: &'static str,
    key: &str,
) -> Result<(), StoreError> {
    match res {
        Ok(_) => Ok(()),
        Err(rusqlite::Error::SqliteFailure(e, _))
            if e.code == rusqlite::ErrorCode::ConstraintViolation =>
        {
            Err(StoreError::Exists {
                kind,
                key: key.to_owned(),
            })
        }
        Err(e) => Err(e.into()),
    }
}

fn changed(n: usize, kind: &'static str, key: &str) -> Result<(), StoreError> {
    match n {
        0 => Err(StoreError::NotFound {
            kind,
            key: key.to_owned(),
        }),
        _ => Ok(()),
    }
}

const PROJECT_COLUMNS: &str = "id, name, description, enabled, created_at";

fn project_from_row(r: &Row<'_>) -> rusqlite::Result<ProjectRecord> {
    Ok(ProjectRecord {
        id: r.get(0)?,
        name: r.get(1)?,
        description: r.get(2)?,
        enabled: r.get(3)?,
        created_at: r.get(4)?,
    })
}

pub(super) fn add_project(conn: &Connection, p: &ProjectRecord) -> Result<(), StoreError> {
    exists_or(
        conn.execute(
            &format!("INSERT INTO projects ({PROJECT_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5)"),
            params![p.id, p.name, p.description, p.enabled, p.created_at],
        ),
        "project",
        &p.name,
    )
}

pub(super) fn projects(conn: &Connection) -> Result<Vec<ProjectRecord>, StoreError> {
    let mut st = conn.prepare(&format!(
        "SELECT {PROJECT_COLUMNS} FROM projects ORDER BY name"
    ))?;
    let rows = st.query_map([], project_from_row)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

pub(super) fn project(conn: &Connection, key: &str) -> Result<ProjectRecord, StoreError> {
    conn.query_row(
        &format!(
            "SELECT {PROJECT_COLUMNS} FROM projects WHERE id = ?1 OR name = ?1 \
             ORDER BY id = ?1 DESC LIMIT 1"
        ),
        [key],
        project_from_row,
    )
    .optional()?
    .ok_or_else(|| StoreError::NotFound {
        kind: "project",
        key: key.to_owned(),
    })
}

const USER_COLUMNS: &str = "id, name, password_hash, enabled, created_at";

fn user_from_row(r: &Row<'_>) -> rusqlite::Result<UserRecord> {
    Ok(UserRecord {
        id: r.get(0)?,
        name: r.get(1)?,
        password_hash: r.get(2)?,
        enabled: r.get(3)?,
        created_at: r.get(4)?,
    })
}

pub(super) fn add_user(conn: &Connection, u: &UserRecord) -> Result<(), StoreError> {
    exists_or(
        conn.execute(
            &format!("INSERT INTO users ({USER_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5)"),
            params![u.id, u.name, u.password_hash, u.enabled, u.created_at],
        ),
        "user",
        &u.name,
    )
}

pub(super) fn users(conn: &Connection) -> Result<Vec<UserRecord>, StoreError> {
    let mut st = conn.prepare(&format!("SELECT {USER_COLUMNS} FROM users ORDER BY name"))?;
    let rows = st.query_map([], user_from_row)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

pub(super) fn user(conn: &Connection, key: &str) -> Result<UserRecord, StoreError> {
    conn.query_row(
        &format!(
            "SELECT {USER_COLUMNS} FROM users WHERE id = ?1 OR name = ?1 \
             ORDER BY id = ?1 DESC LIMIT 1"
        ),
        [key],
        user_from_row,
    )
    .optional()?
    .ok_or_else(|| StoreError::NotFound {
        kind: "user",
        key: key.to_owned(),
    })
}

pub(super) fn set_user_enabled(
    conn: &Connection,
    id: &str,
    enabled: bool,
) -> Result<(), StoreError> {
    let n = conn.execute(
        "UPDATE users SET enabled = ?2 WHERE id = ?1",
        params![id, enabled],
    )?;
    changed(n, "user", id)
}

pub(super) fn set_user_password(
    conn: &Connection,
    id: &str,
    hash: Option<&str>,
) -> Result<(), StoreError> {
    let n = conn.execute(
        "UPDATE users SET password_hash = ?2 WHERE id = ?1",
        params![id, hash],
    )?;
    changed(n, "user", id)
}

pub(super) fn add_role(conn: &Connection, a: &RoleAssignment) -> Result<(), StoreError> {
    user(conn, &a.user_id)?;
    project(conn, &a.project_id)?;
    conn.execute(
        "INSERT OR IGNORE INTO role_assignments (user_id, project_id, role) VALUES (?1, ?2, ?3)",
        params![a.user_id, a.project_id, a.role.as_str()],
    )?;
    Ok(())
}

pub(super) fn remove_role(conn: &Connection, a: &RoleAssignment) -> Result<(), StoreError> {
    let n = conn.execute(
        "DELETE FROM role_assignments WHERE user_id = ?1 AND project_id = ?2 AND role = ?3",
        params![a.user_id, a.project_id, a.role.as_str()],
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

pub(super) fn role_assignments(conn: &Connection) -> Result<Vec<RoleAssignment>, StoreError> {
    let mut st = conn.prepare(
        "SELECT user_id, project_id, role FROM role_assignments ORDER BY user_id, project_id, role",
    )?;
    let rows: Vec<(String, String, String)> = st
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
        .collect::<Result<_, _>>()?;
    rows.into_iter()
        .map(|(user_id, project_id, name)| {
            Ok(RoleAssignment {
                role: role(name, &user_id)?,
                user_id,
                project_id,
            })
        })
        .collect()
}

pub(super) fn roles_of(
    conn: &Connection,
    user_id: &str,
    project_id: &str,
) -> Result<Vec<Role>, StoreError> {
    let mut st = conn.prepare(
        "SELECT role FROM role_assignments WHERE user_id = ?1 AND project_id = ?2 ORDER BY role",
    )?;
    let names: Vec<String> = st
        .query_map([user_id, project_id], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    names.into_iter().map(|n| role(n, user_id)).collect()
}

pub(super) fn project_usage(
    conn: &Connection,
    project_id: &str,
) -> Result<ProjectUsage, StoreError> {
    let (instances, vcpus, ram_mb): (i64, i64, i64) = conn.query_row(
        "SELECT COUNT(*), COALESCE(SUM(vcpus), 0), COALESCE(SUM(ram_mb), 0) \
         FROM instances WHERE project_id = ?1",
        [project_id],
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
    )?;
    let n = |v: i64| v.max(0) as u64;
    Ok(ProjectUsage {
        instances: n(instances),
        vcpus: n(vcpus),
        ram_mb: n(ram_mb),
    })
}
