//! The store's contract on in-memory SQLite (no ZooKeeper, no server): fencing, class changes,
//! the journal's bounds, unreadable intents.

use super::*;
use crate::spec;

pub(crate) async fn memory_store() -> Store {
    Store::open("sqlite::memory:").await.expect("in-memory store")
}

pub(crate) fn docs(yaml: &str) -> Vec<Declared> {
    spec::parse_yaml_documents(yaml).expect("yaml").into_iter().map(|v| spec::validate_value(v).expect("valid")).collect()
}

fn cluster(class: &str) -> String {
    format!(
        "apiVersion: kafka-fleet.io/v1\nkind: KafkaCluster\nmetadata: {{ name: blue }}\nspec: {{ kafkaVersion: \"3.9\", brokers: 3, \
         availabilityZones: [a, b, c], priorityClass: {class} }}\n"
    )
}

const TOPICS: &str = "apiVersion: kafka-fleet.io/v1\nkind: Topic\nmetadata: { name: orders }\nspec: { cluster: blue, partitions: 6 }\n---\n\
    apiVersion: kafka-fleet.io/v1\nkind: Topic\nmetadata: { name: pinned }\nspec: { cluster: blue, partitions: 3, replicationFactor: 2, retentionHours: 4 }\n";

fn entry(n: usize) -> NewJournalEntry {
    NewJournalEntry { actor: "test".into(), cluster: "blue".into(), action: "step".into(), detail: serde_json::json!({ "n": n }), outcome: "ok", message: format!("entry {n}") }
}

#[tokio::test]
async fn a_deposed_leaders_writes_are_refused() {
    let store = memory_store().await;
    store.claim_leadership(10).await.expect("first leader");
    let record = PassRecord { cluster: "blue".into(), journal: vec![entry(1)], intent: Some(serde_json::json!({ "launchSeq": 1 })), ..PassRecord::default() };
    store.record(10, &record).await.expect("leader 10 writes");
    // A newer leader claims the store; the old one wakes up and tries to write.
    store.claim_leadership(20).await.expect("second leader");
    let before = store.fingerprint().await.expect("fingerprint");
    let late = PassRecord { cluster: "blue".into(), journal: vec![entry(2)], intent: Some(serde_json::json!({ "launchSeq": 9 })), ..PassRecord::default() };
    assert!(matches!(store.record(10, &late).await, Err(StoreError::Fenced { epoch: 10 })));
    assert!(matches!(store.put_intent_fenced(10, "blue", &serde_json::json!({})).await, Err(StoreError::Fenced { .. })));
    assert!(matches!(store.append_journal_fenced(10, &entry(3)).await, Err(StoreError::Fenced { .. })));
    assert_eq!(store.fingerprint().await.expect("fingerprint"), before, "nothing of the deposed leader landed");
    assert_eq!(store.intent("blue").await.expect("intent"), Some(serde_json::json!({ "launchSeq": 1 })));
    // An older epoch cannot claim it back; the newest keeps writing.
    assert!(matches!(store.claim_leadership(15).await, Err(StoreError::Fenced { .. })));
    store.record(20, &late).await.expect("leader 20 writes");
    assert_eq!(store.leader_epoch().await.expect("epoch"), 20);
}

#[tokio::test]
async fn a_class_change_that_would_rewrite_inheriting_topics_is_refused_unless_confirmed() {
    let store = memory_store().await;
    let mut batch = docs(&cluster("medium"));
    batch.extend(docs(TOPICS));
    store.apply(&batch, "test", false).await.expect("apply");
    let before = store.fingerprint().await.expect("fingerprint");
    // medium -> low: `orders` inherits 4 h retention and would get 2 h; `pinned` pins its own.
    let err = store.apply(&docs(&cluster("low")), "test", false).await.expect_err("refused");
    let StoreError::Invalid(e) = err else { panic!("not a field error: {err:?}") };
    assert_eq!(e.field, "spec.priorityClass");
    assert!(e.message.contains("orders (retention.ms 14400000 -> 7200000)"), "{}", e.message);
    assert!(!e.message.contains("pinned"), "{}", e.message);
    assert!(e.message.contains("--confirm-class-change"), "{}", e.message);
    assert_eq!(store.fingerprint().await.expect("fingerprint"), before, "nothing written");
    // medium -> high would change orders' replication (2 -> 3): refused even when confirmed.
    let options = ApplyOptions { confirm_class_change: true, ..ApplyOptions::default() };
    let err = store.apply_with(&docs(&cluster("high")), "test", options, Default::default()).await.expect_err("refused");
    assert!(matches!(&err, StoreError::Invalid(e) if e.field == "spec.priorityClass" && e.message.contains("replication 2 -> 3")), "{err:?}");
    // Confirmed, the retention change goes through.
    let (r, _) = store.apply_with(&docs(&cluster("low")), "test", options, Default::default()).await.expect("confirmed");
    assert_eq!(r[0].outcome, ApplyOutcome::Configured);
}

#[tokio::test]
async fn a_class_change_is_free_when_every_topic_pins_its_values() {
    let store = memory_store().await;
    let mut batch = docs(&cluster("medium"));
    batch.extend(docs(&TOPICS.replace("spec: { cluster: blue, partitions: 6 }", "spec: { cluster: blue, partitions: 6, replicationFactor: 2, retentionHours: 4 }")));
    store.apply(&batch, "test", false).await.expect("apply");
    store.apply(&docs(&cluster("low")), "test", false).await.expect("nothing inherits: allowed");
}

#[tokio::test]
async fn the_journal_is_bounded() {
    let store = memory_store().await;
    for n in 0..10 {
        store.append_journal(&entry(n)).await.expect("append");
    }
    let dropped = store.prune_journal(JournalRetention { max_rows: 3, max_age_ms: i64::MAX / 2 }).await.expect("prune");
    assert_eq!(dropped, 7);
    let left = store.journal(None, 100, None).await.expect("journal");
    assert_eq!(left.iter().map(|e| e.message.as_str()).collect::<Vec<_>>(), ["entry 9", "entry 8", "entry 7"]);
    let dropped = store.prune_journal(JournalRetention { max_rows: 100, max_age_ms: -1_000 }).await.expect("prune by age");
    assert_eq!(dropped, 3);
}

#[tokio::test]
async fn changed_clusters_and_unreadable_blobs_are_reported() {
    let store = memory_store().await;
    let rev = store.revision().await.expect("revision");
    let mut batch = docs(&cluster("medium"));
    batch.extend(docs(TOPICS));
    store.apply(&batch, "test", false).await.expect("apply");
    assert_eq!(store.clusters_changed_since(rev).await.expect("changed"), ["blue"]);
    assert!(store.clusters_changed_since(store.revision().await.expect("rev")).await.expect("changed").is_empty());
    sqlx::query("INSERT INTO intents (cluster, intent, updated_ms) VALUES ('blue', '{not json', 0)").execute(&store.pool).await.expect("corrupt");
    assert!(store.intent("blue").await.is_err(), "unreadable is not absent");
}
