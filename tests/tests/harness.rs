//! The harness itself: each real component starts, answers, and leaves nothing behind.

use fleet_tests::process::signal_pid;
use fleet_tests::{Moto, Postgres, ZkEnsemble};

fn alive(pid: u32) -> bool {
    // Signal 0 checks existence; a reaped child is gone.
    signal_pid(pid as i32, 0)
}

#[tokio::test]
async fn postgres_starts_answers_sql_and_stops() {
    let pg = Postgres::start().await;
    pg.create_database("fleet_harness").await;
    let answer = pg.psql("fleet_harness", "SELECT 40 + 2").await.expect("sql");
    assert_eq!(answer, "42");
    let pid = pg.process.pid();
    drop(pg);
    assert!(!alive(pid), "postgres {pid} still running after drop");
}

#[tokio::test]
async fn standalone_zookeeper_and_moto_stop_with_their_fixtures() {
    let zk = ZkEnsemble::start(1).await;
    let moto = Moto::start().await;
    let client = zk.client().await;
    client.list_children("/").await.expect("zookeeper answers");
    let regions = moto.ec2().await.describe_regions().send().await.expect("moto answers EC2");
    assert!(!regions.regions().is_empty());
    let pids: Vec<u32> = zk.nodes.iter().filter_map(|n| n.process.as_ref().map(|p| p.pid())).chain([moto.process.pid()]).collect();
    drop(client);
    drop(zk);
    drop(moto);
    for pid in pids {
        assert!(!alive(pid), "process {pid} still running after its fixture was dropped");
    }
}
