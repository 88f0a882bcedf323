//! KRaft storage formatting (issue 28), judged by Kafka 4.4's own storage tool: a directory is
//! formatted once, kept as it is on the next boot, and refused when formatted for another
//! cluster or node, with nothing in it changed.

use std::path::Path;

use kafka_bootstrap::kraft::{self, Formation, KraftError, StorageTool};

const CLUSTER_A: &str = "eQvrPUjrRymCAlRuff_Z7g";
const CLUSTER_B: &str = "07R5amHmR32VDA6jHkGbTA";

fn tool() -> StorageTool {
    StorageTool { java: "java".into(), libs: fleet_tests::kafka4_libs() }
}

/// The properties a KRaft node is formatted with (the storage tool reads roles, node ID, log
/// directory and the quorum's listener from them).
fn properties(dir: &Path, node_id: i32, roles: &str) -> std::path::PathBuf {
    let file = dir.join(format!("node-{node_id}.properties"));
    let logs = dir.join(format!("node-{node_id}-logs"));
    let listeners = if roles.contains("controller") { "CONTROLLER://127.0.0.1:19093" } else { "PLAINTEXT://127.0.0.1:19092" };
    let text = format!(
        "process.roles={roles}\nnode.id={node_id}\nlog.dirs={}\nlisteners={listeners}\ncontroller.listener.names=CONTROLLER\n\
         listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT\ncontroller.quorum.bootstrap.servers=127.0.0.1:19093\n",
        logs.display()
    );
    std::fs::write(&file, text).expect("write properties");
    file
}

#[test]
fn storage_is_formatted_once_and_refused_for_another_cluster_or_node() {
    let work = tempfile::tempdir().expect("tempdir");

    // A broker joining a quorum: formatted by the tool, with a directory ID of its own.
    let broker = properties(work.path(), 4, "broker");
    let logs = work.path().join("node-4-logs");
    let meta = tool().ensure_formatted(&logs, &broker, CLUSTER_A, 4, &Formation::Join).expect("format the broker");
    assert_eq!(meta.cluster_id, CLUSTER_A);
    assert_eq!(meta.node_id, Some(4));
    let directory_id = meta.directory_id.clone().expect("a directory ID");
    assert!(kraft::is_kafka_uuid(&directory_id), "{directory_id}");
    let written = std::fs::read_to_string(logs.join("meta.properties")).expect("meta.properties");

    // The next boot keeps it: same directory ID, file untouched.
    let again = tool().ensure_formatted(&logs, &broker, CLUSTER_A, 4, &Formation::Join).expect("second boot");
    assert_eq!(again.directory_id.as_deref(), Some(directory_id.as_str()));
    assert_eq!(std::fs::read_to_string(logs.join("meta.properties")).expect("meta.properties"), written);

    // Another cluster's boot on it: refused naming both IDs, nothing changed.
    let e = tool().ensure_formatted(&logs, &broker, CLUSTER_B, 4, &Formation::Join).expect_err("another cluster");
    let text = e.to_string();
    assert!(matches!(e, KraftError::OtherCluster { .. }) && text.contains(CLUSTER_A) && text.contains(CLUSTER_B), "{text}");
    // Another node's boot on it: refused too.
    let e = tool().ensure_formatted(&logs, &broker, CLUSTER_A, 5, &Formation::Join).expect_err("another node");
    assert!(matches!(e, KraftError::OtherNode { found: 4, expected: 5, .. }), "{e}");
    assert_eq!(std::fs::read_to_string(logs.join("meta.properties")).expect("meta.properties"), written, "a refused boot changes nothing");

    // One of the quorum's first controllers: its directory ID is the one the list gives it.
    let controller = properties(work.path(), 1, "controller");
    let listed = "MvDxzVmcRsaTz33bUuRU6A";
    let list = format!("1@127.0.0.1:19093:{listed}");
    let meta = tool()
        .ensure_formatted(&work.path().join("node-1-logs"), &controller, CLUSTER_A, 1, &Formation::InitialControllers(list))
        .expect("format the first controller");
    assert_eq!(meta.directory_id.as_deref(), Some(listed));

    // A cluster ID that is not one: refused before the tool runs.
    let e = tool().ensure_formatted(&work.path().join("node-9-logs"), &broker, "blue-cluster", 9, &Formation::Join).expect_err("bad id");
    assert!(matches!(e, KraftError::BadClusterId(_)), "{e}");
    assert!(!work.path().join("node-9-logs").exists());
}
