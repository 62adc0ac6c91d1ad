//! `spin:postgres` against a real server: every type at its edges, errors
//! with SQLSTATE, Spin's refusals, pooling, recovery, the allow-list, and
//! the `spin-compat` cases.

use crate::helpers::{TestApp, client};
use serde_json::{Value, json};
use spindrive_testkit::{Host, HostBuilder, PrivateServer, TestDatabase};
use std::time::{Duration, Instant};

/// An app with the pg-probe component allowed to reach `port`.
fn pg_app(port: u16) -> TestApp {
    TestApp::new(&format!(
        r#"
spin_manifest_version = 2
[application]
name = "pg"
[variables]
pg_port = {{ default = "{port}" }}
[[trigger.http]]
route = "/..."
component = "pg-probe"
[component.pg-probe]
source = "{{pg_probe}}"
allowed_outbound_hosts = ["postgres://127.0.0.1:{{{{ pg_port }}}}"]
"#
    ))
}

fn port_of(url: &str) -> u16 {
    url.rsplit_once(':')
        .and_then(|(_, rest)| rest.split('/').next())
        .and_then(|p| p.parse().ok())
        .expect("a URL with a port")
}

struct Pg {
    db: TestDatabase,
    host: Host,
}

impl Pg {
    fn start(configure: impl FnOnce(HostBuilder) -> HostBuilder) -> (TestApp, Pg) {
        let db = TestDatabase::create().unwrap();
        let app = pg_app(port_of(&db.url()));
        let host = configure(app.host()).start().unwrap();
        (app, Pg { db, host })
    }

    async fn run(&self, mode: &str, statement: &str, params: Value) -> Value {
        run(&self.host, &self.db.url(), mode, statement, params).await
    }
}

async fn run(host: &Host, address: &str, mode: &str, statement: &str, params: Value) -> Value {
    let response = client()
        .post(host.url("/"))
        .json(&json!({ "address": address, "statement": statement, "params": params, "mode": mode }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    response.json().await.unwrap()
}

fn float(value: f64) -> String {
    value.to_string()
}

/// (column type, parameter written, value read back).
fn cases() -> Vec<(&'static str, Value, Value)> {
    let same = |ty: &'static str, v: Value| (ty, v.clone(), v);
    // 10 MiB of bytea, as hex.
    let big = "ab".repeat(10 << 20);
    vec![
        same("boolean", json!({ "boolean": true })),
        same("boolean", json!({ "boolean": false })),
        same("smallint", json!({ "int16": i16::MIN })),
        same("smallint", json!({ "int16": i16::MAX })),
        same("integer", json!({ "int32": i32::MIN })),
        same("integer", json!({ "int32": i32::MAX })),
        same("bigint", json!({ "int64": i64::MIN })),
        same("bigint", json!({ "int64": i64::MAX })),
        // `"char"` takes an int8 parameter but reads as `unsupported`, as on Spin.
        (
            "\"char\"",
            json!({ "int8": -128 }),
            json!({ "unsupported": "80" }),
        ),
        same("real", json!({ "floating32": "NaN" })),
        same("real", json!({ "floating32": "inf" })),
        same("real", json!({ "floating32": "-inf" })),
        same("real", json!({ "floating32": f32::MIN_POSITIVE.to_string() })),
        same("double precision", json!({ "floating64": "NaN" })),
        same("double precision", json!({ "floating64": "-inf" })),
        same("double precision", json!({ "floating64": float(f64::MAX) })),
        same("double precision", json!({ "floating64": float(-0.1) })),
        same("text", json!({ "str": "" })),
        same("text", json!({ "str": "héllo, wörld ✓ 🦀 中文 \u{10FFFF}" })),
        same("varchar(10)", json!({ "str": "ünïcödé" })),
        ("char(5)", json!({ "str": "ab" }), json!({ "str": "ab   " })),
        same("bytea", json!({ "binary": "" })),
        same("bytea", json!({ "binary": "00ff10" })),
        same("bytea", json!({ "binary": big })),
        same("date", json!({ "date": [1969, 12, 31] })),
        same("date", json!({ "date": [1, 1, 1] })),
        same("date", json!({ "date": [9999, 12, 31] })),
        same("time", json!({ "time": [0, 0, 0, 0] })),
        same("time", json!({ "time": [23, 59, 59, 999_999_000] })),
        same("timestamp", json!({ "datetime": [1969, 7, 20, 20, 17, 40, 0] })),
        same("timestamp", json!({ "datetime": [1900, 1, 1, 0, 0, 0, 1000] })),
        same(
            "timestamp",
            json!({ "datetime": [2038, 1, 19, 3, 14, 8, 123_456_000] }),
        ),
        same("uuid", json!({ "uuid": "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11" })),
        (
            "uuid",
            json!({ "uuid": "A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11" }),
            json!({ "uuid": "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11" }),
        ),
        (
            "jsonb",
            json!({ "jsonb": "{ \"a\" : [1, 2.5, {\"b\": null}], \"ü\": \"✓\" }" }),
            json!({ "jsonb": "{\"a\":[1,2.5,{\"b\":null}],\"ü\":\"✓\"}" }),
        ),
        same("numeric", json!({ "decimal": "12.340" })),
        same("numeric", json!({ "decimal": "-0.000001" })),
        same("numeric", json!({ "decimal": "1234567890123456789012345678" })),
        same(
            "numeric(28,10)",
            json!({ "decimal": "-123456789012345678.1234567890" }),
        ),
        same(
            "int4range",
            json!({ "range-int32": [[1, "inclusive"], [5, "exclusive"]] }),
        ),
        (
            "int4range",
            json!({ "range-int32": [[1, "exclusive"], [5, "inclusive"]] }),
            json!({ "range-int32": [[2, "inclusive"], [6, "exclusive"]] }),
        ),
        same("int4range", json!({ "range-int32": [null, [0, "exclusive"]] })),
        same(
            "int8range",
            json!({ "range-int64": [[i64::MIN, "inclusive"], null] }),
        ),
        same("int8range", json!({ "range-int64": [null, null] })),
        same(
            "numrange",
            json!({ "range-decimal": [["1.5", "exclusive"], ["2.25", "inclusive"]] }),
        ),
        same(
            "numrange",
            json!({ "range-decimal": [null, ["-3", "exclusive"]] }),
        ),
        same("integer[]", json!({ "array-int32": [] })),
        same("integer[]", json!({ "array-int32": [1, null, i32::MIN] })),
        same("bigint[]", json!({ "array-int64": [i64::MAX, null] })),
        same("numeric[]", json!({ "array-decimal": ["1.10", null, "-2"] })),
        same("text[]", json!({ "array-str": ["a", null, "ünï", ""] })),
        same(
            "interval",
            json!({ "interval": { "micros": 1, "days": 2, "months": 14 } }),
        ),
        same(
            "interval",
            json!({ "interval": { "micros": -86_399_999_999i64, "days": -40, "months": -1 } }),
        ),
        ("integer", json!("db-null"), json!("db-null")),
        ("jsonb", json!("db-null"), json!("db-null")),
    ]
}

#[tokio::test]
async fn every_type_round_trips_at_its_edges() {
    let (_app, pg) = Pg::start(|h| h);
    for (index, (ty, written, expected)) in cases().into_iter().enumerate() {
        let table = format!("t{index}");
        let created = pg
            .run("execute", &format!("CREATE TABLE {table} (v {ty})"), json!([]))
            .await;
        assert_eq!(created["affected"], 0, "{ty}: {created}");
        let inserted = pg
            .run(
                "execute",
                &format!("INSERT INTO {table} VALUES ($1)"),
                json!([written]),
            )
            .await;
        assert_eq!(inserted["affected"], 1, "{ty} {written}: {inserted}");
        for mode in ["query", "query-sync"] {
            let read = pg.run(mode, &format!("SELECT v FROM {table}"), json!([])).await;
            assert_eq!(read["rows"], json!([[expected]]), "{ty} via {mode}");
        }
        // Parameters filter as well as insert.
        if expected != json!("db-null") && !ty.starts_with("double") && !ty.starts_with("real") {
            let found = pg
                .run(
                    "query",
                    &format!("SELECT count(*)::integer FROM {table} WHERE v = $1"),
                    json!([written]),
                )
                .await;
            if ty != "char(5)" {
                assert_eq!(found["rows"], json!([[{ "int32": 1 }]]), "{ty} equality: {found}");
            }
        }
    }
}

#[tokio::test]
async fn columns_carry_names_and_spin_types() {
    let (_app, pg) = Pg::start(|h| h);
    let read = pg
        .run(
            "query",
            "SELECT 1::int2 AS a, 'x'::text AS b, now()::timestamp AS c, '{}'::jsonb AS d, \
             '1 day'::interval AS e, '1.5'::numeric AS f, ARRAY['x']::varchar[] AS g, 'a'::name AS h",
            json!([]),
        )
        .await;
    assert_eq!(
        read["columns"],
        json!([
            { "name": "a", "type": "int16" },
            { "name": "b", "type": "str" },
            { "name": "c", "type": "datetime" },
            { "name": "d", "type": "jsonb" },
            { "name": "e", "type": "interval" },
            { "name": "f", "type": "decimal" },
            { "name": "g", "type": "arraystr" },
            { "name": "h", "type": "other(name)" },
        ])
    );
    // Spin takes column names from the first row: none when there are none.
    let empty = pg.run("query", "SELECT 1 AS a WHERE false", json!([])).await;
    assert_eq!(empty, json!({ "columns": [], "rows": [] }));
}

#[tokio::test]
async fn decimals_beyond_spins_reach_carry_over_with_a_warning() {
    let (_app, pg) = Pg::start(|h| h.allow_compat_warnings());
    pg.run("execute", "CREATE TABLE d (v numeric)", json!([])).await;
    for value in [
        "123456789012345678901234567890",
        "-12345678901234567890.1234567890",
        "NaN",
        "-Infinity",
    ] {
        let inserted = pg
            .run(
                "execute",
                "INSERT INTO d VALUES ($1)",
                json!([{ "decimal": value }]),
            )
            .await;
        assert_eq!(inserted["affected"], 1, "{value}: {inserted}");
        let read = pg
            .run(
                "query",
                "SELECT v FROM d WHERE v = $1",
                json!([{ "decimal": value }]),
            )
            .await;
        assert_eq!(read["rows"], json!([[{ "decimal": value }]]), "{value}");
    }
    pg.host
        .stderr
        .wait_for(
            "spin-compat: decimal 123456789012345678901234567890 exceeds",
            Duration::from_secs(5),
        )
        .unwrap();
}

#[tokio::test]
async fn sql_errors_carry_sqlstate() {
    let (_app, pg) = Pg::start(|h| h);
    pg.run(
        "execute",
        "CREATE TABLE u (name text CONSTRAINT u_name_key UNIQUE)",
        json!([]),
    )
    .await;
    pg.run("execute", "INSERT INTO u VALUES ('a')", json!([])).await;
    let duplicate = pg.run("execute", "INSERT INTO u VALUES ('a')", json!([])).await;
    let db = &duplicate["error"]["query-failed"]["db-error"];
    assert_eq!(db["code"], "23505", "{duplicate}");
    assert_eq!(db["severity"], "ERROR");
    assert!(
        db["extras"]
            .as_array()
            .unwrap()
            .contains(&json!(["constraint", "u_name_key"])),
        "{db}"
    );
    assert!(db["detail"].as_str().unwrap().contains("already exists"), "{db}");

    let syntax = pg.run("query", "SELEKT 1", json!([])).await;
    assert_eq!(
        syntax["error"]["query-failed"]["db-error"]["code"], "42601",
        "{syntax}"
    );
    let missing = pg.run("query-sync", "SELECT * FROM nowhere", json!([])).await;
    assert_eq!(
        missing["error"]["query-failed"]["db-error"]["code"], "42P01",
        "{missing}"
    );
}

#[tokio::test]
async fn spins_refusals_are_reproduced() {
    let (_app, pg) = Pg::start(|h| h);
    pg.run(
        "execute",
        "CREATE TABLE r (tz timestamptz, big bigint, j json)",
        json!([]),
    )
    .await;
    // A timestamptz is written with an epoch `timestamp`, but never read.
    let written = pg
        .run(
            "execute",
            "INSERT INTO r VALUES ($1, 1, '{\"a\": 1}')",
            json!([{ "timestamp": 0 }]),
        )
        .await;
    assert_eq!(written["affected"], 1, "{written}");
    let read = pg.run("query", "SELECT tz FROM r", json!([])).await;
    let text = read["error"]["query-failed"]["text"]
        .as_str()
        .expect("query-failed(text)");
    assert!(text.contains("timestamptz"), "{text}");
    // `datetime` is accepted only for `timestamp`, never `timestamptz`.
    let wrong = pg
        .run(
            "execute",
            "INSERT INTO r (tz) VALUES ($1)",
            json!([{ "datetime": [2000, 1, 1, 0, 0, 0, 0] }]),
        )
        .await;
    assert!(
        wrong["error"]["query-failed"]["text"]
            .as_str()
            .unwrap()
            .contains("WrongType"),
        "{wrong}"
    );

    let narrow = pg
        .run(
            "execute",
            "INSERT INTO r (big) VALUES ($1)",
            json!([{ "int32": 5 }]),
        )
        .await;
    let text = narrow["error"]["query-failed"]["text"]
        .as_str()
        .expect("query-failed(text)");
    assert!(
        text.contains(r#"WrongType { postgres: Int8, rust: "i32" }"#),
        "{text}"
    );
    assert!(text.contains("ToSql(0)"), "{text}");

    let json_read = pg
        .run("query", "SELECT j FROM r WHERE j IS NOT NULL", json!([]))
        .await;
    assert_eq!(json_read["columns"][0]["type"], "other(json)");
    assert!(json_read["rows"][0][0]["unsupported"].is_string(), "{json_read}");

    let matrix = pg.run("query", "SELECT ARRAY[[1,2],[3,4]]", json!([])).await;
    let text = matrix["error"]["query-failed"]["text"]
        .as_str()
        .expect("query-failed(text)");
    assert!(
        text.contains("dimensions"),
        "multi-dimensional arrays are refused as on Spin: {text}"
    );

    // A malformed parameter is `bad-parameter` in query, but
    // `value-conversion-failed` in execute.
    let bad_uuid = json!([{ "uuid": "not-a-uuid" }]);
    let query = pg.run("query", "SELECT $1::uuid", bad_uuid.clone()).await;
    assert!(
        query["error"]["bad-parameter"]
            .as_str()
            .unwrap()
            .contains("invalid UUID"),
        "{query}"
    );
    let execute = pg.run("execute", "SELECT $1::uuid", bad_uuid).await;
    assert!(
        execute["error"]["value-conversion-failed"].is_string(),
        "{execute}"
    );
}

#[tokio::test]
async fn a_denied_postgres_host_gets_spins_error() {
    let (_app, pg) = Pg::start(|h| h);
    let elsewhere = "postgres://postgres@127.0.0.1:1/postgres";
    for mode in ["query", "query-sync"] {
        let denied = pg.run_at(elsewhere, mode).await;
        assert_eq!(
            denied["error"]["connection-failed"], "address postgres://127.0.0.1:1 is not permitted",
            "{mode}: {denied}"
        );
    }
    pg.host
        .stderr
        .wait_for(
            "To allow this request, add 'allowed_outbound_hosts = [\"postgres://127.0.0.1:1\"]'",
            Duration::from_secs(5),
        )
        .unwrap();
}

impl Pg {
    async fn run_at(&self, address: &str, mode: &str) -> Value {
        run(&self.host, address, mode, "SELECT 1", json!([])).await
    }
}

#[tokio::test]
async fn the_sync_builder_checks_the_allow_list_and_warns() {
    let (_app, pg) = Pg::start(|h| h.allow_compat_warnings());
    let denied = pg
        .run_at("postgres://postgres@127.0.0.1:1/postgres", "build-sync")
        .await;
    assert!(
        denied["error"]["connection-failed"]
            .as_str()
            .unwrap()
            .contains("not permitted"),
        "{denied}"
    );
    pg.host
        .stderr
        .wait_for(
            "spin-compat: the synchronous `connection-builder.build`",
            Duration::from_secs(5),
        )
        .unwrap();
    let allowed = pg.run("build-sync", "SELECT 7::integer", json!([])).await;
    assert_eq!(allowed["rows"], json!([[{ "int32": 7 }]]));
}

#[tokio::test]
async fn a_sync_query_with_no_rows_is_answered_with_a_warning() {
    let (_app, pg) = Pg::start(|h| h.allow_compat_warnings());
    let empty = pg.run("query-sync", "SELECT 1 WHERE false", json!([])).await;
    assert_eq!(empty, json!({ "columns": [], "rows": [] }));
    pg.host
        .stderr
        .wait_for(
            "spin-compat: a synchronous `query` returned no rows",
            Duration::from_secs(5),
        )
        .unwrap();
}

#[tokio::test]
async fn an_open_transaction_never_leaks_into_the_next_request() {
    // One pooled connection, so the next request gets the same one.
    let (_app, pg) = Pg::start(|h| h.arg("--pg-pool-size").arg("1").allow_compat_warnings());
    pg.run("execute", "CREATE TABLE leak (v integer)", json!([]))
        .await;
    let left_open = pg
        .run("leave-open", "INSERT INTO leak VALUES (1)", json!([]))
        .await;
    assert_eq!(left_open["affected"], 1, "{left_open}");
    pg.host
        .stderr
        .wait_for(
            "spin-compat: a Postgres connection was released inside an open transaction",
            Duration::from_secs(5),
        )
        .unwrap();
    assert!(
        pg.host.stderr.text().contains("component=\"pg-probe\""),
        "the warning names the component"
    );
    // The same (only) connection now autocommits: another session sees the
    // next write at once, and never saw the abandoned one.
    let next = pg.run("execute", "INSERT INTO leak VALUES (2)", json!([])).await;
    assert_eq!(next["affected"], 1, "{next}");
    assert_eq!(
        pg.db.psql("SELECT string_agg(v::text, ',') FROM leak").unwrap(),
        "2"
    );
}

#[tokio::test]
async fn a_thousand_requests_share_at_most_the_pool_size_of_connections() {
    const POOL: usize = 4;
    let (_app, pg) = Pg::start(|h| h.arg("--pg-pool-size").arg(POOL.to_string()));
    pg.run("execute", "CREATE TABLE hits (v integer)", json!([]))
        .await;
    let count_connections = || {
        pg.db
            .psql(&format!(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = '{}' AND pid <> pg_backend_pid()",
                pg.db.name
            ))
            .unwrap()
            .parse::<usize>()
            .unwrap()
    };
    let sampler = {
        let (stop_tx, stop_rx) = std::sync::mpsc::channel::<()>();
        let url = pg.db.url();
        let name = pg.db.name.clone();
        let thread = std::thread::spawn(move || {
            let mut peak = 0;
            while stop_rx.try_recv().is_err() {
                let sql = format!(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = '{name}' AND pid <> pg_backend_pid()"
                );
                if let Ok(n) = spindrive_testkit::psql(&url, &sql) {
                    peak = peak.max(n.parse::<usize>().unwrap_or(0));
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            peak
        });
        (stop_tx, thread)
    };
    let started = Instant::now();
    let requests = futures::stream::iter(0..1000).map(|i| {
        let statement = if i % 2 == 0 {
            "INSERT INTO hits VALUES ($1)"
        } else {
            "SELECT $1::integer"
        };
        let mode = if i % 2 == 0 { "execute" } else { "query" };
        pg.run(mode, statement, json!([{ "int32": i }]))
    });
    use futures::StreamExt;
    let results: Vec<Value> = requests.buffer_unordered(16).collect().await;
    let took = started.elapsed();
    let (stop, thread) = sampler;
    stop.send(()).unwrap();
    let peak = thread.join().unwrap();
    assert!(
        results.iter().all(|r| r.get("error").is_none()),
        "every request succeeded"
    );
    assert_eq!(pg.db.psql("SELECT count(*) FROM hits").unwrap(), "500");
    eprintln!(
        "1000 requests in {took:?}; peak server connections {peak}, now {}",
        count_connections()
    );
    // The sampler's own psql session is excluded by pg_backend_pid().
    assert!(
        peak <= POOL,
        "peak {peak} server connections for a pool of {POOL}"
    );
    assert!(count_connections() <= POOL);
}

#[tokio::test]
async fn the_pool_heals_when_the_server_restarts() {
    let server = PrivateServer::start().unwrap();
    let admin = server.admin_url().unwrap();
    let db = TestDatabase::create_on(&admin).unwrap();
    let app = pg_app(server.port);
    let host = app.host().start().unwrap();
    let url = db.url();
    let ok = |v: &Value| v["rows"] == json!([[{ "int32": 1 }]]);
    for _ in 0..5 {
        assert!(ok(
            &run(&host, &url, "query", "SELECT 1::integer", json!([])).await
        ));
    }

    server.stop().unwrap();
    for mode in ["query", "query-sync", "execute"] {
        let down = run(&host, &url, mode, "SELECT 1::integer", json!([])).await;
        let error = &down["error"];
        assert!(
            error.get("connection-failed").is_some() || error.get("query-failed").is_some(),
            "a clean interface error while the server is down: {down}"
        );
    }

    server.restart().unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut recovered = false;
    while Instant::now() < deadline {
        if ok(&run(&host, &url, "query", "SELECT 1::integer", json!([])).await) {
            recovered = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        recovered,
        "requests succeed again after the restart, with no host restart"
    );
    for _ in 0..20 {
        assert!(ok(
            &run(&host, &url, "query", "SELECT 1::integer", json!([])).await
        ));
    }
    drop(host);
    drop(db);
}

#[tokio::test]
async fn session_settings_never_leak_into_the_next_request() {
    let (_app, pg) = Pg::start(|h| h.arg("--pg-pool-size").arg("1"));
    let set = pg
        .run("execute", "SET application_name = 'leaky'", json!([]))
        .await;
    assert_eq!(set["affected"], 0, "{set}");
    let temp = pg
        .run("execute", "CREATE TEMP TABLE scratch (v integer)", json!([]))
        .await;
    assert_eq!(temp["affected"], 0, "{temp}");
    let seen = pg
        .run(
            "query",
            "SELECT current_setting('application_name') AS name, to_regclass('pg_temp.scratch')::text AS temp",
            json!([]),
        )
        .await;
    assert_eq!(seen["rows"], json!([[{ "str": "" }, "db-null"]]), "{seen}");
}

#[tokio::test]
async fn large_results_stream_and_errors_mid_stream_reach_the_guest() {
    let (_app, pg) = Pg::start(|h| h);
    for mode in ["query", "query-sync"] {
        let many = pg
            .run(
                mode,
                "SELECT i::integer FROM generate_series(1, 1000) AS i",
                json!([]),
            )
            .await;
        let rows = many["rows"].as_array().expect("rows");
        assert_eq!(rows.len(), 1000, "{mode}");
        assert_eq!(rows[999], json!([{ "int32": 1000 }]), "{mode}");
        for (rows_before_error, statement) in [
            (3, "SELECT 1 / (4 - i) FROM generate_series(1, 20) AS i"),
            (12, "SELECT 1 / (13 - i) FROM generate_series(1, 20) AS i"),
        ] {
            let failed = pg.run(mode, statement, json!([])).await;
            assert_eq!(
                failed["error"]["query-failed"]["db-error"]["code"], "22012",
                "{mode}, division by zero after {rows_before_error} rows: {failed}"
            );
        }
    }
}
