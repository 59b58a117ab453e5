//! What host agents need of a shared database: a lease on the host's name (an
//! advisory lock that goes with its session), heartbeats on it, a wake-up when work
//! is queued, and image files that every host can fetch.

use crate::{Fixture, HOST};
use compute_store::{
    Image, ImagePart, PgHostLease, PgWorkWatch, StoreError, WorkAction, WorkNotice,
};
use std::time::{Duration, Instant};

fn one_agent_per_host_name_and_the_lease_goes_with_its_session(f: Fixture) {
    let url = f.db.as_ref().expect("postgres").url();
    drop(f.store_with_host());
    let mut first = PgHostLease::acquire(&url, HOST).expect("first");
    first.heartbeat().expect("heartbeat");
    let err = PgHostLease::acquire(&url, HOST)
        .err()
        .expect("the name is taken");
    assert!(matches!(err, StoreError::HostAgentRunning { .. }), "{err}");
    let text = err.to_string();
    assert!(
        text.starts_with("another host agent named h1 is running: it holds the advisory lock `compute-host-agent:h1` on the database postgresql://"),
        "{text}"
    );
    assert!(text.contains("`compute host-agent h1`"), "{text}");
    assert!(text.contains("held by session "), "{text}");
    // Another name is another lease.
    drop(PgHostLease::acquire(&url, "h2").expect("h2"));

    // The session dies (the server ends it): the lock goes with it, and the
    // holder's next heartbeat takes it again on a new session.
    f.db.as_ref().expect("postgres").psql(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
         WHERE application_name = 'compute host-agent h1'",
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match first.heartbeat() {
            Ok(()) => break,
            Err(e) => {
                assert!(Instant::now() < deadline, "never back: {e}");
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    }
    assert!(PgHostLease::acquire(&url, HOST).is_err(), "held again");
    drop(first);
    // Closing the session releases it at once.
    let deadline = Instant::now() + Duration::from_secs(10);
    while PgHostLease::acquire(&url, HOST).is_err() {
        assert!(Instant::now() < deadline, "never released");
        std::thread::sleep(Duration::from_millis(50));
    }
    // A heartbeat for a host that was never registered says so.
    let mut ghost = PgHostLease::acquire(&url, "ghost").expect("ghost");
    assert!(matches!(
        ghost.heartbeat(),
        Err(StoreError::NotFound { kind: "host", .. })
    ));
}

fn queued_work_wakes_the_watcher(f: Fixture) {
    let url = f.db.as_ref().expect("postgres").url();
    let s = f.store_with_host();
    let mut watch = PgWorkWatch::connect(&url).expect("watch");
    let for_h1 = |n: &WorkNotice| n.host == HOST && n.state == "queued";
    assert!(!watch
        .wait(Duration::from_millis(100), &for_h1)
        .expect("nothing yet"));
    s.enqueue("h9", "u", &WorkAction::Start)
        .expect("other host");
    assert!(!watch
        .wait(Duration::from_millis(300), &for_h1)
        .expect("not ours"));
    let id = s.enqueue(HOST, "u", &WorkAction::Start).expect("ours");
    let start = Instant::now();
    assert!(watch.wait(Duration::from_secs(10), &for_h1).expect("woken"));
    assert!(start.elapsed() < Duration::from_secs(5));
    s.take_work(HOST).expect("take").expect("taken");
    s.finish_work(id, &compute_store::WorkOutcome::Done)
        .expect("done");
    let this = |n: &WorkNotice| n.id == id && n.state == "done";
    assert!(watch.wait(Duration::from_secs(10), &this).expect("done"));
}

fn image(id: &str, kernel: bool) -> Image {
    Image {
        id: id.into(),
        name: "img".into(),
        format: "raw".into(),
        size: 0,
        virtual_size: 3 << 20,
        checksum: String::new(),
        has_kernel: kernel,
        has_ramdisk: false,
        cmdline: None,
        created_at: "2024-01-01T00:00:00Z".into(),
        owner: compute_store::DEFAULT_PROJECT_ID.into(),
        visibility: compute_store::Visibility::Public,
    }
}

fn sha256(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(bytes))
}

fn image_files_travel_through_postgres_whole_or_not_at_all(f: Fixture) {
    let mut s = f.store();
    assert!(s.keeps_image_files());
    // Bigger than one chunk, not a multiple of it.
    let disk: Vec<u8> = (0..(2 << 20) + 12345).map(|i| (i % 251) as u8).collect();
    let kernel = b"a kernel".to_vec();
    let recorded = s
        .add_image_with_files(
            &image("i1", true),
            &mut [
                (ImagePart::Disk, &mut disk.as_slice()),
                (ImagePart::Kernel, &mut kernel.as_slice()),
            ],
        )
        .expect("add");
    assert_eq!(
        (recorded.size, recorded.checksum.as_str()),
        (disk.len() as u64, sha256(&disk).as_str())
    );
    assert_eq!(s.image("i1").expect("image"), recorded);
    assert_eq!(
        f.sql("SELECT COUNT(*) FROM image_chunks WHERE part = 'disk'"),
        "3"
    );
    let mut back = Vec::new();
    let file = s
        .read_image_file("i1", ImagePart::Disk, &mut back)
        .expect("read");
    assert!(back == disk, "the same bytes");
    assert_eq!((file.size, file.sha256), (disk.len() as u64, sha256(&disk)));
    let mut back = Vec::new();
    s.read_image_file("i1", ImagePart::Kernel, &mut back)
        .expect("kernel");
    assert_eq!(back, kernel);
    assert!(matches!(
        s.read_image_file("i1", ImagePart::Ramdisk, &mut Vec::new()),
        Err(StoreError::NotFound {
            kind: "image file",
            ..
        })
    ));

    // A reader failing halfway records nothing at all.
    struct Broken(usize);
    impl std::io::Read for Broken {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            if self.0 == 0 {
                return Err(std::io::Error::other("disk unplugged"));
            }
            let n = buf.len().min(self.0);
            self.0 -= n;
            Ok(n)
        }
    }
    let err = s
        .add_image_with_files(
            &image("i2", false),
            &mut [(ImagePart::Disk, &mut Broken(3 << 20))],
        )
        .expect_err("broken");
    assert!(matches!(err, StoreError::ImageIo { .. }), "{err}");
    assert!(matches!(s.image("i2"), Err(StoreError::NotFound { .. })));
    assert_eq!(
        f.sql("SELECT COUNT(*) FROM image_chunks WHERE image_id = 'i2'"),
        "0"
    );

    s.delete_image("i1").expect("delete");
    assert_eq!(f.sql("SELECT COUNT(*) FROM image_chunks"), "0");
    assert_eq!(f.sql("SELECT COUNT(*) FROM image_files"), "0");
}

fn a_state_folder_keeps_image_files_beside_it(f: Fixture) {
    let mut s = f.store();
    assert!(!s.keeps_image_files());
    let err = s
        .add_image_with_files(
            &image("i1", false),
            &mut [(ImagePart::Disk, &mut &b"x"[..])],
        )
        .expect_err("not here");
    assert!(matches!(err, StoreError::NoImageFiles { .. }), "{err}");
    assert!(s.images().expect("images").is_empty());
}

crate::postgres_only!(
    one_agent_per_host_name_and_the_lease_goes_with_its_session,
    queued_work_wakes_the_watcher,
    image_files_travel_through_postgres_whole_or_not_at_all,
);

mod sqlite_only {
    #[test]
    fn a_state_folder_keeps_image_files_beside_it() {
        super::a_state_folder_keeps_image_files_beside_it(crate::Fixture::new(
            crate::Backend::Sqlite,
        ))
    }
}
