//! The canary: one record produced with `acks=all` to the target's canary topic, then read back
//! from the offset Kafka gave it. Proves the cluster takes and serves writes end to end.

use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{ClientConfig, Message, Offset, TopicPartitionList};

use fleet_api::route::CANARY_TOPIC;

/// Round trip in ms, or why it failed.
pub async fn round_trip(servers: &[String], marker: &str, timeout: Duration) -> Result<u64, String> {
    let started = Instant::now();
    let servers = servers.join(",");
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", &servers)
        .set("acks", "all")
        .set("enable.idempotence", "true")
        .set("message.timeout.ms", timeout.as_millis().to_string())
        .create()
        .map_err(|e| format!("producer: {e}"))?;
    let payload = format!("{marker} {}", crate::store::now_ms());
    let delivery = producer
        .send(FutureRecord::<(), str>::to(CANARY_TOPIC).partition(0).payload(&payload), timeout)
        .await
        .map_err(|(e, _)| format!("produce: {e}"))?;
    let (partition, offset) = (delivery.partition, delivery.offset);
    let deadline = started + timeout;
    tokio::task::spawn_blocking(move || {
        let consumer: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", &servers)
            .set("group.id", "fleet-canary")
            .set("enable.auto.commit", "false")
            .create()
            .map_err(|e| format!("consumer: {e}"))?;
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition_offset(CANARY_TOPIC, partition, Offset::Offset(offset)).map_err(|e| e.to_string())?;
        consumer.assign(&tpl).map_err(|e| format!("assign: {e}"))?;
        while Instant::now() < deadline {
            match consumer.poll(Duration::from_millis(200)) {
                Some(Ok(m)) if m.payload() == Some(payload.as_bytes()) => return Ok(started.elapsed().as_millis() as u64),
                Some(Err(e)) => tracing::debug!(error = %e, "canary read"),
                _ => {}
            }
        }
        Err(format!("the record produced at offset {offset} was not read back within {}s", timeout.as_secs()))
    })
    .await
    .map_err(|e| format!("canary task: {e}"))?
}
