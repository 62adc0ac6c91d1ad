//! WASI for components: stdio into the host log, the manifest's environment,
//! and `files` mounted read-only at `/`.

use crate::manifest::{Component, FileMount};
use anyhow::{Context, Result, bail, ensure};
use bytes::Bytes;
use std::io::Write;
use std::path::{Component as PathPart, Path, PathBuf};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context as TaskContext, Poll};
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamResult};
use wasmtime_wasi::{DirPerms, FilePerms, WasiCtx, WasiCtxBuilder};

/// What every instance of one component gets from WASI.
#[derive(Debug)]
pub struct ComponentWasi {
    component_id: String,
    environment: Vec<(String, String)>,
    /// The component's `files`, copied at startup; mounted read-only at `/`.
    files: Option<tempfile::TempDir>,
}

/// The start of the name of every `files` copy: the host's pid follows, so
/// that copies left by a host that was killed can be told and removed.
const FILES_COPY_PREFIX: &str = "spindrive-files-";

impl ComponentWasi {
    pub fn prepare(component: &Component, app_dir: &Path) -> Result<Self> {
        let files = if component.files.is_empty() {
            None
        } else {
            let dir = tempfile::Builder::new()
                .prefix(&format!(
                    "{FILES_COPY_PREFIX}{}-{}-",
                    std::process::id(),
                    component.id
                ))
                .tempdir()
                .context("cannot create a directory for the component's files")?;
            copy_files(app_dir, &component.files, &component.exclude_files, dir.path())?;
            Some(dir)
        };
        Ok(ComponentWasi {
            component_id: component.id.clone(),
            environment: component
                .environment
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
            files,
        })
    }

    /// A fresh WASI context for one instance.
    pub fn build_ctx(&self) -> Result<WasiCtx> {
        let mut builder = WasiCtxBuilder::new();
        builder
            .envs(&self.environment)
            .stdout(LogStream::new(&self.component_id))
            .stderr(LogStream::new(&self.component_id));
        if let Some(files) = &self.files {
            builder.preopened_dir(files.path(), "/", DirPerms::READ, FilePerms::READ)?;
        }
        Ok(builder.build())
    }
}

/// Copies a component's `files` into `target`, keeping app-relative paths
/// for patterns and honouring `{source, destination}` placements.
fn copy_files(app_dir: &Path, files: &[FileMount], exclude: &[String], target: &Path) -> Result<()> {
    let excluded = exclude
        .iter()
        .map(|pattern| {
            glob::Pattern::new(pattern).with_context(|| format!("invalid exclude_files pattern {pattern:?}"))
        })
        .collect::<Result<Vec<_>>>()?;
    let is_excluded = |relative: &Path| excluded.iter().any(|p| p.matches_path(relative));
    for mount in files {
        match mount {
            FileMount::Pattern(pattern) => {
                ensure_inside_app(Path::new(pattern)).with_context(|| format!("files entry {pattern:?}"))?;
                let full = app_dir.join(pattern);
                let is_glob = pattern.contains(['*', '?', '[']);
                if !is_glob && !full.exists() {
                    bail!("files entry {pattern:?} does not exist");
                }
                let matches = glob::glob(&full.to_string_lossy())
                    .with_context(|| format!("invalid files pattern {pattern:?}"))?;
                for path in matches {
                    let path = path?;
                    let relative = path.strip_prefix(app_dir).unwrap_or(&path).to_path_buf();
                    if path.is_file() && !is_excluded(&relative) {
                        copy_one(&path, &target.join(&relative))?;
                    }
                }
            }
            FileMount::Placement { source, destination } => {
                ensure_inside_app(Path::new(source)).with_context(|| format!("files source {source:?}"))?;
                let from = app_dir.join(source);
                let to = target.join(destination.trim_start_matches('/'));
                ensure_inside_app(Path::new(destination.trim_start_matches('/')))
                    .with_context(|| format!("files destination {destination:?}"))?;
                if from.is_dir() {
                    copy_dir(&from, &to)?;
                } else if from.is_file() {
                    copy_one(&from, &to)?;
                } else {
                    bail!("files source {source:?} does not exist");
                }
            }
        }
    }
    Ok(())
}

/// Removes the `files` copies of hosts that are gone: a host killed with
/// SIGKILL never drops its `TempDir`s. Only where `/proc` tells live pids.
pub fn remove_abandoned_copies() {
    if !Path::new("/proc/self").exists() {
        return;
    }
    let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name
            .to_str()
            .and_then(|name| name.strip_prefix(FILES_COPY_PREFIX))
            .and_then(|rest| rest.split_once('-'))
            .and_then(|(pid, _)| pid.parse::<u32>().ok())
        else {
            continue;
        };
        if !Path::new("/proc").join(pid.to_string()).exists()
            && let Err(error) = std::fs::remove_dir_all(entry.path())
        {
            tracing::warn!(path = %entry.path().display(), %error, "cannot remove an abandoned files copy");
        }
    }
}

fn ensure_inside_app(relative: &Path) -> Result<()> {
    ensure!(
        relative
            .components()
            .all(|part| matches!(part, PathPart::Normal(_) | PathPart::CurDir)),
        "paths must stay inside the application directory"
    );
    Ok(())
}

fn copy_one(from: &Path, to: &Path) -> Result<()> {
    if let Some(parent) = to.parent() {
        std::fs::create_dir_all(parent)?;
    }
    // A later entry for the same path wins, as in Spin; the earlier one is
    // unlinked, never written through (it may be a link to the app's file).
    if to.symlink_metadata().is_ok() {
        std::fs::remove_file(to)?;
    }
    // The file itself, not a symlink that may point outside the mount.
    let from = from
        .canonicalize()
        .with_context(|| format!("cannot read {}", from.display()))?;
    // A hard link takes no space and, mounted read-only, serves as a copy;
    // where one cannot be made (another file system), the bytes are copied.
    if std::fs::hard_link(&from, to).is_err() {
        std::fs::copy(&from, to).with_context(|| format!("cannot copy {}", from.display()))?;
    }
    Ok(())
}

fn copy_dir(from: &Path, to: &Path) -> Result<()> {
    let mut pending: Vec<PathBuf> = vec![from.to_path_buf()];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir)? {
            let path = entry?.path();
            if path.is_dir() {
                pending.push(path);
            } else {
                copy_one(&path, &to.join(path.strip_prefix(from)?))?;
            }
        }
    }
    Ok(())
}

/// A component's stdout or stderr: whole lines, prefixed with the component
/// id, written to the host's stderr.
#[derive(Clone)]
struct LogStream {
    prefix: Arc<str>,
    partial: Arc<Mutex<Vec<u8>>>,
}

impl LogStream {
    fn new(component_id: &str) -> Self {
        LogStream {
            prefix: format!("[{component_id}] ").into(),
            partial: Arc::default(),
        }
    }

    fn write(&self, bytes: &[u8]) {
        let mut partial = self.partial.lock().unwrap_or_else(|e| e.into_inner());
        partial.extend_from_slice(bytes);
        let Some(last_newline) = partial.iter().rposition(|b| *b == b'\n') else {
            return;
        };
        let complete: Vec<u8> = partial.drain(..=last_newline).collect();
        let mut out = Vec::with_capacity(complete.len() + self.prefix.len() * 4);
        for line in complete.split_inclusive(|b| *b == b'\n') {
            out.extend_from_slice(self.prefix.as_bytes());
            out.extend_from_slice(line);
        }
        // A closed or full stderr must not fail the guest.
        let _ = std::io::stderr().lock().write_all(&out);
    }
}

impl Drop for LogStream {
    fn drop(&mut self) {
        // The last clone flushes an unterminated final line.
        if Arc::strong_count(&self.partial) == 1 {
            let has_partial_line = !self.partial.lock().unwrap_or_else(|e| e.into_inner()).is_empty();
            if has_partial_line {
                LogStream::write(self, b"\n");
            }
        }
    }
}

impl IsTerminal for LogStream {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for LogStream {
    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(self.clone())
    }

    fn async_stream(&self) -> Box<dyn tokio::io::AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }
}

impl OutputStream for LogStream {
    fn write(&mut self, bytes: Bytes) -> StreamResult<()> {
        LogStream::write(self, &bytes);
        Ok(())
    }

    fn flush(&mut self) -> StreamResult<()> {
        Ok(())
    }

    fn check_write(&mut self) -> StreamResult<usize> {
        Ok(64 * 1024)
    }
}

#[async_trait::async_trait]
impl Pollable for LogStream {
    async fn ready(&mut self) {}
}

impl tokio::io::AsyncWrite for LogStream {
    fn poll_write(self: Pin<&mut Self>, _: &mut TaskContext<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        self.write(buf);
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut TaskContext<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut TaskContext<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_keep_app_relative_paths_and_honour_excludes() {
        let app = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(app.path().join("assets/sub")).unwrap();
        std::fs::write(app.path().join("assets/a.txt"), "a").unwrap();
        std::fs::write(app.path().join("assets/b.log"), "b").unwrap();
        std::fs::write(app.path().join("assets/sub/c.txt"), "c").unwrap();
        let target = tempfile::tempdir().unwrap();
        let files = [FileMount::Pattern("assets/**/*".into())];
        copy_files(app.path(), &files, &["**/*.log".into()], target.path()).unwrap();
        assert!(target.path().join("assets/a.txt").exists());
        assert!(target.path().join("assets/sub/c.txt").exists());
        assert!(!target.path().join("assets/b.log").exists());
    }

    #[test]
    fn placements_map_sources_to_destinations() {
        let app = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(app.path().join("data/x")).unwrap();
        std::fs::write(app.path().join("data/x/y.txt"), "y").unwrap();
        let target = tempfile::tempdir().unwrap();
        let files = [FileMount::Placement {
            source: "data".into(),
            destination: "/srv".into(),
        }];
        copy_files(app.path(), &files, &[], target.path()).unwrap();
        assert_eq!(
            std::fs::read_to_string(target.path().join("srv/x/y.txt")).unwrap(),
            "y"
        );
    }

    #[test]
    fn copies_of_dead_hosts_are_removed_and_live_ones_kept() {
        let own = tempfile::Builder::new()
            .prefix(&format!("{FILES_COPY_PREFIX}{}-web-", std::process::id()))
            .tempdir()
            .unwrap();
        // Beyond the kernel's largest pid, so never alive.
        let dead = std::env::temp_dir().join(format!("{FILES_COPY_PREFIX}4294967295-web-x"));
        std::fs::create_dir_all(dead.join("inner")).unwrap();
        remove_abandoned_copies();
        assert!(own.path().exists());
        assert!(!dead.exists());
    }

    #[test]
    fn a_later_entry_for_the_same_path_leaves_the_app_files_intact() {
        let app = tempfile::tempdir().unwrap();
        std::fs::write(app.path().join("a.txt"), "a").unwrap();
        std::fs::write(app.path().join("b.txt"), "b").unwrap();
        let target = tempfile::tempdir().unwrap();
        let files = [
            FileMount::Placement {
                source: "a.txt".into(),
                destination: "/same.txt".into(),
            },
            FileMount::Placement {
                source: "b.txt".into(),
                destination: "/same.txt".into(),
            },
        ];
        copy_files(app.path(), &files, &[], target.path()).unwrap();
        assert_eq!(
            std::fs::read_to_string(target.path().join("same.txt")).unwrap(),
            "b"
        );
        assert_eq!(std::fs::read_to_string(app.path().join("a.txt")).unwrap(), "a");
        assert_eq!(std::fs::read_to_string(app.path().join("b.txt")).unwrap(), "b");
    }

    #[test]
    fn paths_outside_the_app_and_missing_paths_are_refused() {
        let app = tempfile::tempdir().unwrap();
        let target = tempfile::tempdir().unwrap();
        let outside = [FileMount::Pattern("../etc/passwd".into())];
        assert!(copy_files(app.path(), &outside, &[], target.path()).is_err());
        let missing = [FileMount::Pattern("nope.txt".into())];
        assert!(copy_files(app.path(), &missing, &[], target.path()).is_err());
    }
}
