//! A scale-up's reads and its one write in ZooKeeper: what `next` needs to see, and the commit.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Instant;

use fleet_api::operation::PlacementPlan;
use fleet_common::znodes::PartitionState;
use fleet_common::KafkaPaths;
use zookeeper_client as zk;

use super::{ActionResult, Guards, TopicZnode};

/// The named topics' znodes (absent topics left out).
pub async fn topic_znodes(zk: &zk::Client, kafka: &KafkaPaths, names: &[String]) -> Result<BTreeMap<String, TopicZnode>, String> {
    let reads = names.iter().map(|name| async move {
        let path = kafka.topic(name);
        match zk.get_data(&path).await {
            Ok((data, stat)) => TopicZnode::decode(&path, stat.version, stat.mtime, &data).map(|z| Some((name.clone(), z))),
            Err(zk::Error::NoNode) => Ok(None),
            Err(e) => Err(format!("read {path}: {e}")),
        }
    });
    let mut out = BTreeMap::new();
    for r in futures::future::join_all(reads).await {
        if let Some((n, z)) = r? {
            out.insert(n, z);
        }
    }
    Ok(out)
}

/// Cluster-wide reasons to refuse a commit.
pub async fn guards(zk: &zk::Client, kafka: &KafkaPaths) -> Result<Guards, String> {
    let root = kafka.chroot();
    let exists = |path: String| async move { zk.check_stat(&path).await.map(|s| s.is_some()).map_err(|e| format!("check {path}: {e}")) };
    let migrating = exists(format!("{root}/migration")).await?;
    let controller = exists(kafka.controller()).await?;
    let reassign_path = format!("{root}/admin/reassign_partitions");
    let reassigning = match zk.get_data(&reassign_path).await {
        Ok((data, _)) => {
            let v: serde_json::Value = serde_json::from_slice(&data).map_err(|e| format!("{reassign_path}: {e}"))?;
            v.get("partitions")
                .and_then(|p| p.as_array())
                .map(|a| a.iter().filter_map(|p| p.get("topic").and_then(|t| t.as_str()).map(str::to_string)).collect())
                .unwrap_or_default()
        }
        Err(zk::Error::NoNode) => BTreeSet::new(),
        Err(e) => return Err(format!("read {reassign_path}: {e}")),
    };
    let delete_path = format!("{root}/admin/delete_topics");
    let deleting = match zk.list_children(&delete_path).await {
        Ok(c) => c.into_iter().collect(),
        Err(zk::Error::NoNode) => BTreeSet::new(),
        Err(e) => return Err(format!("list {delete_path}: {e}")),
    };
    Ok(Guards { migrating, reassigning, deleting, controller })
}

/// New partition -> when its state znode was created with a leader in its ISR (ZooKeeper's
/// ctime, ms), `None` while it has no such leader.
pub async fn leaders(zk: &zk::Client, kafka: &KafkaPaths, plan: &PlacementPlan) -> Result<BTreeMap<(String, u32), Option<i64>>, String> {
    let keys: Vec<(String, u32)> = plan.topics.iter().flat_map(|t| t.new_partitions.keys().map(move |p| (t.topic.clone(), *p))).collect();
    let reads = keys.iter().map(|(t, p)| async move {
        let path = kafka.partition_state(t, *p as i32);
        match zk.get_data(&path).await {
            Ok((data, stat)) => {
                let state: PartitionState = fleet_common::znodes::decode(&path, "a partition state", &data).map_err(|e| e.to_string())?;
                Ok((state.leader >= 0 && state.isr.contains(&state.leader)).then_some(stat.ctime))
            }
            // The controller has not created it yet.
            Err(zk::Error::NoNode) => Ok(None),
            Err(e) => Err(format!("read {path}: {e}")),
        }
    });
    let results = futures::future::join_all(reads).await;
    let mut out = BTreeMap::new();
    for (k, r) in keys.into_iter().zip(results) {
        out.insert(k, r?);
    }
    Ok(out)
}

/// Writes the plan: per multi, a check of the leader's election znode (fencing), of
/// `/controller` and of each target broker's registration, then every topic's znode at the
/// version the plan was made from. ZooKeeper applies a multi whole or not at all, and the
/// controller, watching each topic znode, creates the new partitions.
pub async fn commit(zk: &zk::Client, leader_znode: &str, kafka: &KafkaPaths, plan: &PlacementPlan, max_bytes: usize) -> ActionResult {
    let names: Vec<String> = plan.topics.iter().map(|t| t.topic.clone()).collect();
    let current = match topic_znodes(zk, kafka, &names).await {
        Ok(c) => c,
        Err(e) => return ActionResult::Retry(e),
    };
    // (topic, path, new data, version), skipping topics an earlier split commit already wrote.
    let mut writes = Vec::new();
    for t in &plan.topics {
        let Some(z) = current.get(&t.topic) else {
            return ActionResult::Refused(format!("topic {} is gone; nothing was committed", t.topic));
        };
        if z.has(t) {
            continue;
        }
        if z.version != t.version {
            return ActionResult::Refused(format!(
                "topic {} changed since the plan was made (znode version {} -> {}); nothing was committed: start a new scale-up",
                t.topic, t.version, z.version
            ));
        }
        writes.push((t.topic.clone(), z.path.clone(), z.with_partitions(&t.new_partitions), t.version));
    }
    let groups = if plan.commits > 1 {
        let sizes: Vec<usize> = writes.iter().map(|(_, p, d, _)| 24 + p.len() + d.len()).collect();
        super::split(&sizes, max_bytes)
    } else {
        std::iter::once(0..writes.len()).collect()
    };
    let started = Instant::now();
    for (n, group) in groups.into_iter().enumerate() {
        let nothing = if n == 0 { "nothing was committed".to_string() } else { format!("the first {n} of {} commits landed", plan.commits) };
        let mut writer = match zk.new_check_writer(leader_znode, None) {
            Ok(w) => w,
            Err(e) => return ActionResult::Retry(format!("check {leader_znode}: {e}")),
        };
        let mut checks = vec![kafka.controller()];
        checks.extend(plan.new_brokers.iter().map(|b| kafka.broker(*b)));
        for path in &checks {
            if let Err(e) = writer.add_check_version(path, -1) {
                return ActionResult::Refused(format!("check {path}: {e}"));
            }
        }
        let batch = &writes[group];
        for (_, path, data, version) in batch {
            if let Err(e) = writer.add_set_data(path, data, Some(*version)) {
                return ActionResult::Refused(format!("set {path}: {e}"));
            }
        }
        match writer.commit().await {
            Ok(_) => {}
            Err(zk::CheckWriteError::CheckFailed { source }) => {
                return ActionResult::Retry(format!("not the leader any more ({leader_znode}: {source}); {nothing}"));
            }
            Err(zk::CheckWriteError::OperationFailed { index, source }) if index < checks.len() => {
                let what = if index == 0 { "no active controller (/controller is absent)".to_string() } else { format!("broker {} is not registered", plan.new_brokers[index - 1]) };
                return ActionResult::Retry(format!("{what}: {source}; {nothing}"));
            }
            Err(zk::CheckWriteError::OperationFailed { index, source }) => {
                let topic = batch.get(index - checks.len()).map(|w| w.0.clone()).unwrap_or_default();
                return ActionResult::Refused(format!("topic {topic} changed since the plan was made ({source}); {nothing}: start a new scale-up"));
            }
            // The answer was lost: the next pass sees in the znodes whether it landed.
            Err(zk::CheckWriteError::RequestFailed { source }) => return ActionResult::Retry(format!("commit: {source}")),
        }
    }
    let millis = started.elapsed().as_millis() as u64;
    crate::failpoints::crash_after_commit();
    ActionResult::Done { millis }
}
