//! Process lifecycle: a terminal closing on `make demo` (SIGHUP) stops everything the demo
//! started, as Ctrl-C does: the ensemble, the fleet manager, the hosts it launched, the auditor.

use std::process::{Command, Stdio};
use std::time::Duration;

use fleet_tests::wait_until;

/// Processes whose environment carries `marker` (every process the demo starts inherits it),
/// with their command lines.
fn marked_processes(marker: &str) -> Vec<(i32, String)> {
    let needle = format!("FLEET_DEMO_MARKER={marker}");
    let mut out = Vec::new();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else { continue };
        let Ok(environ) = std::fs::read(entry.path().join("environ")) else { continue };
        if environ.split(|b| *b == 0).any(|v| v == needle.as_bytes()) {
            let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
            let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
            // A zombie (already dead, not yet reaped) has an empty command line.
            if !cmdline.trim().is_empty() {
                out.push((pid, cmdline));
            }
        }
    }
    out
}

#[tokio::test]
async fn demo_sent_sighup_leaves_no_process_behind() {
    let marker = fleet_tests::unique("demo-hup");
    let dir = tempfile::tempdir().expect("tempdir");
    let log = dir.path().join("demo.log");
    let mut demo = Command::new(env!("CARGO_BIN_EXE_local-fleet"))
        .args(["demo", "--exit"])
        .env("FLEET_DEMO_MARKER", &marker)
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&log).expect("log"))
        .stderr(std::fs::File::create(dir.path().join("demo.err")).expect("log"))
        .spawn()
        .expect("local-fleet");
    // Mid-demo, once the fleet manager's hosts run Kafka: the case that used to be left headless.
    let brokers = |marker: String| async move {
        let n = marked_processes(&marker).iter().filter(|(_, c)| c.contains("kafka.Kafka")).count();
        Ok((n >= 3).then_some(n))
    };
    let m = marker.clone();
    wait_until("three Kafka brokers started by the demo", Duration::from_secs(240), move || brokers(m.clone())).await;
    let before = marked_processes(&marker);
    eprintln!("demo processes before SIGHUP: {before:#?}");
    assert!(before.iter().any(|(_, c)| c.contains("QuorumPeerMain")), "the ensemble is the demo's: {before:?}");
    assert!(before.iter().any(|(_, c)| c.contains("fleet-manager")), "{before:?}");
    fleet_tests::process::signal_pid(demo.id() as i32, libc::SIGHUP);
    let status = wait_until("the demo to exit after SIGHUP", Duration::from_secs(60), || {
        let status = demo.try_wait().ok().flatten();
        async move { Ok(status) }
    })
    .await;
    let m = marker.clone();
    let left = fleet_tests::wait::try_wait_until(Duration::from_secs(30), &mut || {
        let left = marked_processes(&m);
        async move { if left.is_empty() { Ok(Some(())) } else { Err(format!("{left:?}")) } }
    })
    .await;
    let said = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(left.is_ok(), "processes left behind after SIGHUP: {}", left.err().unwrap_or_default());
    assert!(status.success(), "the demo exits cleanly on SIGHUP: {status:?}");
    assert!(said.contains("SIGHUP: stopping everything the demo started"), "{said}");
}
