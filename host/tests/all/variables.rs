//! Variables: default < environment < flag; secrets stay out of logs;
//! a missing required variable stops startup.

use crate::helpers::{JsonBody, client, probe_app};
use serde_json::Value;

const VARIABLES: &str = r#"[variables]
region = { default = "default-region" }
api_key = { required = true, secret = true }"#;

const COMPONENT_VARIABLES: &str = r#"variables = { where = "in {{ region }}", key = "{{ api_key }}" }"#;

async fn get(host: &spindrive_testkit::Host, name: &str) -> Value {
    client()
        .get(host.url(&format!("/probe/variable?name={name}")))
        .json_body()
        .await
}

#[tokio::test]
async fn precedence_is_default_then_environment_then_flag() {
    let app = probe_app(COMPONENT_VARIABLES, VARIABLES);
    let host = app.host().arg("--variable").arg("api_key=k").start().unwrap();
    assert_eq!(get(&host, "where").await["value"], "in default-region");
    drop(host);

    let host = app
        .host()
        .env("SPIN_VARIABLE_REGION", "env-region")
        .arg("--variable")
        .arg("api_key=k")
        .start()
        .unwrap();
    assert_eq!(get(&host, "where").await["value"], "in env-region");
    drop(host);

    let host = app
        .host()
        .env("SPIN_VARIABLE_REGION", "env-region")
        .arg("--variable")
        .arg("region=flag-region")
        .arg("--variable")
        .arg("api_key=k")
        .start()
        .unwrap();
    assert_eq!(get(&host, "where").await["value"], "in flag-region");
}

#[tokio::test]
async fn dot_env_in_the_working_directory_is_a_provider() {
    let app = probe_app(COMPONENT_VARIABLES, VARIABLES);
    std::fs::write(app.dir.path().join(".env"), "SPIN_VARIABLE_API_KEY=from-dotenv\n").unwrap();
    let host = app.host().start().unwrap();
    assert_eq!(get(&host, "key").await["value"], "from-dotenv");
}

#[tokio::test]
async fn guest_errors_for_undeclared_and_invalid_names() {
    let app = probe_app(COMPONENT_VARIABLES, VARIABLES);
    let host = app.host().env("SPIN_VARIABLE_API_KEY", "k").start().unwrap();
    let undefined = get(&host, "region").await;
    assert_eq!(
        undefined["error"], r#"Error::Undefined("no variable for \"probe\".\"region\"")"#,
        "{undefined}"
    );
    let invalid = get(&host, "Where").await;
    assert!(
        invalid["error"]
            .as_str()
            .unwrap()
            .starts_with("Error::InvalidName"),
        "{invalid}"
    );
}

#[tokio::test]
async fn secret_values_never_reach_the_log() {
    let secret = "s3cr3t-value-7f2a";
    let app = probe_app(COMPONENT_VARIABLES, VARIABLES);
    let from_flag = app.host().arg("--variable").arg(format!("api_key={secret}"));
    let from_env = app.host().env("SPIN_VARIABLE_API_KEY", secret);
    for builder in [from_flag, from_env] {
        let host = builder.env("RUST_LOG", "trace").start().unwrap();
        assert_eq!(get(&host, "key").await["value"], secret);
        let output = format!("{}{}", host.stdout.text(), host.stderr.text());
        assert!(output.contains("TRACE"), "verbose logging was on");
        assert!(!output.contains(secret), "the secret leaked into the host output");
    }
}

#[tokio::test]
async fn a_missing_required_variable_fails_startup_naming_it() {
    let app = probe_app(COMPONENT_VARIABLES, VARIABLES);
    let output = app.host().expect_startup_failure().unwrap();
    assert!(
        output.contains(r#"no provider resolved required variable(s): [Key("api_key")]"#),
        "{output}"
    );
}
