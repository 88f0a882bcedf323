//! A reconcile driven in-process against a simulated world (the observer and executor seams), on
//! an in-memory store: no ZooKeeper, no provider.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;

use async_trait::async_trait;

use super::*;
use crate::plan::{HostState, ObservedHost, Seen};
use crate::providers::NoDns;
use crate::store::tests::{docs, memory_store};

#[derive(Default)]
struct SimState {
    hosts: Vec<ObservedHost>,
    /// Launched, answered, but not yet listed (EC2's eventual consistency).
    invisible: BTreeSet<String>,
    hosts_made: usize,
    answers_to_lose: usize,
    new_hosts_invisible: bool,
}

#[derive(Default)]
struct SimWorld(Mutex<SimState>);

impl SimWorld {
    fn state(&self) -> std::sync::MutexGuard<'_, SimState> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[async_trait]
impl Observer for SimWorld {
    async fn observe(&self, _desired: &DesiredCluster) -> ObservedCluster {
        let s = self.state();
        let hosts: Vec<ObservedHost> = s.hosts.iter().filter(|h| !s.invisible.contains(&h.instance_id)).cloned().collect();
        ObservedCluster {
            at_ms: now_ms(),
            live_brokers: Seen::Known(BTreeSet::new()),
            registry: Seen::Known(BTreeMap::new()),
            hosts: Seen::Known(hosts),
            topics: Seen::Known(BTreeMap::new()),
            dns: Seen::Known(Vec::new()),
            zk_state: Seen::Known(true),
            quorum: Seen::Unknown("ZooKeeper mode".into()),
        }
    }
}

#[async_trait]
impl Executor for SimWorld {
    async fn apply(&self, _desired: &DesiredCluster, step: &Step) -> Result<String, StepError> {
        let mut s = self.state();
        match step {
            Step::LaunchHost { availability_zone, token, .. } => {
                if let Some(h) = s.hosts.iter().find(|h| h.launch_token.as_deref() == Some(token)) {
                    return Ok(h.instance_id.clone());
                }
                s.hosts_made += 1;
                let id = format!("h{}", s.hosts_made);
                s.hosts.push(ObservedHost {
                    instance_id: id.clone(),
                    availability_zone: availability_zone.clone(),
                    state: HostState::Running,
                    launched_ms: now_ms(),
                    launch_token: Some(token.clone()),
                    private_ip: None,
                    port: None,
                    role: Default::default(),
                });
                if s.new_hosts_invisible {
                    s.invisible.insert(id.clone());
                }
                if s.answers_to_lose > 0 {
                    s.answers_to_lose -= 1;
                    return Err(StepError::Retryable("connection reset after the host was made".into()));
                }
                Ok(id)
            }
            other => Ok(other.describe()),
        }
    }
}

/// A reconciler over `store` that is never started (no ZooKeeper is reached): what in-process
/// tests drive through the seams, and what the API tests serve with.
pub(crate) fn idle_reconciler(store: crate::store::Store) -> Reconciler {
    Reconciler {
        store,
        zk_address: ZkAddress::parse("127.0.0.1:1").expect("address"),
        zk_connector: ZkConnector::default(),
        paths: FleetPaths::new("/test"),
        hosts: Default::default(),
        dns: Arc::new(NoDns),
        settings: ReconcileSettings::default(),
        identity: "test".into(),
        leader: AtomicBool::new(false),
        wake: Notify::new(),
        metrics: Arc::new(Metrics::default()),
        health: Arc::new(crate::observe::health::HealthcheckService { url: "http://127.0.0.1:1".into(), http: reqwest::Client::new() }),
        op_backoff: Default::default(),
        touched: Default::default(),
    }
}

async fn reconciler() -> Reconciler {
    let store = memory_store().await;
    let yaml = "apiVersion: kafka-fleet.io/v1\nkind: KafkaCluster\nmetadata: { name: blue }\nspec: { kafkaVersion: \"3.9\", brokers: 3, availabilityZones: [a, b, c] }\n";
    store.apply(&docs(yaml), "test", false).await.expect("apply");
    store.claim_leadership(1).await.expect("claim");
    idle_reconciler(store)
}

async fn intent(r: &Reconciler) -> ClusterIntent {
    serde_json::from_value(r.store.intent("blue").await.expect("read").expect("some")).expect("intent")
}

#[tokio::test]
async fn a_launch_whose_answer_was_lost_is_retried_with_its_token_and_makes_one_host() {
    let r = reconciler().await;
    let world = SimWorld::default();
    world.state().answers_to_lose = 2;
    let requeue = r.reconcile_with(&world, &world, 1, &|| true, "blue").await.expect("reconcile");
    assert_eq!(requeue, Requeue::After(Duration::from_secs(1)));
    assert_eq!(world.state().hosts_made, 3, "three brokers, three hosts: the lost answers made none twice");
    let intent = intent(&r).await;
    assert_eq!(intent.launches.len(), 3);
    assert!(intent.launches.values().all(|l| l.instance_id.is_some()));
    // Again: the hosts are listed (by token), nothing more is launched.
    r.reconcile_with(&world, &world, 1, &|| true, "blue").await.expect("reconcile");
    assert_eq!(world.state().hosts_made, 3);
}

#[tokio::test]
async fn in_flight_launches_are_remembered_with_their_zone() {
    let r = reconciler().await;
    let world = SimWorld::default();
    world.state().new_hosts_invisible = true;
    r.reconcile_with(&world, &world, 1, &|| true, "blue").await.expect("reconcile");
    let zones: BTreeSet<String> = intent(&r).await.launches.values().map(|l| l.availability_zone.clone()).collect();
    assert_eq!(zones, ["a", "b", "c"].into_iter().map(String::from).collect());
    // Still invisible: nothing is launched again, and the cluster is looked at again soon.
    let requeue = r.reconcile_with(&world, &world, 1, &|| true, "blue").await.expect("reconcile");
    assert_eq!(world.state().hosts_made, 3);
    assert!(matches!(requeue, Requeue::After(d) if d <= Duration::from_secs(2)), "{requeue:?}");
    // One becomes visible and is later terminated by someone else: the replacement goes to its zone.
    let (gone_zone, gone_id) = {
        let mut s = world.state();
        s.invisible.clear();
        let h = &mut s.hosts[1];
        h.state = HostState::Terminated;
        (h.availability_zone.clone(), h.instance_id.clone())
    };
    r.reconcile_with(&world, &world, 1, &|| true, "blue").await.expect("reconcile");
    let s = world.state();
    assert_eq!(s.hosts_made, 4);
    let newest = s.hosts.last().expect("host");
    assert_eq!(newest.availability_zone, gone_zone, "replaces {gone_id} in its zone");
}

#[tokio::test]
async fn a_deposed_leader_records_nothing() {
    let r = reconciler().await;
    let world = SimWorld::default();
    r.reconcile_with(&world, &world, 1, &|| true, "blue").await.expect("leader 1");
    r.store.claim_leadership(2).await.expect("leader 2");
    let before = r.store.fingerprint().await.expect("fingerprint");
    let intent_before = r.store.intent("blue").await.expect("intent");
    world.state().hosts.clear();
    let late = r.reconcile_with(&world, &world, 1, &|| true, "blue").await;
    assert!(matches!(late, Err(StoreError::Fenced { epoch: 1 })), "{late:?}");
    assert_eq!(r.store.fingerprint().await.expect("fingerprint"), before);
    assert_eq!(r.store.intent("blue").await.expect("intent"), intent_before);
}

#[tokio::test]
async fn an_unreadable_intent_stops_the_cluster_instead_of_starting_over() {
    let r = reconciler().await;
    let world = SimWorld::default();
    r.store.put_intent("blue", &serde_json::json!({ "launches": "not a map" })).await.expect("corrupt");
    let requeue = r.reconcile_with(&world, &world, 1, &|| true, "blue").await.expect("reconcile");
    assert_eq!(requeue, Requeue::Failed(ErrorClass::Terminal));
    assert_eq!(world.state().hosts_made, 0, "nothing launched on a default intent");
    let status = r.store.status("blue").await.expect("status").expect("some");
    assert_eq!(status["phase"], "Failed");
}
