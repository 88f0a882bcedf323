//! Client-library workloads the tests and the demo share: a producer group sending sequence-
//! numbered records (every acknowledgement kept with the cluster that gave it), and a consumer
//! group instance reading a route on a thread of its own.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use fleet_client::{ClientConfig, FleetConsumer, FleetProducer, Record};

/// A `FleetConsumer` polling on its own thread: every record as (cluster, payload).
pub struct Reader {
    pub seen: Arc<Mutex<Vec<(String, String)>>>,
    stop: Arc<AtomicBool>,
    /// While set, the thread does not poll (a consumer stuck in its own work).
    paused: Arc<AtomicBool>,
    thread: std::thread::JoinHandle<()>,
}

impl Reader {
    pub fn start(config: ClientConfig) -> Self {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let paused = Arc::new(AtomicBool::new(false));
        let (s, st, pa) = (seen.clone(), stop.clone(), paused.clone());
        let thread = std::thread::spawn(move || {
            let mut consumer = FleetConsumer::new(config).expect("consumer");
            while !st.load(Ordering::SeqCst) {
                if pa.load(Ordering::SeqCst) {
                    std::thread::sleep(Duration::from_millis(50));
                    continue;
                }
                if let Some(r) = consumer.poll(Duration::from_millis(100)) {
                    s.lock().expect("lock").push((r.cluster, String::from_utf8_lossy(&r.payload).into_owned()));
                }
            }
            consumer.close();
        });
        Self { seen, stop, paused, thread }
    }

    pub fn pause(&self) {
        self.paused.store(true, Ordering::SeqCst);
    }

    pub fn resume(&self) {
        self.paused.store(false, Ordering::SeqCst);
    }

    /// Payloads read so far.
    pub fn payloads(&self) -> Vec<String> {
        self.seen.lock().expect("lock").iter().map(|(_, p)| p.clone()).collect()
    }

    /// Closes the consumer (its offsets committed) and joins the thread.
    pub fn stop(self) {
        self.stop.store(true, Ordering::SeqCst);
        self.thread.join().expect("reader thread");
    }
}

/// Producers sending `<prefix><i>-<seq>` records (`per_tick` each every `every`) until stopped.
pub struct SequencedLoad {
    stop: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<u64>,
    acked: Arc<Mutex<BTreeMap<String, String>>>,
}

impl SequencedLoad {
    pub fn start(producers: Vec<Arc<FleetProducer>>, topic: &str, prefix: &str, per_tick: usize, every: Duration) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let acked: Arc<Mutex<BTreeMap<String, String>>> = Arc::default();
        let (st, ack, topic, prefix) = (stop.clone(), acked.clone(), topic.to_string(), prefix.to_string());
        let task = tokio::spawn(async move {
            let mut waiting = Vec::new();
            let mut seq = 0u64;
            while !st.load(Ordering::SeqCst) {
                for (i, p) in producers.iter().enumerate() {
                    for _ in 0..per_tick {
                        let payload = format!("{prefix}{i}-{seq}");
                        if let Ok(d) = p.send_tracked(Record::new(&topic, payload.as_bytes())) {
                            waiting.push((payload, d));
                        }
                        seq += 1;
                    }
                }
                tokio::time::sleep(every).await;
            }
            for (payload, d) in waiting {
                if let Ok(Ok(done)) = tokio::time::timeout(Duration::from_secs(120), d).await {
                    ack.lock().expect("lock").insert(payload, done.cluster);
                }
            }
            seq
        });
        Self { stop, task, acked }
    }

    /// Stops sending, waits for every outstanding record's fate; returns (records sent,
    /// acknowledged payload -> cluster).
    pub async fn stop(self) -> (u64, BTreeMap<String, String>) {
        self.stop.store(true, Ordering::SeqCst);
        let sent = self.task.await.expect("load task");
        let acked = self.acked.lock().expect("lock").clone();
        (sent, acked)
    }
}
