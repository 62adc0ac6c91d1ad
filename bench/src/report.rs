//! Printing figures and writing them to `bench/results/`.

use crate::wrk::Load;
use anyhow::Result;
use serde::Serialize;
use spindrive_testkit::{component_wasm, workspace_root};
use std::fmt::Write;

/// A measurement beside its baseline from the same run.
#[derive(Serialize)]
pub struct Row {
    pub name: String,
    pub measured: Load,
    pub baseline: Load,
    /// measured / baseline requests per second.
    pub ratio: f64,
}

impl Row {
    pub fn compare(name: String, measured: Load, baseline: Load) -> Self {
        let ratio = measured.requests_per_second / baseline.requests_per_second;
        Row {
            name,
            measured,
            baseline,
            ratio,
        }
    }
}

/// A one-component app serving the hello fixture on `/hello`.
pub fn hello_app() -> Result<tempfile::TempDir> {
    one_component_app("hello", "/hello")
}

/// An app of one fixture component on `route`.
pub fn one_component_app(component: &str, route: &str) -> Result<tempfile::TempDir> {
    one_component_app_with_files(component, route, &[])
}

/// [`one_component_app`] with directories mounted into the component:
/// `(directory, path in the guest)`, linked into the app's directory.
pub fn one_component_app_with_files(
    component: &str,
    route: &str,
    mounts: &[(&std::path::Path, &str)],
) -> Result<tempfile::TempDir> {
    let dir = tempfile::tempdir()?;
    let mut files = Vec::new();
    for (i, (source, destination)) in mounts.iter().enumerate() {
        let link = format!("mount-{i}");
        std::os::unix::fs::symlink(source, dir.path().join(&link))?;
        files.push(format!(
            "{{ source = \"{link}\", destination = \"{destination}\" }}"
        ));
    }
    std::fs::write(
        dir.path().join("spin.toml"),
        format!(
            "spin_manifest_version = 2\n[application]\nname = \"bench\"\n[[trigger.http]]\nroute = \"{route}\"\ncomponent = \"{component}\"\n[component.{component}]\nsource = \"{}\"\nfiles = [{}]\n",
            component_wasm(component).display(),
            files.join(", ")
        ),
    )?;
    Ok(dir)
}

/// Prints the rows (and any notes) and writes `bench/results/<name>.json`
/// and `.md`.
pub fn publish(name: &str, title: &str, rows: &[Row], notes: &[String]) -> Result<()> {
    let mut table = String::from(
        "| case | req/s | p50 ms | p99 ms | baseline req/s | baseline p50 ms | baseline p99 ms | ratio |\n|---|---|---|---|---|---|---|---|\n",
    );
    for row in rows {
        let _ = writeln!(
            table,
            "| {} | {:.0} | {:.3} | {:.3} | {:.0} | {:.3} | {:.3} | {:.3} |",
            row.name,
            row.measured.requests_per_second,
            row.measured.p50_ms,
            row.measured.p99_ms,
            row.baseline.requests_per_second,
            row.baseline.p50_ms,
            row.baseline.p99_ms,
            row.ratio
        );
    }
    for note in notes {
        let _ = writeln!(table, "\n{note}");
    }
    publish_table(
        name,
        title,
        &table,
        &serde_json::json!({ "rows": rows, "notes": notes }),
    )
}

/// Where figures go: `bench/results/`, or `BENCH_RESULTS_DIR` when a test
/// run measures (`make test` keeps its figures out of the tracked tree).
fn results_dir() -> std::path::PathBuf {
    std::env::var_os("BENCH_RESULTS_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("bench/results"))
}

/// Prints a markdown table under a title and the machine it ran on, and
/// writes it with its data to `<results>/<name>.md` and `.json`.
pub fn publish_table(name: &str, title: &str, table: &str, data: &serde_json::Value) -> Result<()> {
    let text = format!(
        "# {title}\n\nMeasured on {} ({} cores).\n\n{table}",
        timestamp(),
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    println!("{text}");
    let dir = results_dir();
    std::fs::create_dir_all(&dir)?;
    std::fs::write(dir.join(format!("{name}.md")), &text)?;
    std::fs::write(
        dir.join(format!("{name}.json")),
        serde_json::to_string_pretty(&serde_json::json!({ "title": title, "data": data }))?,
    )?;
    println!("written to {}/{name}.md and .json", dir.display());
    Ok(())
}

fn timestamp() -> String {
    std::process::Command::new("date")
        .args(["-u", "+%Y-%m-%d %H:%M UTC"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default()
}
