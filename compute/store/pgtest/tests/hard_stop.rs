//! A hard stop of the test cluster (its own test binary: the other tests would see
//! the server go away) keeps what was committed, and the server starts again.

#[test]
fn a_hard_stop_keeps_what_was_committed() {
    let cluster = pgtest::cluster();
    let db = cluster.database();
    db.psql("CREATE TABLE kept (x INT); INSERT INTO kept VALUES (42)");
    cluster.kill();
    assert!(db.try_psql("SELECT 1").is_err(), "the server is gone");
    cluster.start();
    assert_eq!(db.psql("SELECT x FROM kept"), "42");
}
