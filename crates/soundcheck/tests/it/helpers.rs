//! Running the built binary and comparing against golden files.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The repository root.
pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Runs `soundcheck` with `args` from the repository root.
pub fn soundcheck(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_soundcheck"))
        .args(args)
        .current_dir(repo())
        .output()
        .expect("run soundcheck")
}

/// The exit code, stdout and stderr of a run.
pub fn code(out: &Output) -> i32 {
    out.status.code().unwrap_or(-1)
}

/// Stderr as text.
pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Stdout as text.
pub fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Compares `actual` with the golden file `name`; `UPDATE_GOLDEN=1` rewrites it instead.
pub fn assert_golden(name: &str, actual: &str) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(name);
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(&path, actual).expect("write golden");
        return;
    }
    let expected = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("read {}: {e} (run with UPDATE_GOLDEN=1)", path.display()));
    if expected != actual {
        let diff: Vec<String> = expected
            .lines()
            .zip(actual.lines())
            .enumerate()
            .filter(|(_, (e, a))| e != a)
            .take(5)
            .map(|(i, (e, a))| format!("line {}:\n  golden: {e}\n  actual: {a}", i + 1))
            .collect();
        panic!(
            "{name} differs from the golden file ({} vs {} lines):\n{}",
            expected.lines().count(),
            actual.lines().count(),
            diff.join("\n")
        );
    }
}

/// A temporary directory with files written into it.
pub struct Scratch {
    pub dir: tempfile::TempDir,
}

impl Scratch {
    pub fn new() -> Self {
        Self {
            dir: tempfile::tempdir().expect("tempdir"),
        }
    }

    /// Writes `text` to `name` and returns the full path as a string.
    pub fn file(&self, name: &str, text: &str) -> String {
        let path = self.dir.path().join(name);
        std::fs::write(&path, text).expect("write");
        path.display().to_string()
    }

    /// The full path of `name` (not created).
    pub fn path(&self, name: &str) -> String {
        self.dir.path().join(name).display().to_string()
    }

    /// Reads `name`.
    pub fn read(&self, name: &str) -> String {
        std::fs::read_to_string(self.dir.path().join(name)).expect("read")
    }
}

/// The bundled example served on `db`, with `extra` (YAML) merged over its config: catalog
/// and facts files loaded at start, as `soundcheck serve` does with no `--config`.
pub async fn example_app(extra: &str, db: &str) -> std::sync::Arc<soundcheck::service::App> {
    let dir = tempfile::tempdir().unwrap();
    let extra_file = dir.path().join("extra.yaml");
    std::fs::write(&extra_file, extra).unwrap();
    let loaded = soundcheck_core::config::load_files(
        &[repo().join("examples/app-config.yaml"), extra_file],
        &|_| None,
    )
    .unwrap();
    soundcheck::service::App::start(soundcheck::service::AppOptions {
        base: loaded.root,
        file_config: loaded.config,
        database_url: db.to_string(),
        catalog: Some(soundcheck::service::CatalogSource {
            files: vec![repo().join("examples/catalog/catalog-info.yaml")],
            ..Default::default()
        }),
        facts_files: vec![repo().join("examples/facts.jsonl")],
    })
    .await
    .unwrap()
}
