//! `spin:redis` and the Redis trigger against real Redis servers: each
//! command and error variant, the allow-list, delivery to fresh instances
//! in order, fan-out, reconnection after a restart, and load-time refusals.

use crate::helpers::{TestApp, client};
use serde_json::{Value, json};
use spindrive_testkit::{Host, RedisServer};
use std::time::{Duration, Instant};

/// An app with the redis-probe component allowed to reach `port` only.
fn probe_app(port: u16) -> TestApp {
    TestApp::new(&format!(
        r#"
spin_manifest_version = 2
[application]
name = "redis-probe"
[[trigger.http]]
route = "/..."
component = "redis-probe"
[component.redis-probe]
source = "{{redis_probe}}"
allowed_outbound_hosts = ["redis://127.0.0.1:{port}"]
"#
    ))
}

async fn call(host: &Host, command: Value) -> Value {
    client()
        .post(host.url("/"))
        .json(&command)
        .send()
        .await
        .expect("request sent")
        .json()
        .await
        .expect("a JSON body")
}

#[tokio::test]
async fn every_command_answers_as_on_spin() {
    let redis = RedisServer::start().unwrap();
    let url = redis.url().unwrap();
    let app = probe_app(redis.port);
    let host = app.host().start().unwrap();
    let op = |op: &str, extra: Value| {
        let mut command = json!({ "address": url, "op": op });
        command
            .as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        call(&host, command)
    };

    assert_eq!(op("get", json!({"key": "k"})).await, json!({"ok": null}));
    assert_eq!(
        op("set", json!({"key": "k", "payload": "v"})).await,
        json!({"ok": null})
    );
    assert_eq!(op("get", json!({"key": "k"})).await, json!({"ok": "v"}));
    assert_eq!(op("incr", json!({"key": "n"})).await, json!({"ok": 1}));
    assert_eq!(op("incr", json!({"key": "n"})).await, json!({"ok": 2}));
    let not_a_number = op("incr", json!({"key": "k"})).await;
    assert!(
        not_a_number["error"]["other"]
            .as_str()
            .unwrap()
            .contains("not an integer"),
        "{not_a_number}"
    );

    assert_eq!(
        op("sadd", json!({"key": "s", "values": ["a", "b", "a"]})).await,
        json!({"ok": 2})
    );
    assert_eq!(
        op("smembers", json!({"key": "s"})).await,
        json!({"ok": ["a", "b"]})
    );
    assert_eq!(
        op("srem", json!({"key": "s", "values": ["a", "z"]})).await,
        json!({"ok": 1})
    );
    // A set command on a string is the server's WRONGTYPE: `other`, as in
    // Spin (its `type-error` is for replies it cannot convert).
    let wrong_type = op("sadd", json!({"key": "k", "values": ["x"]})).await;
    assert!(
        wrong_type["error"]["other"]
            .as_str()
            .unwrap()
            .contains("WRONGTYPE"),
        "{wrong_type}"
    );
    assert_eq!(
        op("del", json!({"values": ["k", "n", "missing"]})).await,
        json!({"ok": 2})
    );

    let execute =
        |command: &str, arguments: Value| op("execute", json!({"command": command, "arguments": arguments}));
    assert_eq!(
        execute("SET", json!(["e", 7])).await,
        json!({"ok": [{"status": "OK"}]})
    );
    assert_eq!(
        execute("INCRBY", json!(["e", 3])).await,
        json!({"ok": [{"int64": 10}]})
    );
    assert_eq!(
        execute("GET", json!(["missing"])).await,
        json!({"ok": [{"nil": null}]})
    );
    execute("RPUSH", json!(["l", "x", "y"])).await;
    assert_eq!(
        execute("LRANGE", json!(["l", 0, -1])).await,
        json!({"ok": [{"binary": "x"}, {"binary": "y"}]})
    );
    let unknown = execute("NOSUCHCOMMAND", json!([])).await;
    assert!(unknown["error"]["other"].is_string(), "{unknown}");

    assert_eq!(
        op("publish", json!({"key": "channel", "payload": "hi"})).await,
        json!({"ok": null})
    );
}

#[tokio::test]
async fn an_address_outside_the_allow_list_is_invalid_and_reported() {
    let redis = RedisServer::start().unwrap();
    let url = redis.url().unwrap();
    let app = probe_app(redis.port);
    let host = app.host().start().unwrap();
    let other_port = url.replace(&format!(":{}", redis.port), ":1");
    for address in [other_port.as_str(), "redis://localhost", "not a url"] {
        let answer = call(&host, json!({ "address": address, "op": "open" })).await;
        assert_eq!(answer, json!({"error": "invalid-address"}), "{address}");
    }
    host.stderr
        .wait_for(
            "disallowed destination 'redis://127.0.0.1:1'",
            Duration::from_secs(5),
        )
        .unwrap();
    // Allowed, but nothing listens: a connection failure is `other`.
    redis.stop().unwrap();
    let refused = call(&host, json!({ "address": url, "op": "open" })).await;
    assert!(refused["error"]["other"].is_string(), "{refused}");
}

/// An app whose `subscriber-a` and `subscriber-b` (the same fixture, each
/// logging to its own list) listen on `channel` of the Redis at `url`.
fn subscriber_app(url: &str, channel: &str) -> TestApp {
    let component = |id: &str| {
        format!(
            r#"
[[trigger.redis]]
channel = "{{{{ channel }}}}"
component = "{id}"
[component.{id}]
source = "{{redis_subscriber}}"
allowed_outbound_hosts = ["redis://127.0.0.1:{{{{ redis_port }}}}"]
[component.{id}.variables]
redis_url = "{{{{ redis_url }}}}"
log_key = "{id}"
"#
        )
    };
    let port = url.rsplit(':').next().unwrap();
    TestApp::new(&format!(
        r#"
spin_manifest_version = 2
[application]
name = "subscribers"
[application.trigger.redis]
address = "{{{{ redis_url }}}}"
[variables]
redis_url = {{ default = "{url}" }}
redis_port = {{ default = "{port}" }}
channel = {{ default = "{channel}" }}
[[trigger.http]]
route = "/..."
static_response = {{ status_code = 204 }}
{}{}"#,
        component("subscriber-a"),
        component("subscriber-b")
    ))
}

async fn connect(url: &str) -> redis::aio::MultiplexedConnection {
    redis::Client::open(url)
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap()
}

/// Waits until the list `key` holds `count` entries; returns them.
async fn wait_for_list(
    connection: &mut redis::aio::MultiplexedConnection,
    key: &str,
    count: usize,
) -> Vec<String> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let entries: Vec<String> = redis::cmd("LRANGE")
            .arg(key)
            .arg(0)
            .arg(-1)
            .query_async(connection)
            .await
            .unwrap();
        if entries.len() >= count || Instant::now() > deadline {
            return entries;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Publishes `payload` until some subscriber receives it (a subscription
/// may still be on its way after a start or a reconnection).
async fn publish_until_heard(
    connection: &mut redis::aio::MultiplexedConnection,
    channel: &str,
    payload: &str,
) -> u32 {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let receivers: u32 = redis::cmd("PUBLISH")
            .arg(channel)
            .arg(payload)
            .query_async(connection)
            .await
            .unwrap();
        if receivers > 0 {
            return receivers;
        }
        assert!(Instant::now() < deadline, "nobody subscribed to {channel}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn each_message_reaches_every_subscriber_in_order_in_a_fresh_instance() {
    let redis = RedisServer::start().unwrap();
    let url = redis.url().unwrap();
    let app = subscriber_app(&url, "jobs");
    let host = app.host().start().unwrap();
    host.stdout
        .wait_for(
            &format!("Active Channels on 127.0.0.1:{}:", redis.port),
            Duration::from_secs(10),
        )
        .unwrap();
    host.stdout
        .wait_for(
            &format!("\t127.0.0.1:{}/jobs: [subscriber-a,subscriber-b]", redis.port),
            Duration::from_secs(5),
        )
        .unwrap();
    assert!(
        !host.stdout.text().contains(&redis.url().unwrap()),
        "the password was printed"
    );

    let mut connection = connect(&url).await;
    // One Redis connection: the subscription. Each message goes to it once.
    assert_eq!(publish_until_heard(&mut connection, "jobs", "sleep:200").await, 1);
    let mut expected = vec!["1:sleep:200".to_owned()];
    for n in 0..40 {
        // A failing handler is logged and its message dropped; the next
        // messages still arrive.
        let payload = if n == 20 {
            "fail".to_owned()
        } else {
            format!("m{n}")
        };
        let _: u32 = redis::cmd("PUBLISH")
            .arg("jobs")
            .arg(&payload)
            .query_async(&mut connection)
            .await
            .unwrap();
        if n != 20 {
            expected.push(format!("1:{payload}"));
        }
    }
    for list in ["subscriber-a", "subscriber-b"] {
        let received = wait_for_list(&mut connection, list, expected.len()).await;
        assert_eq!(received, expected, "{list}: in order, each in a fresh instance");
    }
    host.stderr
        .wait_for("Component subscriber-a handler failed", Duration::from_secs(5))
        .unwrap();
    assert!(host.stderr.text().contains("refused on purpose"));
}

#[tokio::test]
async fn the_trigger_reconnects_after_redis_restarts_while_http_keeps_serving() {
    let redis = RedisServer::start().unwrap();
    let url = redis.url().unwrap();
    let app = subscriber_app(&url, "wake");
    let host = app.host().start().unwrap();
    let mut connection = connect(&url).await;
    publish_until_heard(&mut connection, "wake", "before").await;
    assert_eq!(
        wait_for_list(&mut connection, "subscriber-a", 1).await,
        ["1:before"]
    );

    redis.stop().unwrap();
    host.stderr
        .wait_for("disconnected from 127.0.0.1", Duration::from_secs(10))
        .unwrap();
    let status = client().get(host.url("/anything")).send().await.unwrap().status();
    assert_eq!(status, 204, "HTTP serves while Redis is down");
    tokio::time::sleep(Duration::from_millis(500)).await;
    redis.restart().unwrap();

    let mut connection = connect(&url).await;
    publish_until_heard(&mut connection, "wake", "after").await;
    assert_eq!(
        wait_for_list(&mut connection, "subscriber-a", 1).await,
        ["1:after"]
    );
    assert!(host.stderr.text().contains("reconnecting in"));
    assert!(!host.stderr.text().contains(&url), "the password was logged");
    assert_eq!(
        host.stdout.text().matches("Active Channels on").count(),
        2,
        "subscribed once at start and once after the restart"
    );
}

#[tokio::test]
async fn a_host_started_before_redis_subscribes_once_it_is_up() {
    let redis = RedisServer::start().unwrap();
    let url = redis.url().unwrap();
    redis.stop().unwrap();
    let app = subscriber_app(&url, "late");
    let host = app.host().start().unwrap();
    host.stderr
        .wait_for("cannot connect to 127.0.0.1", Duration::from_secs(10))
        .unwrap();
    redis.restart().unwrap();
    let mut connection = connect(&url).await;
    publish_until_heard(&mut connection, "late", "hello").await;
    assert_eq!(
        wait_for_list(&mut connection, "subscriber-b", 1).await,
        ["1:hello"]
    );
}

#[test]
fn a_component_without_the_redis_export_is_refused_at_load() {
    let app = TestApp::new(
        r#"
spin_manifest_version = 2
[application]
name = "wrong-export"
[[trigger.redis]]
address = "redis://127.0.0.1:6379"
channel = "c"
component = "probe"
[component.probe]
source = "{probe}"
"#,
    );
    let output = app.host().expect_startup_failure().unwrap();
    assert!(
        output.contains(
            "component \"probe\" is on a Redis trigger but does not export spin:redis/inbound-redis@3.0.0"
        ),
        "{output}"
    );
}

#[test]
fn a_trigger_without_an_address_is_refused_at_load() {
    let app = TestApp::new(
        r#"
spin_manifest_version = 2
[application]
name = "no-address"
[[trigger.redis]]
channel = "c"
component = "sub"
[component.sub]
source = "{redis_subscriber}"
"#,
    );
    let output = app.host().expect_startup_failure().unwrap();
    assert!(output.contains("no Redis address"), "{output}");
}
