//! Helpers shared by the integration tests: scripts in temporary directories, example files.

use std::path::{Path, PathBuf};

/// A temporary directory holding one routing script.
pub struct Script {
    /// Keeps the directory alive.
    _dir: tempfile::TempDir,
    /// The script file.
    pub path: PathBuf,
}

/// Write `source` as `name` in a fresh temporary directory.
pub fn script(name: &str, source: &str) -> Script {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join(name);
    std::fs::write(&path, source).expect("write script");
    Script { _dir: dir, path }
}

/// A file under the workspace's `examples/`.
pub fn example(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join("examples")
        .join(rel)
}
