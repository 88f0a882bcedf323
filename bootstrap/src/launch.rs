//! Starting Kafka: `exec` on a real host (the broker becomes the host's main process), or as a
//! child for local hosts, with signals forwarded and the child dying with us.

use std::path::{Path, PathBuf};
use std::process::Command;

/// How the JVM is started.
#[derive(Clone, Debug)]
pub struct KafkaCommand {
    pub java: PathBuf,
    /// Folder of Kafka's jars (the classpath is `<libs>/*`).
    pub libs: PathBuf,
    pub properties_file: PathBuf,
    pub log4j_file: PathBuf,
    pub heap_opts: String,
    pub jvm_opts: String,
}

pub const DEFAULT_HEAP_OPTS: &str = "-Xms256m -Xmx512m";
pub const DEFAULT_JVM_OPTS: &str = "-XX:+UseG1GC -XX:MaxGCPauseMillis=20 -Djava.awt.headless=true";
pub const LOG4J_PROPERTIES: &str = include_str!("../defaults/log4j.properties");

#[derive(Debug, thiserror::Error)]
pub enum LaunchError {
    #[error("Kafka's jars are not in {0} (run `make jars`, or set --kafka-libs / KAFKA_LIBS)")]
    NoJars(PathBuf),
    #[error("{libs} holds Kafka {found}, and this cluster runs Kafka {wanted}: give the other line's jars (--kafka-libs / KAFKA_LIBS; `make jars` puts 3.9 in dev/.cache/lib and 4.4 in dev/.cache/lib-4.4)")]
    WrongLine { libs: PathBuf, found: String, wanted: &'static str },
    #[error("could not start {java}: {source}")]
    Spawn {
        java: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl KafkaCommand {
    pub fn from_env(libs: PathBuf, properties_file: PathBuf, log4j_file: PathBuf) -> Self {
        let java = std::env::var_os("JAVA_HOME")
            .map(|h| PathBuf::from(h).join("bin/java"))
            .filter(|p| p.exists())
            .unwrap_or_else(|| PathBuf::from("java"));
        Self {
            java,
            libs,
            properties_file,
            log4j_file,
            heap_opts: std::env::var("KAFKA_HEAP_OPTS").unwrap_or_else(|_| DEFAULT_HEAP_OPTS.to_string()),
            jvm_opts: std::env::var("KAFKA_JVM_OPTS").unwrap_or_else(|_| DEFAULT_JVM_OPTS.to_string()),
        }
    }

    pub fn check(&self) -> Result<(), LaunchError> {
        let has_kafka_jar = std::fs::read_dir(&self.libs)
            .map(|d| d.flatten().any(|e| e.file_name().to_string_lossy().starts_with("kafka_2.13-")))
            .unwrap_or(false);
        if has_kafka_jar {
            Ok(())
        } else {
            Err(LaunchError::NoJars(self.libs.clone()))
        }
    }

    /// The jars are of the line the cluster runs: 4.x for KRaft, 3.x for ZooKeeper mode (4.x
    /// has no ZooKeeper mode; 3.x cannot format a dynamic quorum's storage).
    pub fn check_line(&self, kraft: bool) -> Result<(), LaunchError> {
        let found: Option<String> = std::fs::read_dir(&self.libs).ok().and_then(|d| {
            d.flatten().map(|e| e.file_name().to_string_lossy().into_owned()).find_map(|n| {
                n.strip_prefix("kafka_2.13-").and_then(|v| v.strip_suffix(".jar")).filter(|v| !v.contains("test")).map(str::to_string)
            })
        });
        let Some(version) = found else { return Err(LaunchError::NoJars(self.libs.clone())) };
        let is_4x = version.split('.').next().and_then(|m| m.parse::<u32>().ok()).is_some_and(|m| m >= 4);
        if is_4x == kraft {
            Ok(())
        } else {
            Err(LaunchError::WrongLine {
                libs: self.libs.clone(),
                found: version,
                wanted: if kraft { "4.x (the cluster file has `kraft`: KRaft mode)" } else { "3.x (no `kraft` in the cluster file: ZooKeeper mode)" },
            })
        }
    }

    pub fn command(&self) -> Command {
        let mut cmd = Command::new(&self.java);
        cmd.args(self.heap_opts.split_whitespace())
            .args(self.jvm_opts.split_whitespace())
            .arg(format!("-Dlog4j.configuration=file:{}", self.log4j_file.display()))
            .arg("-cp")
            .arg(format!("{}/*", self.libs.display()))
            .arg("kafka.Kafka")
            .arg(&self.properties_file);
        cmd
    }

    /// Replaces this process with Kafka. Returns only on failure.
    pub fn exec(&self) -> LaunchError {
        use std::os::unix::process::CommandExt;
        let source = self.command().exec();
        LaunchError::Spawn { java: self.java.clone(), source }
    }

    /// Runs Kafka as a child that dies with us; forwards SIGTERM, SIGINT and SIGHUP as SIGTERM;
    /// returns its exit code. Kafka's controlled shutdown waits on ZooKeeper, so a broker whose
    /// ensemble is gone would ignore SIGTERM for minutes: `stop_grace` after the first signal, it
    /// is killed, and the log says so.
    pub async fn run_as_child(&self, pid_file: &Path, stop_grace: std::time::Duration) -> Result<i32, LaunchError> {
        let mut cmd = tokio::process::Command::from(self.command());
        die_with_parent(&mut cmd);
        let mut child = cmd.spawn().map_err(|source| LaunchError::Spawn { java: self.java.clone(), source })?;
        let pid = child.id().unwrap_or(0);
        // The JVM's own PID, so whoever stops it kills the broker and not a wrapper.
        if let Err(e) = std::fs::write(pid_file, pid.to_string()) {
            tracing::warn!(error = %e, file = %pid_file.display(), "could not write the Kafka pid file");
        }
        tracing::info!(pid, "kafka started");
        let mut term = signal(tokio::signal::unix::SignalKind::terminate());
        let mut int = signal(tokio::signal::unix::SignalKind::interrupt());
        let mut hup = signal(tokio::signal::unix::SignalKind::hangup());
        let mut kill_at: Option<tokio::time::Instant> = None;
        loop {
            let stopping = async {
                match kill_at {
                    Some(at) => tokio::time::sleep_until(at).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                status = child.wait() => {
                    let _ = std::fs::remove_file(pid_file);
                    let code = match status {
                        Ok(s) => s.code().unwrap_or(128 + 9),
                        Err(e) => { tracing::error!(error = %e, "waiting for kafka failed"); 1 }
                    };
                    tracing::info!(code, "kafka exited");
                    return Ok(code);
                }
                _ = recv(&mut term) => stop(pid, &mut kill_at, stop_grace),
                _ = recv(&mut int) => stop(pid, &mut kill_at, stop_grace),
                _ = recv(&mut hup) => stop(pid, &mut kill_at, stop_grace),
                _ = stopping => {
                    tracing::warn!(pid, grace_secs = stop_grace.as_secs_f64(), "kafka did not stop within its grace period after SIGTERM (its controlled shutdown waits on ZooKeeper); killing it");
                    eprintln!("kafka-bootstrap: Kafka (pid {pid}) did not stop within {:?} of SIGTERM; killed it (SIGKILL)", stop_grace);
                    forward(pid, libc::SIGKILL);
                    kill_at = None;
                }
            }
        }
    }
}

fn signal(kind: tokio::signal::unix::SignalKind) -> Option<tokio::signal::unix::Signal> {
    tokio::signal::unix::signal(kind).ok()
}

async fn recv(s: &mut Option<tokio::signal::unix::Signal>) {
    match s {
        Some(s) => {
            s.recv().await;
        }
        None => std::future::pending().await,
    }
}

/// The first stop signal starts the grace period; later ones are forwarded without extending it.
fn stop(pid: u32, kill_at: &mut Option<tokio::time::Instant>, grace: std::time::Duration) {
    forward(pid, libc::SIGTERM);
    if kill_at.is_none() {
        *kill_at = Some(tokio::time::Instant::now() + grace);
    }
}

#[allow(unsafe_code)]
fn forward(pid: u32, sig: i32) {
    tracing::info!(pid, sig, "forwarding signal to kafka");
    // SAFETY: kill(2) on a PID we spawned and have not yet reaped.
    unsafe {
        libc::kill(pid as i32, sig);
    }
}

/// The kernel sends the child SIGTERM when this thread's process dies, even by SIGKILL, so a
/// killed bootstrap never leaves an orphan broker behind.
#[allow(unsafe_code)]
fn die_with_parent(cmd: &mut tokio::process::Command) {
    // SAFETY: prctl is async-signal-safe and touches no memory of ours.
    unsafe {
        cmd.pre_exec(|| {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}
