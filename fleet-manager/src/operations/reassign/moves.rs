//! The pure planning of decommission and rebalance: where each replica goes, in which batches,
//! and the bookkeeping of Kafka's throttled-replica lists.
//!
//! - Decommission: every replica on a leaving broker gets a staying destination, keeping a
//!   partition's replicas in distinct racks where the racks allow, preferring the rack of the
//!   replica it replaces, then the least loaded broker (one shared count over the whole plan).
//! - Batches cap the moves touching each broker and the moves in flight cluster-wide.
//! - Throttles (Kafka's `*.replication.throttled.replicas` topic configs) are merged with the
//!   values already there and removed entry by entry; a `*` set by someone else is never touched.

use std::collections::{BTreeMap, BTreeSet};

pub use fleet_api::operation::PartitionMove as Move;

/// Brokers that gain a replica.
pub fn adding(m: &Move) -> impl Iterator<Item = i32> + '_ {
    m.to.iter().copied().filter(|b| !m.from.contains(b))
}

/// Every broker the move sends or receives data through.
pub fn brokers_of(m: &Move) -> BTreeSet<i32> {
    m.from.iter().chain(m.to.iter()).copied().collect()
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {reason}")]
pub struct MoveError {
    /// What the error is about: `brokers`, or `topic <t>`.
    pub field: String,
    pub reason: String,
}

/// Assignment: (topic, partition) -> replicas, preferred leader first.
pub type Assignment = BTreeMap<(String, u32), Vec<i32>>;

/// The moves that empty `leaving`. `racks`: every live broker -> rack (empty when none).
pub fn plan_decommission(assignment: &Assignment, racks: &BTreeMap<i32, String>, leaving: &BTreeSet<i32>) -> Result<Vec<Move>, MoveError> {
    // A leaving broker need not be live (a broker that is down is decommissioned too: its
    // replicas are rebuilt from the in-sync copies onto the staying brokers); the request was
    // checked against the cluster's registry.
    let staying: Vec<i32> = racks.keys().copied().filter(|b| !leaving.contains(b)).collect();
    if staying.is_empty() {
        return Err(MoveError { field: "brokers".into(), reason: "every broker would leave: keep at least one (delete the cluster to remove it all)".into() });
    }
    let mut load: BTreeMap<i32, usize> = staying.iter().map(|b| (*b, 0)).collect();
    for replicas in assignment.values() {
        for b in replicas {
            if let Some(n) = load.get_mut(b) {
                *n += 1;
            }
        }
    }
    let mut moves = Vec::new();
    for ((topic, partition), replicas) in assignment {
        if !replicas.iter().any(|b| leaving.contains(b)) {
            continue;
        }
        if replicas.len() > staying.len() {
            return Err(MoveError {
                field: format!("topic {topic}"),
                reason: format!("{} copies do not fit on the {} brokers that would stay", replicas.len(), staying.len()),
            });
        }
        // Staying replicas keep their order (the first becomes the preferred leader), then the
        // replacements.
        let mut to: Vec<i32> = replicas.iter().copied().filter(|b| !leaving.contains(b)).collect();
        for replaced in replicas.iter().filter(|b| leaving.contains(b)) {
            let replaced_rack = racks.get(replaced).map(String::as_str).unwrap_or("");
            let used: BTreeSet<&str> = to.iter().filter_map(|b| racks.get(b).map(String::as_str)).filter(|r| !r.is_empty()).collect();
            let dest = staying
                .iter()
                .filter(|b| !to.contains(b))
                .min_by_key(|b| {
                    let rack = racks.get(b).map(String::as_str).unwrap_or("");
                    (used.contains(rack), rack != replaced_rack, load[b], **b)
                })
                .copied()
                .ok_or_else(|| MoveError { field: format!("topic {topic}"), reason: "no broker left to take a replica".into() })?;
            if let Some(n) = load.get_mut(&dest) {
                *n += 1;
            }
            to.push(dest);
        }
        moves.push(Move { topic: topic.clone(), partition: *partition, from: replicas.clone(), to, bytes: 0 });
    }
    Ok(moves)
}

/// The moves that spread replicas, then preferred leaders, evenly over every live broker: per
/// topic first (a topic's replicas differ by at most one between brokers), then in total, each
/// move handing a replica from a heavier broker to a lighter one that the partition does not use,
/// keeping racks distinct and preferring the same rack; then preferred leaders are swapped within
/// partitions the same way. Pure, deterministic.
pub fn plan_rebalance(assignment: &Assignment, racks: &BTreeMap<i32, String>) -> Vec<Move> {
    let brokers: Vec<i32> = racks.keys().copied().collect();
    if brokers.is_empty() {
        return Vec::new();
    }
    let rack = |b: &i32| racks.get(b).map(String::as_str).unwrap_or("");
    let mut target: Assignment = assignment.clone();
    let mut load: BTreeMap<i32, usize> = brokers.iter().map(|b| (*b, 0)).collect();
    for replicas in target.values() {
        for b in replicas {
            if let Some(n) = load.get_mut(b) {
                *n += 1;
            }
        }
    }
    // Replicas of each topic per broker: a keyed topic's traffic follows its own partitions, so
    // every topic is spread over every broker, then the totals are evened without undoing that.
    let mut topic_load: BTreeMap<(String, i32), usize> = BTreeMap::new();
    for ((topic, _), replicas) in &target {
        for b in replicas {
            *topic_load.entry((topic.clone(), *b)).or_default() += 1;
        }
    }
    let topics: BTreeSet<String> = target.keys().map(|(t, _)| t.clone()).collect();
    let tl = |m: &BTreeMap<(String, i32), usize>, t: &str, b: i32| m.get(&(t.to_string(), b)).copied().unwrap_or(0);
    // A destination for the replica of `replicas` on `from`: not in the partition, in a rack it
    // does not use yet, passing `fits`; same rack as `from` first, then the least loaded.
    let destination = |replicas: &[i32], from: i32, load: &BTreeMap<i32, usize>, fits: &dyn Fn(i32) -> bool| -> Option<i32> {
        let others: BTreeSet<&str> = replicas.iter().filter(|b| **b != from).map(rack).filter(|r| !r.is_empty()).collect();
        brokers
            .iter()
            .filter(|b| !replicas.contains(b) && fits(**b))
            .filter(|b| rack(b).is_empty() || !others.contains(rack(b)))
            .min_by_key(|b| (rack(b) != rack(&from), load[b], **b))
            .copied()
    };
    let total: usize = target.values().map(Vec::len).sum();
    for topic in &topics {
        let keys: Vec<(String, u32)> = target.keys().filter(|(t, _)| t == topic).cloned().collect();
        for _ in 0..=total {
            let counts: Vec<(i32, usize)> = brokers.iter().map(|b| (*b, tl(&topic_load, topic, *b))).collect();
            let Some(&(hi, hi_n)) = counts.iter().max_by_key(|(b, n)| (*n, load[b], std::cmp::Reverse(*b))) else { break };
            let lo_n = counts.iter().map(|(_, n)| *n).min().unwrap_or(0);
            if hi_n <= lo_n + 1 {
                break;
            }
            let fits = |b: i32| tl(&topic_load, topic, b) + 1 < hi_n;
            let found = keys.iter().find_map(|k| {
                let replicas = &target[k];
                let pos = replicas.iter().position(|b| *b == hi)?;
                Some((k.clone(), pos, destination(replicas, hi, &load, &fits)?))
            });
            let Some((key, pos, dest)) = found else { break };
            if let Some(r) = target.get_mut(&key) {
                r[pos] = dest;
            }
            *load.entry(hi).or_default() -= 1;
            *load.entry(dest).or_default() += 1;
            *topic_load.entry((topic.clone(), hi)).or_default() -= 1;
            *topic_load.entry((topic.clone(), dest)).or_default() += 1;
        }
    }
    // Totals: each pass moves one replica from the most loaded broker to a lighter one, only where
    // that topic has fewer replicas on the destination (no topic gets less even).
    for _ in 0..=total {
        let lo_load = load.values().copied().min().unwrap_or(0);
        let mut heavy: Vec<(i32, usize)> = load.iter().map(|(b, n)| (*b, *n)).filter(|(_, n)| *n > lo_load + 1).collect();
        heavy.sort_by_key(|(b, n)| (std::cmp::Reverse(*n), *b));
        // The heaviest broker that can hand a replica over (another may, when it cannot).
        let found = heavy.iter().find_map(|&(hi, hi_load)| {
            target.iter().find_map(|(k, replicas)| {
                let pos = replicas.iter().position(|b| *b == hi)?;
                let fits = |b: i32| load[&b] + 1 < hi_load && tl(&topic_load, &k.0, b) < tl(&topic_load, &k.0, hi);
                Some((k.clone(), pos, hi, destination(replicas, hi, &load, &fits)?))
            })
        });
        let Some((key, pos, hi, dest)) = found else { break };
        if let Some(r) = target.get_mut(&key) {
            r[pos] = dest;
        }
        *load.entry(hi).or_default() -= 1;
        *load.entry(dest).or_default() += 1;
        *topic_load.entry((key.0.clone(), hi)).or_default() -= 1;
        *topic_load.entry((key.0.clone(), dest)).or_default() += 1;
    }
    // Preferred leaders: swap the most-leading broker out of first place where a lighter replica can take it.
    let mut leaders: BTreeMap<i32, usize> = brokers.iter().map(|b| (*b, 0)).collect();
    for replicas in target.values() {
        if let Some(first) = replicas.first() {
            *leaders.entry(*first).or_default() += 1;
        }
    }
    // Each pass swaps one partition's preferred leader from a broker leading more to one of its
    // replicas leading at least two fewer (the lightest such), trying the heaviest brokers first.
    let mut led_by: BTreeMap<i32, BTreeSet<(String, u32)>> = BTreeMap::new();
    for (key, replicas) in &target {
        if let Some(first) = replicas.first() {
            led_by.entry(*first).or_default().insert(key.clone());
        }
    }
    for _ in 0..=target.len() {
        let mut order: Vec<(i32, usize)> = leaders.iter().map(|(b, n)| (*b, *n)).collect();
        order.sort_by_key(|(b, n)| (std::cmp::Reverse(*n), *b));
        let mut swap: Option<((String, u32), usize, i32, i32)> = None;
        'find: for (hi, hi_n) in order {
            let mut best: Option<((String, u32), usize, i32, usize)> = None;
            for key in led_by.get(&hi).into_iter().flatten() {
                let replicas = &target[key];
                for (i, b) in replicas.iter().enumerate().skip(1) {
                    let n = leaders.get(b).copied().unwrap_or(0);
                    if n + 1 < hi_n && best.as_ref().is_none_or(|x| n < x.3) {
                        best = Some((key.clone(), i, *b, n));
                    }
                }
            }
            if let Some((key, i, b, _)) = best {
                swap = Some((key, i, hi, b));
                break 'find;
            }
        }
        let Some((key, i, hi, b)) = swap else { break };
        if let Some(r) = target.get_mut(&key) {
            r.swap(0, i);
        }
        if let Some(set) = led_by.get_mut(&hi) {
            set.remove(&key);
        }
        led_by.entry(b).or_default().insert(key);
        *leaders.entry(hi).or_default() -= 1;
        *leaders.entry(b).or_default() += 1;
    }
    target
        .into_iter()
        .filter_map(|(key, to)| {
            let from = &assignment[&key];
            (from != &to).then(|| Move { topic: key.0, partition: key.1, from: from.clone(), to, bytes: 0 })
        })
        .collect()
}

/// Replicas and preferred leaders per broker of an assignment (every broker in `brokers` listed).
pub fn counts(assignment: &Assignment, brokers: impl Iterator<Item = i32>) -> (BTreeMap<i32, u32>, BTreeMap<i32, u32>) {
    let mut replicas: BTreeMap<i32, u32> = brokers.map(|b| (b, 0)).collect();
    let mut leaders = replicas.clone();
    for r in assignment.values() {
        for b in r {
            *replicas.entry(*b).or_default() += 1;
        }
        if let Some(first) = r.first() {
            *leaders.entry(*first).or_default() += 1;
        }
    }
    (replicas, leaders)
}

/// Splits moves into batches: at most `per_broker` moves touching any one broker, at most
/// `total` moves in a batch. Same moves, same batches.
pub fn batches(moves: &[Move], per_broker: usize, total: usize) -> Vec<Vec<Move>> {
    let (per_broker, total) = (per_broker.max(1), total.max(1));
    let mut left: Vec<&Move> = moves.iter().collect();
    let mut out = Vec::new();
    while !left.is_empty() {
        let mut batch = Vec::new();
        let mut touching: BTreeMap<i32, usize> = BTreeMap::new();
        let mut rest = Vec::new();
        for m in left {
            let fits = batch.len() < total && brokers_of(m).iter().all(|b| touching.get(b).copied().unwrap_or(0) < per_broker);
            if fits {
                for b in brokers_of(m) {
                    *touching.entry(b).or_default() += 1;
                }
                batch.push(m.clone());
            } else {
                rest.push(m);
            }
        }
        out.push(batch);
        left = rest;
    }
    out
}

/// A throttled-replicas list (`0:1,0:2,1:3`) as entries; `None` for `*` (all replicas).
pub fn parse_throttled(value: &str) -> Option<BTreeSet<(u32, i32)>> {
    if value.trim() == "*" {
        return None;
    }
    Some(
        value
            .split(',')
            .filter_map(|e| {
                let (p, b) = e.trim().split_once(':')?;
                Some((p.trim().parse().ok()?, b.trim().parse().ok()?))
            })
            .collect(),
    )
}

fn format_throttled(entries: &BTreeSet<(u32, i32)>) -> String {
    entries.iter().map(|(p, b)| format!("{p}:{b}")).collect::<Vec<_>>().join(",")
}

/// The list with `add` merged in. `*` stays `*`.
pub fn merge_throttled(existing: Option<&str>, add: &BTreeSet<(u32, i32)>) -> String {
    match existing.map(parse_throttled) {
        Some(None) => "*".into(),
        Some(Some(mut entries)) => {
            entries.extend(add.iter().copied());
            format_throttled(&entries)
        }
        None => format_throttled(add),
    }
}

/// The list without `remove`; `None` when nothing is left (delete the config). `*` stays `*`.
pub fn remove_throttled(existing: &str, remove: &BTreeSet<(u32, i32)>) -> Option<String> {
    match parse_throttled(existing) {
        None => Some("*".into()),
        Some(entries) => {
            let left: BTreeSet<(u32, i32)> = entries.difference(remove).copied().collect();
            (!left.is_empty()).then(|| format_throttled(&left))
        }
    }
}

/// Throttled-replica entries: (partition, broker).
pub type Throttled = BTreeSet<(u32, i32)>;

/// What one batch throttles, per topic: the replicas that send (the current ones: Kafka's
/// `leader.replication.throttled.replicas`) and those that receive (the new ones:
/// `follower.replication.throttled.replicas`).
pub fn throttled_replicas(batch: &[Move]) -> BTreeMap<String, (Throttled, Throttled)> {
    let mut out: BTreeMap<String, (Throttled, Throttled)> = BTreeMap::new();
    for m in batch {
        let entry = out.entry(m.topic.clone()).or_default();
        entry.0.extend(m.from.iter().map(|b| (m.partition, *b)));
        entry.1.extend(adding(m).map(|b| (m.partition, b)));
    }
    out
}

/// A replication rate as written by an operator: `10MiB/s`, `500KiB/s`, `20MB/s`, or bytes/s.
pub fn parse_rate(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let t = t.strip_suffix("/s").unwrap_or(t);
    let split = t.find(|c: char| !c.is_ascii_digit() && c != '.').unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: f64 = num.parse().map_err(|_| format!("`{text}` is not a rate: write e.g. 10MiB/s, 500KiB/s or 20MB/s"))?;
    let factor: f64 = match unit.trim() {
        "" | "B" => 1.0,
        "KB" | "kB" => 1e3,
        "MB" => 1e6,
        "GB" => 1e9,
        "KiB" => 1024.0,
        "MiB" => 1024.0 * 1024.0,
        "GiB" => 1024.0 * 1024.0 * 1024.0,
        other => return Err(format!("`{other}` is not a unit: use B, KB, MB, GB, KiB, MiB or GiB (per second)")),
    };
    let rate = (n * factor).round();
    if !(rate >= 1.0 && rate.is_finite()) {
        return Err(format!("`{text}`: a throttle must be above 0 bytes/s"));
    }
    Ok(rate as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn racks(n: i32) -> BTreeMap<i32, String> {
        (1..=n).map(|b| (b, ["a", "b", "c"][((b - 1) % 3) as usize].to_string())).collect()
    }

    fn assignment(parts: &[(&str, u32, &[i32])]) -> Assignment {
        parts.iter().map(|(t, p, r)| ((t.to_string(), *p), r.to_vec())).collect()
    }

    #[test]
    fn decommission_empties_the_leaving_brokers_in_distinct_racks_preferring_the_same_rack() {
        // Racks: 1 a, 2 b, 3 c, 4 a, 5 b.
        let a = assignment(&[("t", 0, &[4, 2, 3]), ("t", 1, &[5, 1]), ("t", 2, &[1, 2]), ("u", 0, &[4, 5])]);
        let moves = plan_decommission(&a, &racks(5), &[4, 5].into()).expect("fits");
        assert_eq!(moves.len(), 3, "t-2 holds nothing on 4 or 5: {moves:?}");
        let r = racks(5);
        for m in &moves {
            assert!(m.to.iter().all(|b| *b <= 3), "{m:?}");
            let distinct: BTreeSet<&str> = m.to.iter().map(|b| r[b].as_str()).collect();
            assert_eq!(distinct.len(), m.to.len(), "distinct racks: {m:?}");
            assert_eq!(m.to.len(), m.from.len());
        }
        // 4 (rack a) leaves t-0 [4,2,3]: broker 1 is the only one in rack a; staying replicas lead.
        assert_eq!(moves[0].to, [2, 3, 1]);
        // 5 (rack b) leaves t-1 [5,1]: broker 2 (rack b).
        assert_eq!(moves[1].to, [1, 2]);
    }

    #[test]
    fn decommission_refusals_name_the_field() {
        let a = assignment(&[("t", 0, &[1, 2, 3])]);
        assert_eq!(plan_decommission(&a, &racks(3), &[1, 2, 3].into()).expect_err("all").field, "brokers");
        // A leaving broker that is down (not among the live ones) is planned like a live one.
        let down = assignment(&[("t", 0, &[1, 9])]);
        assert_eq!(plan_decommission(&down, &racks(3), &[9].into()).expect("down broker").len(), 1);
        assert_eq!(plan_decommission(&a, &racks(3), &[3].into()).expect_err("rf 3 on 2").field, "topic t");
    }

    #[test]
    fn batches_cap_moves_per_broker_and_in_total() {
        let a: Assignment = (0..12).map(|p| (("t".to_string(), p), vec![4, 1 + (p as i32 % 3)])).collect();
        let moves = plan_decommission(&a, &racks(4), &[4].into()).expect("fits");
        let b = batches(&moves, 5, 100);
        assert_eq!(b.iter().map(Vec::len).collect::<Vec<_>>(), [5, 5, 2], "broker 4 is in every move: 5 at a time");
        assert_eq!(b.concat(), moves, "every move once, in order");
        assert_eq!(batches(&moves, 100, 3).iter().map(Vec::len).max(), Some(3));
    }

    #[test]
    fn throttles_merge_with_existing_values_and_never_touch_a_star() {
        let add: BTreeSet<(u32, i32)> = [(0, 4), (1, 5)].into();
        assert_eq!(merge_throttled(None, &add), "0:4,1:5");
        assert_eq!(merge_throttled(Some("2:1"), &add), "0:4,1:5,2:1");
        assert_eq!(merge_throttled(Some("*"), &add), "*");
        assert_eq!(remove_throttled("0:4,1:5,2:1", &add), Some("2:1".to_string()), "someone else's entry stays");
        assert_eq!(remove_throttled("0:4,1:5", &add), None, "nothing left: the config goes");
        assert_eq!(remove_throttled("*", &add), Some("*".to_string()));
        let m = Move { topic: "t".into(), partition: 3, from: vec![4, 1], to: vec![1, 2], bytes: 0 };
        let t = throttled_replicas(&[m]);
        assert_eq!(t["t"], ([(3, 1), (3, 4)].into(), [(3, 2)].into()));
    }

    #[test]
    fn rebalance_evens_replicas_and_leaders_keeping_racks_distinct() {
        // Brokers 1-3 hold everything; 4 (rack a) and 5 (rack b) are empty.
        let a: Assignment = (0..12).map(|p| (("t".to_string(), p), vec![1 + (p as i32 % 3), 1 + ((p as i32 + 1) % 3)])).collect();
        let r = racks(5);
        let moves = plan_rebalance(&a, &r);
        let mut after = a.clone();
        for m in &moves {
            assert_eq!(after[&(m.topic.clone(), m.partition)], m.from);
            after.insert((m.topic.clone(), m.partition), m.to.clone());
            let distinct: BTreeSet<&str> = m.to.iter().map(|b| r[b].as_str()).collect();
            assert_eq!(distinct.len(), m.to.len(), "distinct racks: {m:?}");
        }
        let (replicas, leaders) = counts(&after, 1..=5);
        let spread = |c: &BTreeMap<i32, u32>| c.values().max().unwrap_or(&0) - c.values().min().unwrap_or(&0);
        assert!(spread(&replicas) <= 1, "{replicas:?}");
        assert!(spread(&leaders) <= 1, "{leaders:?}");
        assert_eq!(plan_rebalance(&after, &r), Vec::new(), "balanced: nothing to move");
        assert_eq!(plan_rebalance(&a, &r), moves, "same input, same plan");
    }

    #[test]
    fn rebalance_spreads_each_topic_not_only_the_totals() {
        // Topic k (keyed: it cannot take the scale-up route) sits on brokers 1-3 only, and topic a
        // already used 4-6: totals alone could look even while k stays on three brokers.
        let racks: BTreeMap<i32, String> = (1..=6).map(|b| (b, ["a", "b", "c"][((b - 1) % 3) as usize].to_string())).collect();
        let mut a: Assignment = (0..6).map(|p| (("k".to_string(), p), vec![1 + (p as i32 % 3), 1 + ((p as i32 + 1) % 3)])).collect();
        a.extend((0..6).map(|p| (("a".to_string(), p), vec![4 + (p as i32 % 3), 4 + ((p as i32 + 1) % 3)])));
        let moves = plan_rebalance(&a, &racks);
        let mut after = a.clone();
        for m in &moves {
            after.insert((m.topic.clone(), m.partition), m.to.clone());
        }
        for topic in ["k", "a"] {
            let only: Assignment = after.iter().filter(|((t, _), _)| t == topic).map(|(k, v)| (k.clone(), v.clone())).collect();
            let (replicas, _) = counts(&only, 1..=6);
            assert!(replicas.values().max().unwrap_or(&0) - replicas.values().min().unwrap_or(&0) <= 1, "{topic}: {replicas:?}");
        }
    }

    #[test]
    fn rebalance_onto_a_new_broker_evens_totals_and_topics() {
        let racks: BTreeMap<i32, String> = (1..=7).map(|b| (b, ["a", "b", "c"][((b - 1) % 3) as usize].to_string())).collect();
        let a: Assignment = (0..23)
            .flat_map(|t| (0..12u32).map(move |p| ((format!("t{t:02}"), p), vec![1 + ((p as i32 + t) % 6), 1 + ((p as i32 + t + 1) % 6)])))
            .collect();
        let moves = plan_rebalance(&a, &racks);
        let mut after = a.clone();
        for m in &moves {
            after.insert((m.topic.clone(), m.partition), m.to.clone());
        }
        let (replicas, leaders) = counts(&after, 1..=7);
        let spread = |c: &BTreeMap<i32, u32>| c.values().max().unwrap_or(&0) - c.values().min().unwrap_or(&0);
        assert!(spread(&replicas) <= 1, "{replicas:?}");
        assert!(spread(&leaders) <= 1, "{leaders:?}");
    }

    #[test]
    fn rates_parse_with_units_and_refuse_zero() {
        assert_eq!(parse_rate("10MiB/s"), Ok(10 * 1024 * 1024));
        assert_eq!(parse_rate("500KiB/s"), Ok(512_000));
        assert_eq!(parse_rate("20MB/s"), Ok(20_000_000));
        assert_eq!(parse_rate("1048576"), Ok(1_048_576));
        assert!(parse_rate("0").is_err());
        assert!(parse_rate("fast").is_err());
        assert!(parse_rate("5 parsecs").is_err());
    }
}
