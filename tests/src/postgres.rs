//! A PostgreSQL server from the Debian package, on a loopback port, in a run folder: the
//! production source-of-truth path, for tests that run the same store tests on SQLite and here.

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use crate::process::ManagedProcess;
use crate::{free_port, wait_until, RunDir};

pub struct Postgres {
    pub port: u16,
    pub process: ManagedProcess,
    pub run: RunDir,
}

/// The server binaries: `PG_BIN`, else the newest `/usr/lib/postgresql/<v>/bin`.
pub fn pg_bin() -> PathBuf {
    if let Some(dir) = std::env::var_os("PG_BIN") {
        return PathBuf::from(dir);
    }
    let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .map(|d| d.flatten().map(|e| e.path().join("bin")).filter(|p| p.join("initdb").exists()).collect())
        .unwrap_or_default();
    versions.sort();
    versions.pop().unwrap_or_else(|| PathBuf::from("/usr/lib/postgresql/15/bin"))
}

/// PostgreSQL refuses to run as root: as root, run it as the package's `postgres` user.
fn postgres_user() -> Option<(u32, u32)> {
    if !is_root() {
        return None;
    }
    let out = Command::new("id").args(["-u", "postgres"]).output().ok()?;
    let uid = String::from_utf8_lossy(&out.stdout).trim().parse().ok()?;
    let out = Command::new("id").args(["-g", "postgres"]).output().ok()?;
    let gid = String::from_utf8_lossy(&out.stdout).trim().parse().ok()?;
    Some((uid, gid))
}

#[allow(unsafe_code)]
fn is_root() -> bool {
    // SAFETY: geteuid cannot fail.
    unsafe { libc::geteuid() == 0 }
}

fn as_postgres(cmd: &mut Command, user: Option<(u32, u32)>) {
    use std::os::unix::process::CommandExt;
    if let Some((uid, gid)) = user {
        cmd.uid(uid).gid(gid);
    }
}

impl Postgres {
    pub async fn start() -> Self {
        crate::init_logging();
        let run = RunDir::new("postgres");
        let user = postgres_user();
        let data = run.path.join("data");
        let socket_dir = run.path.join("socket");
        std::fs::create_dir_all(&socket_dir).expect("socket dir");
        if let Some((uid, gid)) = user {
            for dir in [&run.path, &socket_dir] {
                std::os::unix::fs::chown(dir, Some(uid), Some(gid)).expect("chown run folder to postgres");
            }
        }
        let mut initdb = Command::new(pg_bin().join("initdb"));
        initdb.arg("-D").arg(&data).args(["-U", "fleet", "--auth=trust", "--no-sync", "-E", "UTF8"]);
        as_postgres(&mut initdb, user);
        let out = initdb.output().unwrap_or_else(|e| panic!("cannot run initdb from {} (run `make deps`): {e}", pg_bin().display()));
        assert!(out.status.success(), "initdb failed: {}", String::from_utf8_lossy(&out.stderr));

        let port = free_port();
        let mut cmd = Command::new(pg_bin().join("postgres"));
        cmd.arg("-D")
            .arg(&data)
            .args(["-p", &port.to_string(), "-c", "listen_addresses=127.0.0.1", "-c", "fsync=off"])
            .args(["-c", "shared_buffers=32MB", "-c", "max_connections=100"])
            .arg("-k")
            .arg(&socket_dir);
        as_postgres(&mut cmd, user);
        let process = ManagedProcess::spawn("postgres", cmd, &run.path.join("postgres.log")).expect("spawn postgres");
        let pg = Self { port, process, run };
        let isready = pg_bin().join("pg_isready");
        wait_until(&format!("postgres on port {port}"), Duration::from_secs(60), || {
            let isready = isready.clone();
            async move {
                let out = tokio::process::Command::new(&isready)
                    .args(["-h", "127.0.0.1", "-p", &port.to_string(), "-U", "fleet", "-d", "postgres"])
                    .output()
                    .await
                    .map_err(|e| e.to_string())?;
                Ok(out.status.success().then_some(()))
            }
        })
        .await;
        pg
    }

    /// A connection URL for database `db` (create it with [`Postgres::create_database`]).
    pub fn url(&self, db: &str) -> String {
        format!("postgres://fleet@127.0.0.1:{}/{db}", self.port)
    }

    /// Runs one SQL statement through `psql`; returns its unaligned output.
    pub async fn psql(&self, db: &str, sql: &str) -> Result<String, String> {
        let out = tokio::process::Command::new("psql")
            .args(["-h", "127.0.0.1", "-p", &self.port.to_string(), "-U", "fleet", "-d", db, "-At", "-c", sql])
            .output()
            .await
            .map_err(|e| e.to_string())?;
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
        } else {
            Err(String::from_utf8_lossy(&out.stderr).into_owned())
        }
    }

    pub async fn create_database(&self, db: &str) {
        self.psql("postgres", &format!("CREATE DATABASE \"{db}\"")).await.expect("create database");
    }
}
