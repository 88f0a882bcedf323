//! The API's authorization and error mapping, served for real on loopback over an in-memory store
//! (no ZooKeeper: nothing here needs it).

use super::*;

const WRITE: &str = "writer-secret-1";
const READ: &str = "reader-secret-1";
const CLIENT: &str = "client-secret-1";

async fn serve() -> (String, Store) {
    let store = crate::store::tests::memory_store().await;
    let reconciler = Arc::new(crate::controller::tests::idle_reconciler(store.clone()));
    let tokens = vec![
        ApiToken::parse(&format!("ops:write:{WRITE}")).expect("token"),
        ApiToken::parse(&format!("dash:read:{READ}")).expect("token"),
        ApiToken::parse(&format!("app:client:{CLIENT}")).expect("token"),
    ];
    let state = AppState::new(store.clone(), reconciler, tokens, Arc::new(crate::credentials::HostTokens::new(b"test key")), super::ApiLimits::default());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    tokio::spawn(async move { axum::serve(listener, router(state)).await });
    (url, store)
}

async fn call(method: reqwest::Method, url: &str, token: Option<&str>, body: Option<serde_json::Value>) -> (u16, serde_json::Value) {
    let mut req = reqwest::Client::new().request(method, url);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    if let Some(b) = body {
        req = req.json(&b);
    }
    let resp = req.send().await.expect("send");
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(serde_json::Value::Null))
}

fn cluster(class: &str) -> serde_json::Value {
    serde_json::json!({ "resources": [
        { "apiVersion": "kafka-fleet.io/v1", "kind": "KafkaCluster", "metadata": { "name": "blue" },
          "spec": { "kafkaVersion": "3.9", "brokers": 3, "availabilityZones": ["a", "b", "c"], "priorityClass": class } },
        { "apiVersion": "kafka-fleet.io/v1", "kind": "Topic", "metadata": { "name": "orders" }, "spec": { "cluster": "blue", "partitions": 6 } }
    ]})
}

#[tokio::test]
async fn tokens_and_scopes_are_enforced() {
    let (url, store) = serve().await;
    let apply = format!("{url}/v1/apply");
    let (code, body) = call(reqwest::Method::POST, &apply, None, Some(cluster("medium"))).await;
    assert_eq!((code, body["error"].as_str()), (401, Some("unauthorized")), "{body}");
    let (code, _) = call(reqwest::Method::POST, &apply, Some("not-a-known-token"), Some(cluster("medium"))).await;
    assert_eq!(code, 401);
    let (code, body) = call(reqwest::Method::POST, &apply, Some(READ), Some(cluster("medium"))).await;
    assert_eq!(code, 403, "a read token cannot write: {body}");
    assert!(store.list(None, None).await.expect("list").is_empty(), "nothing written");
    let (code, _) = call(reqwest::Method::POST, &apply, Some(WRITE), Some(cluster("medium"))).await;
    assert_eq!(code, 200);
    let (code, body) = call(reqwest::Method::GET, &format!("{url}/v1/clusters/blue"), Some(READ), None).await;
    assert_eq!(code, 200, "a read token reads: {body}");
    let view: ResourceView = serde_json::from_value(body).expect("a typed view");
    assert!(matches!(view.effective, Some(EffectiveSpec::Cluster(ref c)) if c.brokers == 3));
}

#[tokio::test]
async fn store_errors_map_to_statuses_with_the_field_named() {
    let (url, _store) = serve().await;
    let apply = format!("{url}/v1/apply");
    call(reqwest::Method::POST, &apply, Some(WRITE), Some(cluster("medium"))).await;
    // Not found.
    let (code, body) = call(reqwest::Method::GET, &format!("{url}/v1/clusters/nope"), Some(READ), None).await;
    assert_eq!((code, body["error"].as_str()), (404, Some("not-found")), "{body}");
    // Invalid: the field is named.
    let mut bad = cluster("medium");
    bad["resources"][0]["spec"]["brokers"] = serde_json::json!(-1);
    let (code, body) = call(reqwest::Method::POST, &apply, Some(WRITE), Some(bad)).await;
    assert_eq!((code, body["field"].as_str()), (422, Some("spec.brokers")), "{body}");
    // A class change that would rewrite an inheriting topic: refused, naming field and topic...
    let (code, body) = call(reqwest::Method::POST, &apply, Some(WRITE), Some(cluster("low"))).await;
    assert_eq!((code, body["field"].as_str()), (422, Some("spec.priorityClass")), "{body}");
    assert!(body["message"].as_str().is_some_and(|m| m.contains("orders")), "{body}");
    // ... and accepted when confirmed.
    let (code, body) = call(reqwest::Method::POST, &format!("{apply}?confirmClassChange=true"), Some(WRITE), Some(cluster("low"))).await;
    assert_eq!(code, 200, "{body}");
    // A stale generation is a conflict.
    let (code, body) = call(reqwest::Method::DELETE, &format!("{url}/v1/clusters/blue?generation=1"), Some(WRITE), None).await;
    assert_eq!((code, body["error"].as_str()), (409, Some("conflict")), "{body}");
}

/// Blue, green (not bound to the route) and route `orders` on blue, applied straight to the store.
async fn route_fixture(store: &Store) {
    let docs = serde_json::json!([
        { "apiVersion": "kafka-fleet.io/v1", "kind": "KafkaCluster", "metadata": { "name": "blue" },
          "spec": { "kafkaVersion": "3.9", "brokers": 3, "availabilityZones": ["a", "b", "c"] } },
        { "apiVersion": "kafka-fleet.io/v1", "kind": "KafkaCluster", "metadata": { "name": "green" },
          "spec": { "kafkaVersion": "3.9", "brokers": 3, "availabilityZones": ["a", "b", "c"] } },
        { "apiVersion": "kafka-fleet.io/v1", "kind": "Route", "metadata": { "name": "orders" }, "spec": { "cluster": "blue" } }
    ]);
    let batch: Vec<Declared> = docs.as_array().expect("list").iter().map(|d| spec::validate_value(d.clone()).expect("valid")).collect();
    store.apply(&batch, "test", false).await.expect("fixture");
}

async fn post_report(url: &str, token: &str, report: &serde_json::Value, credential: Option<&str>) -> (u16, serde_json::Value) {
    let mut req = reqwest::Client::new().post(format!("{url}/v1/clients/reports")).bearer_auth(token).json(report);
    if let Some(c) = credential {
        req = req.header(fleet_api::client::INSTANCE_CREDENTIAL_HEADER, c);
    }
    let resp = req.send().await.expect("send");
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(serde_json::Value::Null))
}

#[tokio::test]
async fn a_client_token_reads_bindings_and_reports_and_nothing_else() {
    let (url, store) = serve().await;
    route_fixture(&store).await;
    let declared = store.list(None, None).await.expect("list").len();
    let report = serde_json::json!({"instance": "i-1", "route": "orders", "role": "producer", "generation": 3, "cluster": "blue",
        "counters": {"sent": 10, "acknowledged": 9, "buffered": 1}});
    let reports = format!("{url}/v1/clients/reports");
    let (code, body) = call(reqwest::Method::POST, &reports, Some(CLIENT), Some(report.clone())).await;
    assert_eq!(code, 200, "{body}");
    let credential = body["credential"].as_str().expect("the first report is answered with the instance's credential").to_string();
    let (code, body) = call(reqwest::Method::POST, &reports, Some(READ), Some(report.clone())).await;
    assert_eq!(code, 403, "a read token cannot report: {body}");
    for path in ["/v1/clusters", "/v1/journal", "/v1/clients"] {
        let (code, body) = call(reqwest::Method::GET, &format!("{url}{path}"), Some(CLIENT), None).await;
        assert_eq!(code, 403, "{path}: {body}");
    }
    let (code, body) = call(reqwest::Method::POST, &format!("{url}/v1/apply"), Some(CLIENT), Some(cluster("medium"))).await;
    assert_eq!(code, 403, "{body}");
    assert_eq!(store.list(None, None).await.expect("list").len(), declared, "nothing written");
    // The binding of an unknown route: 404 naming it, for a client token as for a read token.
    for token in [CLIENT, READ] {
        let (code, body) = call(reqwest::Method::GET, &format!("{url}/v1/routes/nosuch/binding"), Some(token), None).await;
        assert_eq!((code, body["error"].as_str()), (404, Some("not-found")), "{body}");
    }
    let (code, body) = call(reqwest::Method::GET, &format!("{url}/v1/routes/orders/binding?waitMs=60001"), Some(CLIENT), None).await;
    assert_eq!((code, body["field"].as_str()), (422, Some("waitMs")), "{body}");
    // The report is listed, with its expiry.
    let (code, body) = call(reqwest::Method::GET, &format!("{url}/v1/clients?route=orders"), Some(READ), None).await;
    assert_eq!(code, 200, "{body}");
    assert_eq!(body[0]["report"]["counters"]["acknowledged"], 9, "{body}");
    assert!(body[0]["expiresMs"].as_i64() > body[0]["reportedMs"].as_i64(), "{body}");
    assert!(body[0].get("credential").is_none(), "a listing never shows credentials: {body}");
    // Unknown fields and negative counters: 422 naming them, nothing stored.
    for (bad, field) in [
        (serde_json::json!({"instance": "i-2", "route": "orders", "role": "producer", "generation": 1, "colour": "red"}), "colour"),
        (serde_json::json!({"instance": "i-2", "route": "orders", "role": "producer", "generation": 1, "counters": {"sent": -1}}), "counters.sent"),
        (serde_json::json!({"instance": "i-2", "route": "orders", "role": "producer", "generation": -1}), "generation"),
        (serde_json::json!({"instance": "i-2", "route": "orders", "role": "producer", "generation": 1, "cluster": "\u{1b}[31mblue"}), "cluster"),
        (serde_json::json!({"instance": "i-2", "route": "orders", "role": "producer", "generation": 1, "cluster": "x".repeat(100_000)}), "cluster"),
        (serde_json::json!({"instance": "i-2", "route": "orders", "role": "consumer", "generation": 1, "consumer": {"group": "g\r\nforged", "lag": 0}}), "consumer.group"),
        (serde_json::json!({"instance": "i-2", "route": "orders", "role": "consumer", "generation": 1, "consumer": {"group": "g", "drainedCluster": "Blue!"}}), "consumer.drainedCluster"),
        // A cluster the route was never bound to cannot be claimed.
        (serde_json::json!({"instance": "i-2", "route": "orders", "role": "producer", "generation": 1, "cluster": "green"}), "cluster"),
    ] {
        let (code, body) = call(reqwest::Method::POST, &reports, Some(CLIENT), Some(bad)).await;
        assert_eq!(code, 422, "{body}");
        assert!(body["field"].as_str().is_some_and(|f| f.contains(field)) || body["message"].as_str().is_some_and(|m| m.contains(field)), "{field}: {body}");
    }
    // An unknown route: 404.
    let (code, body) = post_report(&url, CLIENT, &serde_json::json!({"instance": "i-3", "route": "nosuch", "role": "producer", "generation": 1}), None).await;
    assert_eq!(code, 404, "{body}");
    let (_, body) = call(reqwest::Method::GET, &format!("{url}/v1/clients"), Some(WRITE), None).await;
    assert_eq!(body.as_array().map(Vec::len), Some(1), "{body}");
    // The instance is bound: without its credential, or from another token, a report is refused;
    // with it, it goes through.
    let moved = serde_json::json!({"instance": "i-1", "route": "orders", "role": "producer", "generation": 4, "cluster": "blue", "counters": {"sent": 11}});
    for (token, cred) in [(CLIENT, None), (CLIENT, Some("wrong")), (WRITE, Some(credential.as_str()))] {
        let (code, body) = post_report(&url, token, &moved, cred).await;
        assert_eq!(code, 403, "{token} {cred:?}: {body}");
    }
    let (code, body) = post_report(&url, CLIENT, &moved, Some(&credential)).await;
    assert_eq!(code, 200, "{body}");
    assert!(body.get("credential").is_none(), "given once: {body}");
    let (_, body) = call(reqwest::Method::GET, &format!("{url}/v1/clients?route=orders"), Some(READ), None).await;
    assert_eq!(body[0]["report"]["generation"], 4, "{body}");
}

#[tokio::test]
async fn client_tokens_report_only_for_their_routes_and_up_to_their_instance_limit() {
    let store = crate::store::tests::memory_store().await;
    route_fixture(&store).await;
    let reconciler = Arc::new(crate::controller::tests::idle_reconciler(store.clone()));
    let tokens = vec![ApiToken::parse("app:client=payments|pay-*:client-secret-2").expect("token"), ApiToken::parse(&format!("all:client:{CLIENT}")).expect("token")];
    let state = AppState::new(store.clone(), reconciler, tokens, Arc::new(crate::credentials::HostTokens::new(b"k")), ApiLimits { max_client_instances: 3, ..ApiLimits::default() });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    tokio::spawn(async move { axum::serve(listener, router(state)).await });
    let report = |instance: &str| serde_json::json!({"instance": instance, "route": "orders", "role": "producer", "generation": 1, "cluster": "blue"});
    let (code, body) = post_report(&url, "client-secret-2", &report("p-1"), None).await;
    assert_eq!(code, 403, "route orders is not the token's: {body}");
    assert!(body["message"].as_str().unwrap_or_default().contains("orders"), "{body}");
    for i in 0..3 {
        let (code, body) = post_report(&url, CLIENT, &report(&format!("c-{i}")), None).await;
        assert_eq!(code, 200, "{body}");
    }
    let (code, body) = post_report(&url, CLIENT, &report("c-3"), None).await;
    assert_eq!((code, body["error"].as_str()), (429, Some("too-many-instances")), "{body}");
    assert_eq!(store.client_reports(Some("orders")).await.expect("reports").len(), 3);
}

#[tokio::test]
async fn a_binding_without_brokers_seen_is_unavailable_not_empty() {
    let (url, _store) = serve().await;
    let apply = format!("{url}/v1/apply");
    let mut docs = cluster("medium");
    docs["resources"].as_array_mut().expect("list").push(serde_json::json!(
        { "apiVersion": "kafka-fleet.io/v1", "kind": "KafkaCluster", "metadata": { "name": "green" },
          "spec": { "kafkaVersion": "3.9", "brokers": 3, "availabilityZones": ["a", "b", "c"] } }));
    docs["resources"].as_array_mut().expect("list").push(serde_json::json!(
        { "apiVersion": "kafka-fleet.io/v1", "kind": "Route", "metadata": { "name": "orders" }, "spec": { "cluster": "blue" } }));
    let (code, body) = call(reqwest::Method::POST, &apply, Some(WRITE), Some(docs)).await;
    assert_eq!(code, 200, "{body}");
    // No ZooKeeper here and no servers seen yet: the binding is unavailable, not empty.
    let (code, body) = call(reqwest::Method::GET, &format!("{url}/v1/routes/orders/binding"), Some(CLIENT), None).await;
    assert_eq!((code, body["error"].as_str()), (503, Some("unavailable")), "{body}");
}

#[tokio::test]
async fn failover_guard_rails_refuse_with_the_field_named_and_write_nothing() {
    let (url, store) = serve().await;
    let docs = serde_json::json!({ "resources": [
        { "apiVersion": "kafka-fleet.io/v1", "kind": "KafkaCluster", "metadata": { "name": "blue" },
          "spec": { "kafkaVersion": "3.9", "brokers": 3, "availabilityZones": ["a", "b", "c"] } },
        { "apiVersion": "kafka-fleet.io/v1", "kind": "KafkaCluster", "metadata": { "name": "green" },
          "spec": { "kafkaVersion": "3.9", "brokers": 3, "availabilityZones": ["a", "b", "c"] } },
        { "apiVersion": "kafka-fleet.io/v1", "kind": "KafkaCluster", "metadata": { "name": "small" },
          "spec": { "kafkaVersion": "3.9", "brokers": 1, "availabilityZones": ["a"] } },
        { "apiVersion": "kafka-fleet.io/v1", "kind": "Topic", "metadata": { "name": "orders" }, "spec": { "cluster": "blue", "partitions": 6 } },
        { "apiVersion": "kafka-fleet.io/v1", "kind": "Route", "metadata": { "name": "events" }, "spec": { "cluster": "blue" } }
    ]});
    let (code, body) = call(reqwest::Method::POST, &format!("{url}/v1/apply"), Some(WRITE), Some(docs)).await;
    assert_eq!(code, 200, "{body}");
    let before = store.fingerprint().await.expect("fingerprint");
    let failover = format!("{url}/v1/operations/failover");
    let fallback = format!("{url}/v1/operations/fallback");
    let cases: Vec<(&str, serde_json::Value, u16, &str, &str)> = vec![
        (&failover, serde_json::json!({"route": "nosuch"}), 404, "route", "not declared"),
        (&failover, serde_json::json!({"route": "events", "to": "blue"}), 422, "to", "already on"),
        (&failover, serde_json::json!({"route": "events", "to": "nosuch"}), 404, "to", "not declared"),
        (&failover, serde_json::json!({"route": "events", "to": "small"}), 422, "to", "replication factor"),
        // The healthcheck cannot be reached here: unknown is never taken for healthy.
        (&failover, serde_json::json!({"route": "events", "to": "green"}), 422, "to", "cannot be told"),
        (&failover, serde_json::json!({"route": "events", "to": "green", "build": true}), 422, "build", "not both"),
        (&failover, serde_json::json!({"route": "events", "to": "green", "sizeUp": 2}), 422, "sizeUp", "only a build"),
        (&failover, serde_json::json!({"route": "events", "sizeUp": -1}), 422, "sizeUp", "out of range"),
        (&failover, serde_json::json!({"route": "events", "deadlineSecs": 0}), 422, "deadlineSecs", "out of range"),
        (&failover, serde_json::json!({"route": "events", "reason": "x".repeat(201)}), 422, "reason", "200"),
        (&failover, serde_json::json!({"route": "events", "colour": "red"}), 422, "", "colour"),
        (&fallback, serde_json::json!({"route": "events"}), 409, "route", "no standby"),
    ];
    for (path, body, status, field, says) in cases {
        let (code, answer) = call(reqwest::Method::POST, path, Some(WRITE), Some(body.clone())).await;
        assert_eq!(code, status, "{body}: {answer}");
        if !field.is_empty() {
            assert_eq!(answer["field"].as_str(), Some(field), "{body}: {answer}");
        }
        assert!(answer.to_string().contains(says), "{body}: the refusal does not say `{says}`: {answer}");
    }
    assert_eq!(store.fingerprint().await.expect("fingerprint"), before, "nothing written");
    assert!(store.operations(None, false).await.expect("operations").is_empty());

    // A build is accepted; a second operation on the route is refused while it runs.
    let (code, created) = call(reqwest::Method::POST, &failover, Some(WRITE), Some(serde_json::json!({"route": "events", "build": true, "sizeUp": 2}))).await;
    assert_eq!(code, 200, "{created}");
    let op: fleet_api::operation::Operation = serde_json::from_value(created["operation"].clone()).expect("operation");
    let fleet_api::operation::OperationSpec::Failover(spec) = &op.spec else { panic!("a failover: {op:?}") };
    assert_eq!((spec.from.as_str(), spec.build.as_ref().map(|b| b.brokers)), ("blue", Some(5)));
    let (code, answer) = call(reqwest::Method::POST, &failover, Some(WRITE), Some(serde_json::json!({"route": "events"}))).await;
    assert_eq!((code, answer["field"].as_str()), (409, Some("route")), "{answer}");
    let (code, answer) = call(reqwest::Method::DELETE, &format!("{url}/v1/routes/events"), Some(WRITE), None).await;
    assert_eq!(code, 409, "a route being moved is kept: {answer}");
    let (code, answer) = call(reqwest::Method::DELETE, &format!("{url}/v1/clusters/blue"), Some(WRITE), None).await;
    assert_eq!(code, 409, "a cluster an operation uses is kept: {answer}");
    let (code, answer) = call(reqwest::Method::POST, &format!("{url}/v1/operations/{}/cancel", op.id), Some(WRITE), None).await;
    assert_eq!(code, 200, "cancellable before the switch: {answer}");
}

#[tokio::test]
async fn a_host_token_reads_its_own_clusters_broker_properties_and_nothing_else() {
    let (url, store) = serve().await;
    let (code, _) = call(reqwest::Method::POST, &format!("{url}/v1/apply"), Some(WRITE), Some(cluster("medium"))).await;
    assert_eq!(code, 200);
    let issued = crate::credentials::HostTokens::new(b"test key");
    let uid = store.get(Kind::KafkaCluster, "blue").await.expect("blue").uid;
    let blue = issued.issue("blue", &uid);
    let (code, body) = call(reqwest::Method::GET, &format!("{url}/v1/clusters/blue/brokers/1/properties"), Some(&blue), None).await;
    assert_eq!(code, 200, "its own cluster's properties: {body}");
    assert!(body["properties"].is_object(), "{body}");
    // Another cluster's properties, anything else of its own cluster, any write: 403.
    for (method, path) in [
        (reqwest::Method::GET, "/v1/clusters/green/brokers/1/properties"),
        (reqwest::Method::GET, "/v1/clusters/blue"),
        (reqwest::Method::GET, "/v1/clusters"),
        (reqwest::Method::GET, "/v1/routes/events/binding"),
        (reqwest::Method::DELETE, "/v1/clusters/blue"),
        (reqwest::Method::POST, "/v1/apply"),
    ] {
        let body = (method == reqwest::Method::POST).then(|| cluster("high"));
        let (code, answer) = call(method.clone(), &format!("{url}{path}"), Some(&blue), body).await;
        assert_eq!(code, 403, "{method} {path}: {answer}");
        assert!(answer["message"].as_str().unwrap_or_default().contains("broker properties"), "{answer}");
    }
    // A token minted with another key, or blue's mac under green's name: not issued here.
    let forged = crate::credentials::HostTokens::new(b"another key").issue("blue", &uid);
    let (code, _) = call(reqwest::Method::GET, &format!("{url}/v1/clusters/blue/brokers/1/properties"), Some(&forged), None).await;
    assert_eq!(code, 401);
    let renamed = blue.replace("fh2.blue.", "fh2.green.");
    let (code, _) = call(reqwest::Method::GET, &format!("{url}/v1/clusters/green/brokers/1/properties"), Some(&renamed), None).await;
    assert_eq!(code, 401);
    let (_, body) = call(reqwest::Method::GET, &format!("{url}/v1/clusters/blue"), Some(READ), None).await;
    assert_eq!(body["document"]["spec"]["priorityClass"], "medium", "nothing was written");
    // Blue deleted and declared again: a new identity, and the old hosts' token no longer opens it.
    store.delete(Kind::Topic, &crate::spec::topic_key("blue", "orders"), "test", None).await.expect("delete topic");
    store.delete(Kind::KafkaCluster, "blue", "test", None).await.expect("delete blue");
    store.remove(Kind::KafkaCluster, "blue").await.expect("remove blue");
    let (code, _) = call(reqwest::Method::POST, &format!("{url}/v1/apply"), Some(WRITE), Some(cluster("medium"))).await;
    assert_eq!(code, 200);
    let (code, body) = call(reqwest::Method::GET, &format!("{url}/v1/clusters/blue/brokers/1/properties"), Some(&blue), None).await;
    assert_eq!(code, 401, "a deleted cluster's host token opens its namesake: {body}");
    let fresh = issued.issue("blue", &store.get(Kind::KafkaCluster, "blue").await.expect("blue").uid);
    let (code, _) = call(reqwest::Method::GET, &format!("{url}/v1/clusters/blue/brokers/1/properties"), Some(&fresh), None).await;
    assert_eq!(code, 200);
}

#[test]
fn token_files_name_the_file_and_line_and_never_echo_a_secret() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("tokens");
    std::fs::write(&path, "# operators\nops:write:s3cret-value-1\n\ndash:read:sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\napp:client=events|orders-*:s3cret-value-2\n").expect("write");
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    let err = ApiToken::load_file(&path).expect_err("readable by others");
    assert!(err.contains("mode 0644") && err.contains("chmod 600"), "{err}");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    let tokens = ApiToken::load_file(&path).expect("loads");
    assert_eq!(tokens[2].routes, RouteScope::Only(vec!["events".into(), "orders-*".into()]));
    assert!(tokens[2].routes.allows("orders-eu") && tokens[2].routes.allows("events") && !tokens[2].routes.allows("payments"));
    assert!(ApiToken::parse("ops:write=events:s3cret-value-1").is_err(), "only client tokens are limited to routes");
    assert!(ApiToken::parse("app:client=Bad_Name:s3cret-value-1").is_err());
    let tokens: Vec<_> = tokens.into_iter().take(2).collect();
    assert_eq!(tokens.iter().map(|t| (t.name.as_str(), t.scope)).collect::<Vec<_>>(), vec![("ops", Scope::Write), ("dash", Scope::Read)]);
    assert_ne!(tokens[0].digest, [0u8; 32], "kept as a digest");

    std::fs::write(&path, "ops:write:s3cret-value-1\nmalformed-line-with-s3cret\n").expect("write");
    let err = ApiToken::load_file(&path).expect_err("malformed");
    assert!(err.contains(&format!("token file {}, line 2", path.display())) && err.contains("NAME:SCOPE:SECRET"), "{err}");
    assert!(!err.contains("s3cret"), "the error echoes the line: {err}");
    std::fs::write(&path, "ops:admin:s3cret-value-1\n").expect("write");
    assert!(ApiToken::load_file(&path).expect_err("scope").contains("line 1: token `ops`: scope `admin`"));
    std::fs::write(&path, "ops:read:sha256:abc\n").expect("write");
    assert!(ApiToken::load_file(&path).expect_err("digest").contains("64 hex digits"));
    let missing = dir.path().join("nope");
    assert!(ApiToken::load_file(&missing).expect_err("unreadable").contains(&format!("token file {}", missing.display())));
}
