//! Test support: real ZooKeeper ensembles, Kafka brokers booted through `kafka-bootstrap`, and moto,
//! each owned by a value that kills its processes when dropped. Ports, ZooKeeper roots and run
//! folders are unique per fixture, so fixtures never collide.
//!
//! Processes are started directly (the JVM's own PID, no wrapper shell), in their own process group,
//! with `PR_SET_PDEATHSIG` so they die with the test process even when it is killed.

pub mod browser;
pub mod clients;
pub mod fleet_manager;
pub mod healthcheck;
pub mod kafka;
pub mod kcat;
pub mod moto;
pub mod postgres;
pub mod process;
pub mod tls;
pub mod wait;
pub mod proxy;
pub mod wire;
pub mod zookeeper;

use std::collections::HashSet;
use std::net::TcpListener;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

pub use kafka::{LocalBroker, LocalCluster};
pub use moto::Moto;
pub use postgres::Postgres;
pub use wait::wait_until;
pub use zookeeper::ZkEnsemble;

/// The repository's root.
pub fn repo_root() -> PathBuf {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    root.canonicalize().unwrap_or(root)
}

/// Kafka's and ZooKeeper's jars, fetched by `make jars`.
pub fn kafka_libs() -> PathBuf {
    std::env::var_os("KAFKA_LIBS").map(PathBuf::from).unwrap_or_else(|| repo_root().join("dev/.cache/lib"))
}

/// Kafka 4.4's jars (KRaft only), fetched by `make jars` beside the 3.9 ones.
pub fn kafka4_libs() -> PathBuf {
    std::env::var_os("KAFKA4_LIBS").map(PathBuf::from).unwrap_or_else(|| repo_root().join("dev/.cache/lib-4.4"))
}

/// A binary of this workspace, built by `cargo build --bins` (the Makefile does it before tests).
pub fn workspace_bin(name: &str) -> PathBuf {
    if let Some(dir) = std::env::var_os("FLEET_BIN_DIR") {
        return PathBuf::from(dir).join(name);
    }
    // target/<profile>/deps/<test-exe> -> target/<profile>/<name>
    let exe = std::env::current_exe().unwrap_or_default();
    let mut dir = exe.parent().map(PathBuf::from).unwrap_or_default();
    if dir.ends_with("deps") {
        dir.pop();
    }
    dir.join(name)
}

pub fn log4j_config() -> PathBuf {
    repo_root().join("bootstrap/defaults/log4j.properties")
}

/// A free loopback port, never handed out twice by this process.
pub fn free_port() -> u16 {
    static TAKEN: Mutex<Option<HashSet<u16>>> = Mutex::new(None);
    loop {
        let port = TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).unwrap_or(0);
        if port == 0 {
            continue;
        }
        let mut taken = TAKEN.lock().unwrap_or_else(|p| p.into_inner());
        if taken.get_or_insert_with(HashSet::new).insert(port) {
            return port;
        }
    }
}

/// A name unique to this process and call: for ZooKeeper roots, cluster names, run folders.
pub fn unique(prefix: &str) -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    format!("{prefix}-{}-{}", std::process::id(), N.fetch_add(1, Ordering::SeqCst))
}

/// A run folder for one fixture's data and logs, under `target/fleet-runs/`. Kept when the test
/// panics (its logs explain the failure), removed otherwise.
pub struct RunDir {
    pub path: PathBuf,
}

impl RunDir {
    pub fn new(name: &str) -> Self {
        let base = std::env::var_os("FLEET_RUN_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| repo_root().join("target/fleet-runs"));
        let path = base.join(unique(name));
        std::fs::create_dir_all(&path).unwrap_or_else(|e| panic!("cannot create {}: {e}", path.display()));
        Self { path }
    }
}

impl Drop for RunDir {
    fn drop(&mut self) {
        if std::thread::panicking() || std::env::var_os("FLEET_KEEP_RUNS").is_some() {
            eprintln!("run folder kept: {}", self.path.display());
        } else {
            let _ = std::fs::remove_dir_all(&self.path);
        }
    }
}

/// Logs of the tests and harness, once per process.
pub fn init_logging() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let filter = tracing_subscriber::EnvFilter::try_from_env("FLEET_LOG")
            .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
        let _ = tracing_subscriber::fmt().with_env_filter(filter).with_test_writer().try_init();
    });
}

/// A command's exit code, stdout and stderr, for assertion messages.
pub fn output_text(out: &std::process::Output) -> String {
    format!("exit {:?}\nstdout: {}\nstderr: {}", out.status.code(), String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

/// The fleet's ZooKeeper identity for tests (one per test process, mode 0600): every fleet
/// manager and broker host of the harness authenticates with it unless a test asks for open
/// znodes, as a production fleet would.
pub fn zk_identity_file() -> PathBuf {
    static PATH: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    PATH.get_or_init(|| {
        use std::os::unix::fs::PermissionsExt;
        let base = std::env::var_os("FLEET_RUN_DIR").map(PathBuf::from).unwrap_or_else(|| repo_root().join("target/fleet-runs"));
        std::fs::create_dir_all(&base).expect("run folder");
        let path = base.join(format!("zk-identity-{}", std::process::id()));
        std::fs::write(&path, "# the test fleet's ZooKeeper identity\nfleet:test-fleet-identity-1\n").expect("identity file");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).expect("chmod identity file");
        path
    })
    .clone()
}
