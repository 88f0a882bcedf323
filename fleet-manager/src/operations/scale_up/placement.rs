//! Where a scale-up's new partitions go: a pure function, the same plan for the same input.
//!
//! - How many: per-broker partition density stays what it was (6 partitions on 3 brokers, 3
//!   brokers added -> 12), or a fixed number per topic.
//! - Leaders on the new brokers. Followers on the new brokers too when there are at least as many
//!   as the replication factor; else spread over the other brokers.
//! - Replicas of one partition in distinct racks wherever the racks allow.
//! - Leaders and replicas balanced over the whole batch with one shared count per broker (Kafka
//!   starts each topic at a random broker, which leaves a batch of many small topics uneven).

use std::collections::{BTreeMap, BTreeSet};

/// One topic as placement sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TopicShape {
    pub name: String,
    pub partitions: u32,
    pub replication_factor: u16,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Placed {
    pub topic: String,
    pub from: u32,
    pub to: u32,
    pub new_partitions: BTreeMap<u32, Vec<i32>>,
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("topic {topic}: {reason}")]
pub struct PlacementError {
    pub topic: String,
    pub reason: String,
}

/// Partitions a topic ends with when density is kept: `ceil(from * after / before)`.
pub fn density_target(from: u32, brokers_before: u32, brokers_after: u32) -> u32 {
    if brokers_before == 0 {
        return from;
    }
    let num = u64::from(from) * u64::from(brokers_after);
    num.div_ceil(u64::from(brokers_before)) as u32
}

/// Places every topic's new partitions. `brokers`: live broker -> rack (empty when none).
pub fn place(
    brokers: &BTreeMap<i32, String>,
    new_brokers: &BTreeSet<i32>,
    brokers_before: u32,
    topics: &[TopicShape],
    partitions_per_topic: Option<u32>,
) -> Result<Vec<Placed>, PlacementError> {
    let mut leaders: BTreeMap<i32, u32> = brokers.keys().map(|b| (*b, 0)).collect();
    let mut replicas: BTreeMap<i32, u32> = leaders.clone();
    let mut sorted: Vec<&TopicShape> = topics.iter().collect();
    sorted.sort_by(|a, b| a.name.cmp(&b.name));
    let mut out = Vec::new();
    for t in sorted {
        let rf = usize::from(t.replication_factor);
        if new_brokers.is_empty() {
            return Err(PlacementError { topic: t.name.clone(), reason: "no new broker to place partitions on".into() });
        }
        if rf == 0 || rf > brokers.len() {
            return Err(PlacementError {
                topic: t.name.clone(),
                reason: format!("replication factor {rf} does not fit the {} live brokers", brokers.len()),
            });
        }
        let to = match partitions_per_topic {
            Some(k) => t.partitions + k,
            None => density_target(t.partitions, brokers_before, brokers_before + new_brokers.len() as u32),
        };
        let mut new_partitions = BTreeMap::new();
        for p in t.partitions..to {
            // Leader: the new broker leading the fewest so far, then holding the fewest replicas.
            let leader = *new_brokers
                .iter()
                .min_by_key(|b| (leaders[b], replicas[b], **b))
                .ok_or_else(|| PlacementError { topic: t.name.clone(), reason: "no new broker".into() })?;
            let pool: Vec<i32> = if new_brokers.len() >= rf { new_brokers.iter().copied().collect() } else { brokers.keys().copied().collect() };
            let mut chosen = vec![leader];
            let mut racks: BTreeSet<&str> = BTreeSet::from([brokers[&leader].as_str()]);
            while chosen.len() < rf {
                let next = pool
                    .iter()
                    .filter(|b| !chosen.contains(b))
                    .min_by_key(|b| {
                        let rack = brokers[b].as_str();
                        (!rack.is_empty() && racks.contains(rack), replicas[b], **b)
                    })
                    .copied()
                    .ok_or_else(|| PlacementError { topic: t.name.clone(), reason: format!("not enough brokers for {rf} replicas") })?;
                racks.insert(brokers[&next].as_str());
                chosen.push(next);
            }
            *leaders.entry(leader).or_default() += 1;
            for b in &chosen {
                *replicas.entry(*b).or_default() += 1;
            }
            new_partitions.insert(p, chosen);
        }
        out.push(Placed { topic: t.name.clone(), from: t.partitions, to, new_partitions });
    }
    Ok(out)
}

/// IDs and racks the next `count` brokers are expected to get: the next IDs, each in the zone with
/// the fewest brokers (what the planner does when it launches hosts).
pub fn predict_new_brokers(live: &BTreeMap<i32, String>, zones: &[String], count: u32) -> BTreeMap<i32, String> {
    let mut per_zone: BTreeMap<&str, usize> = zones.iter().map(|z| (z.as_str(), 0)).collect();
    for rack in live.values() {
        if let Some(n) = per_zone.get_mut(rack.as_str()) {
            *n += 1;
        }
    }
    let first_id = live.keys().max().copied().unwrap_or(0) + 1;
    let mut out = BTreeMap::new();
    for next_id in (first_id..).take(count as usize) {
        let zone = zones
            .iter()
            .min_by_key(|z| per_zone.get(z.as_str()).copied().unwrap_or(0))
            .cloned()
            .unwrap_or_default();
        if let Some(n) = per_zone.get_mut(zone.as_str()) {
            *n += 1;
        }
        out.insert(next_id, zone);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn brokers(n: i32) -> BTreeMap<i32, String> {
        (1..=n).map(|b| (b, ["zone-a", "zone-b", "zone-c"][((b - 1) % 3) as usize].to_string())).collect()
    }

    fn topics(n: usize, partitions: u32, rf: u16) -> Vec<TopicShape> {
        (0..n).map(|i| TopicShape { name: format!("t{i:02}"), partitions, replication_factor: rf }).collect()
    }

    fn spread(placed: &[Placed]) -> (BTreeMap<i32, u32>, BTreeMap<i32, u32>) {
        let mut leaders = BTreeMap::new();
        let mut replicas = BTreeMap::new();
        for t in placed {
            for r in t.new_partitions.values() {
                *leaders.entry(r[0]).or_insert(0) += 1;
                for b in r {
                    *replicas.entry(*b).or_insert(0) += 1;
                }
            }
        }
        (leaders, replicas)
    }

    fn within_one(counts: &BTreeMap<i32, u32>) -> bool {
        let min = counts.values().min().copied().unwrap_or(0);
        let max = counts.values().max().copied().unwrap_or(0);
        max - min <= 1
    }

    #[test]
    fn density_is_kept() {
        assert_eq!(density_target(6, 3, 6), 12);
        assert_eq!(density_target(4, 3, 6), 8);
        assert_eq!(density_target(6, 3, 5), 10);
        assert_eq!(density_target(1, 3, 4), 2, "rounded up: a topic never ends below its density");
    }

    #[test]
    fn enough_new_brokers_take_every_replica_in_distinct_racks() {
        let all = brokers(6);
        let new: BTreeSet<i32> = [4, 5, 6].into();
        for rf in [1u16, 2, 3] {
            let placed = place(&all, &new, 3, &topics(20, 6, rf), None).expect("fits");
            for t in &placed {
                assert_eq!(t.to, 12);
                for (p, r) in &t.new_partitions {
                    assert!((6..12).contains(p));
                    assert_eq!(r.len(), usize::from(rf));
                    assert!(r.iter().all(|b| new.contains(b)), "{r:?} on new brokers only");
                    let racks: BTreeSet<&str> = r.iter().map(|b| all[b].as_str()).collect();
                    assert_eq!(racks.len(), r.len(), "distinct racks: {r:?}");
                }
            }
            let (leaders, replicas) = spread(&placed);
            assert_eq!(leaders.keys().copied().collect::<Vec<_>>(), [4, 5, 6]);
            assert!(within_one(&leaders), "leaders over the batch: {leaders:?}");
            assert!(within_one(&replicas), "replicas over the batch: {replicas:?}");
        }
    }

    #[test]
    fn fewer_new_brokers_than_copies_lead_and_followers_spread_rack_aware() {
        let all = brokers(5);
        let new: BTreeSet<i32> = [4, 5].into();
        let placed = place(&all, &new, 3, &topics(7, 3, 3), None).expect("fits");
        let (leaders, _) = spread(&placed);
        assert!(leaders.keys().all(|b| new.contains(b)), "leaders on new brokers: {leaders:?}");
        assert!(within_one(&leaders));
        for t in &placed {
            assert_eq!(t.to, 5, "3 partitions on 3 brokers, 2 added -> 5");
            for r in t.new_partitions.values() {
                let racks: BTreeSet<&str> = r.iter().map(|b| all[b].as_str()).collect();
                assert_eq!(racks.len(), 3, "three racks for three copies: {r:?}");
            }
        }
    }

    #[test]
    fn many_small_topics_balance_over_the_batch() {
        // One partition added per topic: a per-topic start would put them all on the same broker.
        let all = brokers(6);
        let new: BTreeSet<i32> = [4, 5, 6].into();
        let placed = place(&all, &new, 3, &topics(100, 1, 2), Some(1)).expect("fits");
        let (leaders, replicas) = spread(&placed);
        assert!(within_one(&leaders), "{leaders:?}");
        assert!(within_one(&replicas), "{replicas:?}");
    }

    #[test]
    fn same_input_same_plan() {
        let all = brokers(6);
        let new: BTreeSet<i32> = [4, 5, 6].into();
        let mut shuffled = topics(10, 4, 2);
        let a = place(&all, &new, 3, &shuffled, None).expect("fits");
        shuffled.reverse();
        let b = place(&all, &new, 3, &shuffled, None).expect("fits");
        assert_eq!(a, b);
    }

    #[test]
    fn replication_above_the_brokers_is_refused_naming_the_topic() {
        let all = brokers(3);
        let new: BTreeSet<i32> = [3].into();
        let e = place(&all, &new, 2, &topics(1, 2, 4), None).expect_err("too many copies");
        assert_eq!(e.topic, "t00");
    }

    #[test]
    fn predicted_brokers_take_the_next_ids_in_the_emptiest_zones() {
        let zones: Vec<String> = ["zone-a", "zone-b", "zone-c"].iter().map(|z| z.to_string()).collect();
        let p = predict_new_brokers(&brokers(3), &zones, 3);
        assert_eq!(p, [(4, "zone-a".to_string()), (5, "zone-b".to_string()), (6, "zone-c".to_string())].into());
    }
}
