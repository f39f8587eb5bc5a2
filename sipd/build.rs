//! Stamps the git revision the binary is built from into `SIPD_GIT_REVISION` (for `sipd
//! --version` and `core.version`): `git describe --always --dirty` when the source is a git
//! checkout with git installed, else "unknown" (e.g. built from a crates tarball).

use std::process::Command;

fn main() {
    let revision = Command::new("git")
        .args(["describe", "--always", "--dirty", "--abbrev=12"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "unknown".into());
    println!("cargo:rustc-env=SIPD_GIT_REVISION={revision}");
    // A new commit or checkout moves HEAD or the branch it names.
    for path in ["../.git/HEAD", "../.git/index"] {
        if std::path::Path::new(path).exists() {
            println!("cargo:rerun-if-changed={path}");
        }
    }
    println!("cargo:rerun-if-changed=build.rs");
}
