//! The OpenAPI document is a faithful contract: schemathesis (from PyPI, installed by `make deps`)
//! generates requests from the served document and runs every check against a real fleet manager
//! (ZooKeeper, SQLite; no host provider, so declared clusters launch nothing). No server error, no
//! undocumented status code, no schema-valid request rejected, every response as documented.

use std::time::Duration;

use fleet_tests::fleet_manager::{FleetManager, FleetManagerOptions, WRITE_TOKEN};
use fleet_tests::{init_logging, repo_root, ZkEnsemble};

/// A fixed seed keeps `make test` repeatable; FLEET_SCHEMATHESIS_SEED explores further.
fn seed() -> String {
    std::env::var("FLEET_SCHEMATHESIS_SEED").unwrap_or_else(|_| "1".into())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schemathesis_finds_the_document_faithful() {
    init_logging();
    let st = repo_root().join("dev/.venv-st/bin/st");
    assert!(st.exists(), "{} is missing: run `make deps`", st.display());
    let zk = ZkEnsemble::start(1).await;
    let mut options = FleetManagerOptions::new(&zk.connect_string());
    options.local_hosts = false;
    let fm = FleetManager::start(options).await;
    let report = fm.run.path.join("schemathesis");
    let out = tokio::time::timeout(
        Duration::from_secs(600),
        tokio::process::Command::new(&st)
            .arg("run")
            .arg(format!("{}/openapi.json", fm.url()))
            .args(["--checks", "all", "--max-examples", "25", "--workers", "1", "--no-color", "--seed"])
            .arg(seed())
            .args(["--header", &format!("Authorization: Bearer {WRITE_TOKEN}")])
            .arg("--report-dir")
            .arg(&report)
            .env("SCHEMATHESIS_HOOKS", "")
            .output(),
    )
    .await
    .expect("schemathesis within 10 minutes")
    .expect("run schemathesis");
    let text = String::from_utf8_lossy(&out.stdout);
    eprintln!("{text}");
    assert!(out.status.success(), "schemathesis found problems (report in {}):\n{text}\n{}", report.display(), String::from_utf8_lossy(&out.stderr));
}
