//! Projects, users, role assignments and what a project uses.

use crate::{add, Fixture};
use compute_store::{
    ProjectRecord, Role, RoleAssignment, StoreError, UserRecord, DEFAULT_PROJECT_ID,
    OPERATOR_USER_ID,
};

fn project(id: &str, name: &str) -> ProjectRecord {
    ProjectRecord {
        id: id.into(),
        name: name.into(),
        description: None,
        enabled: true,
        created_at: "2024-01-01T00:00:00Z".into(),
    }
}

fn user(id: &str, name: &str) -> UserRecord {
    UserRecord {
        id: id.into(),
        name: name.into(),
        password_hash: Some("$argon2id$v=19$...".into()),
        enabled: true,
        created_at: "2024-01-01T00:00:00Z".into(),
    }
}

fn the_default_project_and_its_operator_exist(f: Fixture) {
    let s = f.store();
    let p = s.project(DEFAULT_PROJECT_ID).expect("default project");
    assert_eq!(p.name, "default");
    let u = s.user(OPERATOR_USER_ID).expect("operator");
    assert_eq!(u.password_hash, None, "it cannot log in");
    assert_eq!(
        s.roles_of(OPERATOR_USER_ID, DEFAULT_PROJECT_ID)
            .expect("roles"),
        vec![Role::Admin]
    );
}

fn users_projects_and_roles_are_kept(f: Fixture) {
    let s = f.store();
    s.add_project(&project("p1", "alpha")).expect("project");
    assert!(matches!(
        s.add_project(&project("p2", "alpha")),
        Err(StoreError::Exists { .. })
    ));
    s.add_user(&user("u1", "alice")).expect("user");
    assert!(matches!(
        s.add_user(&user("u1", "other")),
        Err(StoreError::Exists { .. })
    ));
    assert_eq!(s.user("alice").expect("by name").id, "u1");
    assert_eq!(s.project("alpha").expect("by name").id, "p1");
    assert!(matches!(s.user("bob"), Err(StoreError::NotFound { .. })));
    let grant = |role| RoleAssignment {
        user_id: "u1".into(),
        project_id: "p1".into(),
        role,
    };
    s.add_role(&grant(Role::Member)).expect("member");
    s.add_role(&grant(Role::Member))
        .expect("again: nothing changes");
    s.add_role(&grant(Role::Admin)).expect("admin");
    assert_eq!(
        s.roles_of("u1", "p1").expect("roles"),
        vec![Role::Admin, Role::Member]
    );
    assert!(s
        .roles_of("u1", DEFAULT_PROJECT_ID)
        .expect("none")
        .is_empty());
    assert!(matches!(
        s.add_role(&RoleAssignment {
            user_id: "nobody".into(),
            project_id: "p1".into(),
            role: Role::Member
        }),
        Err(StoreError::NotFound { kind: "user", .. })
    ));
    assert_eq!(
        s.role_assignments().expect("all").len(),
        3,
        "with the operator's"
    );
    s.remove_role(&grant(Role::Admin)).expect("remove");
    assert!(matches!(
        s.remove_role(&grant(Role::Admin)),
        Err(StoreError::NotFound { .. })
    ));
    s.set_user_enabled("u1", false).expect("disable");
    assert!(!s.user("u1").expect("user").enabled);
    s.set_user_password("u1", None).expect("no password");
    assert_eq!(s.user("u1").expect("user").password_hash, None);
    assert!(matches!(
        s.set_user_enabled("nobody", true),
        Err(StoreError::NotFound { .. })
    ));
    let names: Vec<String> = s
        .users()
        .expect("users")
        .into_iter()
        .map(|u| u.name)
        .collect();
    assert_eq!(names, ["alice", "operator"]);
    assert!(
        !format!("{:?}", s.user("alice")).contains("argon2"),
        "no hash in Debug"
    );
}

fn instances_belong_to_a_project_and_count_in_its_usage(f: Fixture) {
    let mut s = f.store_with_host();
    add(s.as_mut(), 1, "web");
    add(s.as_mut(), 2, "db");
    let usage = s.project_usage(DEFAULT_PROJECT_ID).expect("usage");
    assert_eq!((usage.instances, usage.vcpus, usage.ram_mb), (2, 2, 1024));
    assert_eq!(s.project_usage("p9").expect("empty").instances, 0);
    let listed = s.list_instances().expect("list");
    assert!(listed.iter().all(|i| i.project_id == DEFAULT_PROJECT_ID));
}

crate::both!(
    the_default_project_and_its_operator_exist,
    users_projects_and_roles_are_kept,
    instances_belong_to_a_project_and_count_in_its_usage,
);
