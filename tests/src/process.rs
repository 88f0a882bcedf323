//! A child process owned by a value: killed with its whole process group when dropped.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

pub struct ManagedProcess {
    pub name: String,
    pub child: Child,
    pub log: PathBuf,
}

impl ManagedProcess {
    /// Starts `cmd` with stdout and stderr to `log`, in a new process group, dying with us.
    pub fn spawn(name: &str, mut cmd: Command, log: &Path) -> std::io::Result<Self> {
        let out = File::create(log)?;
        let err = out.try_clone()?;
        cmd.stdin(Stdio::null()).stdout(out).stderr(err);
        configure(&mut cmd);
        let child = cmd.spawn()?;
        Ok(Self { name: name.to_string(), child, log: log.to_path_buf() })
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Whether it is still running (reaps it if not).
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// SIGTERM, then SIGKILL if it has not exited by the deadline. Returns the exit code.
    pub fn terminate(&mut self, grace: Duration) -> Option<i32> {
        signal_group(self.pid(), libc::SIGTERM);
        let deadline = std::time::Instant::now() + grace;
        while std::time::Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status.code();
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        self.kill();
        None
    }

    /// SIGKILL to the whole group, then reap.
    pub fn kill(&mut self) {
        signal_group(self.pid(), libc::SIGKILL);
        let _ = self.child.wait();
    }

    pub fn log_tail(&self, lines: usize) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let all: Vec<&str> = text.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }
}

impl Drop for ManagedProcess {
    fn drop(&mut self) {
        if self.is_running() {
            self.kill();
        }
    }
}

#[allow(unsafe_code)]
fn signal_group(pid: u32, sig: i32) {
    // SAFETY: kill(2) on the process group we created for our own child.
    unsafe {
        libc::kill(-(pid as i32), sig);
    }
}

/// New process group (so the group can be killed as one) and death with the spawning thread.
#[allow(unsafe_code)]
pub fn configure(cmd: &mut Command) {
    use std::os::unix::process::CommandExt;
    cmd.process_group(0);
    // SAFETY: prctl is async-signal-safe.
    unsafe {
        cmd.pre_exec(|| {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            Ok(())
        });
    }
}

/// Sends `sig` to one process (not its group).
#[allow(unsafe_code)]
pub fn signal_pid(pid: i32, sig: i32) -> bool {
    // SAFETY: plain kill(2).
    unsafe { libc::kill(pid, sig) == 0 }
}
