//! A page of instances as a list API asks for it (Nova's `GET /servers/detail`:
//! a project, a name substring, a set of states, newest first, after a marker, at
//! most so many), answered by the database, so that a page costs its own rows and
//! not the whole table. The WHERE clause is built here once for both backends;
//! every value is a bound parameter.

use compute::lifecycle::{TaskState, VmState};

/// What [`crate::Store::instance_page`] returns.
#[derive(Debug, Clone, Default)]
pub struct InstanceQuery<'a> {
    /// Only this project's (`None`: every project).
    pub project: Option<&'a str>,
    /// Only names containing this (case-sensitive, as Rust's `contains`).
    pub name_contains: Option<&'a str>,
    /// Only these (`vm_state`, `task_state`) pairs (`None`: any; empty: none),
    /// e.g. [`compute::lifecycle::State::with_status`].
    pub states: Option<&'a [(VmState, Option<TaskState>)]>,
    /// Only instances after this one (newest first); it must match the other
    /// filters itself ([`crate::StoreError::NotFound`] of kind `marker` otherwise).
    pub marker: Option<&'a str>,
    /// At most this many.
    pub limit: usize,
}

/// How a backend spells its parameters and a substring test.
#[derive(Clone, Copy)]
pub(crate) enum Dialect {
    Sqlite,
    Postgres,
}

/// A filter as SQL text over the `instances` table and its parameters, in order.
pub(crate) struct Filter {
    pub sql: String,
    pub params: Vec<String>,
}

impl Dialect {
    fn param(self, n: usize) -> String {
        match self {
            Dialect::Sqlite => format!("?{n}"),
            Dialect::Postgres => format!("${n}"),
        }
    }

    fn contains(self, column: &str, p: &str) -> String {
        match self {
            Dialect::Sqlite => format!("instr({column}, {p}) > 0"),
            Dialect::Postgres => format!("strpos({column}, {p}) > 0"),
        }
    }
}

/// The WHERE clause of `q`'s filters (without the marker).
pub(crate) fn filter(q: &InstanceQuery<'_>, d: Dialect) -> Filter {
    let mut parts = vec!["TRUE".to_owned()];
    let mut params = Vec::new();
    let bind = |v: &str, params: &mut Vec<String>| {
        params.push(v.to_owned());
        d.param(params.len())
    };
    if let Some(p) = q.project {
        let x = bind(p, &mut params);
        parts.push(format!("project_id = {x}"));
    }
    if let Some(n) = q.name_contains {
        let x = bind(n, &mut params);
        parts.push(d.contains("name", &x));
    }
    if let Some(states) = q.states {
        let mut any = vec!["FALSE".to_owned()];
        for (vm, task) in states {
            let v = bind(vm.as_str(), &mut params);
            let t = bind(task.map_or("", TaskState::as_str), &mut params);
            any.push(format!(
                "(vm_state = {v} AND COALESCE(task_state, '') = {t})"
            ));
        }
        parts.push(format!("({})", any.join(" OR ")));
    }
    Filter {
        sql: parts.join(" AND "),
        params,
    }
}

/// The page's query: the filter, then (with a marker) only rows older than the
/// marker's, newest first, limited. The marker's uuid is the last parameter.
pub(crate) fn page_sql(columns: &str, q: &InstanceQuery<'_>, d: Dialect) -> Filter {
    let mut f = filter(q, d);
    if let Some(m) = q.marker {
        f.params.push(m.to_owned());
        let x = d.param(f.params.len());
        f.sql = format!(
            "{} AND (created_at, uuid) < (SELECT created_at, uuid FROM instances WHERE uuid = {x})",
            f.sql
        );
    }
    Filter {
        sql: format!(
            "SELECT {columns} FROM instances WHERE {} ORDER BY created_at DESC, uuid DESC LIMIT {}",
            f.sql, q.limit
        ),
        params: f.params,
    }
}

/// Whether the marker passes the filters: `SELECT 1` of it.
pub(crate) fn marker_sql(q: &InstanceQuery<'_>, marker: &str, d: Dialect) -> Filter {
    let mut f = filter(q, d);
    f.params.push(marker.to_owned());
    let x = d.param(f.params.len());
    Filter {
        sql: format!("SELECT 1 FROM instances WHERE {} AND uuid = {x}", f.sql),
        params: f.params,
    }
}
