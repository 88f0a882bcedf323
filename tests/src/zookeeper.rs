//! A ZooKeeper ensemble (or a standalone server) on loopback, from the pinned jars.

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use crate::process::ManagedProcess;
use crate::{free_port, kafka_libs, log4j_config, wait_until, wire, RunDir};

pub struct ZkNode {
    pub myid: u32,
    pub client_port: u16,
    pub config: PathBuf,
    pub log: PathBuf,
    pub process: Option<ManagedProcess>,
}

pub struct ZkEnsemble {
    pub nodes: Vec<ZkNode>,
    pub run: RunDir,
}

impl ZkEnsemble {
    /// `size` 1 is a standalone server; 3 or 5 a quorum. Returns when every node serves.
    pub async fn start(size: usize) -> Self {
        crate::init_logging();
        let run = RunDir::new(&format!("zk{size}"));
        let ports: Vec<(u16, u16, u16)> = (0..size).map(|_| (free_port(), free_port(), free_port())).collect();
        let mut nodes = Vec::new();
        for (i, (client, quorum, election)) in ports.iter().enumerate() {
            let myid = i as u32 + 1;
            let dir = run.path.join(format!("zk{myid}"));
            let data = dir.join("data");
            std::fs::create_dir_all(&data).expect("zk data dir");
            let mut cfg = format!(
                "tickTime=500\ninitLimit=20\nsyncLimit=10\ndataDir={}\nclientPort={client}\nclientPortAddress=127.0.0.1\n\
                 admin.enableServer=false\n4lw.commands.whitelist=srvr,ruok,mntr\nmaxClientCnxns=0\n",
                data.display()
            );
            if size > 1 {
                std::fs::write(data.join("myid"), myid.to_string()).expect("myid");
                for (j, (_, q, e)) in ports.iter().enumerate() {
                    cfg.push_str(&format!("server.{}=127.0.0.1:{q}:{e}\n", j + 1));
                }
            }
            let _ = (quorum, election);
            let config = dir.join("zoo.cfg");
            std::fs::write(&config, cfg).expect("zoo.cfg");
            nodes.push(ZkNode { myid, client_port: *client, config, log: dir.join("zookeeper.log"), process: None });
        }
        let mut ensemble = Self { nodes, run };
        for i in 0..size {
            ensemble.spawn_node(i);
        }
        for i in 0..size {
            ensemble.wait_serving(i).await;
        }
        ensemble
    }

    fn spawn_node(&mut self, i: usize) {
        let node = &mut self.nodes[i];
        let mut cmd = Command::new("java");
        cmd.args(["-Xms32m", "-Xmx128m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1", "-Xss512k"])
            .arg(format!("-Dlog4j.configuration=file:{}", log4j_config().display()))
            .arg("-Dzookeeper.admin.enableServer=false")
            .arg("-cp")
            .arg(format!("{}/*", kafka_libs().display()))
            .arg("org.apache.zookeeper.server.quorum.QuorumPeerMain")
            .arg(&node.config);
        let process = ManagedProcess::spawn(&format!("zk{}", node.myid), cmd, &node.log)
            .unwrap_or_else(|e| panic!("cannot start java for ZooKeeper (is Java installed?): {e}"));
        node.process = Some(process);
    }

    async fn wait_serving(&self, i: usize) {
        let port = self.nodes[i].client_port;
        let log = self.nodes[i].log.clone();
        wait_until(&format!("zookeeper node {} on port {port} to serve (log: {})", i + 1, log.display()), Duration::from_secs(60), || async move {
            let answer = wire::four_letter_word(port, "srvr").await?;
            Ok(answer.lines().any(|l| l.starts_with("Mode:")).then_some(()))
        })
        .await;
    }

    /// `127.0.0.1:p1,127.0.0.1:p2,...` (no chroot).
    pub fn connect_string(&self) -> String {
        self.nodes.iter().map(|n| format!("127.0.0.1:{}", n.client_port)).collect::<Vec<_>>().join(",")
    }

    /// Kills one node (SIGKILL, as a crash would).
    pub fn stop_node(&mut self, i: usize) {
        if let Some(mut p) = self.nodes[i].process.take() {
            p.kill();
        }
    }

    pub async fn start_node(&mut self, i: usize) {
        self.spawn_node(i);
        self.wait_serving(i).await;
    }

    /// The node currently leading the quorum (index), if any answers.
    pub async fn leader(&self) -> Option<usize> {
        for (i, n) in self.nodes.iter().enumerate() {
            if n.process.is_none() {
                continue;
            }
            if let Ok(a) = wire::four_letter_word(n.client_port, "srvr").await {
                if a.contains("Mode: leader") || a.contains("Mode: standalone") {
                    return Some(i);
                }
            }
        }
        None
    }

    /// A client of the ensemble's root.
    pub async fn client(&self) -> zookeeper_client::Client {
        let address = fleet_common::ZkAddress::parse(&self.connect_string()).expect("harness connect string");
        fleet_common::ZkConnector::default().connect(&address).await.expect("zookeeper client")
    }
}
