//! Helpers shared by the integration tests: scripts in temporary directories, example files,
//! sipd started in-process ([`proxy`]) and real `sipp` processes ([`sipp`]).

pub mod proxy;
/// The one redis-server helper, shared with the modules' tests.
#[path = "../../modules/tests/modules/redis_server.rs"]
pub mod redis;
pub mod sipp;

use std::path::{Path, PathBuf};

/// A temporary directory holding one routing script.
pub struct Script {
    /// The directory, removed on drop.
    dir: tempfile::TempDir,
    /// The script file.
    pub path: PathBuf,
}

/// Write `source` as `name` in a fresh temporary directory.
pub fn script(name: &str, source: &str) -> Script {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join(name);
    std::fs::write(&path, source).expect("write script");
    Script { dir, path }
}

impl Script {
    /// The temporary directory holding the script.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

/// A file under the workspace's `examples/`.
pub fn example(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join("examples")
        .join(rel)
}
