//! A small tmpfs to run out of disk on, for the storage-fault tests (a full disk under billing-svc's SQLite
//! file or executor-svc's spool). Mounting needs root (CI runs as root); elsewhere the tests say so and skip.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use crate::{Backend, TestDatabase};

/// A small tmpfs, unmounted when dropped.
pub struct Tmpfs {
    pub dir: tempfile::TempDir,
}

impl Tmpfs {
    /// Mounts a tmpfs of `size` (e.g. `4m`); None (with a note) when not root.
    pub fn mount(size: &str) -> Option<Tmpfs> {
        let dir = tempfile::tempdir().expect("mount point");
        let mounted = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|status| status.success());
        if !mounted {
            eprintln!("skipped: mounting a tmpfs needs root");
            return None;
        }
        Some(Tmpfs { dir })
    }

    pub fn remount(&self, mode: &str) {
        let status = std::process::Command::new("mount")
            .args(["-o", &format!("remount,{mode}")])
            .arg(self.dir.path())
            .status()
            .expect("mount");
        assert!(status.success(), "remount {mode}");
    }

    /// A SQLite database on this file system.
    pub fn database(&self) -> TestDatabase {
        TestDatabase::existing(
            Backend::Sqlite,
            format!("sqlite://{}/billing.db", self.dir.path().display()),
        )
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(self.dir.path())
            .status();
    }
}

/// Fills the file system of `dir` to the last byte; returns the filler's path.
pub fn fill(dir: &Path) -> PathBuf {
    let path = dir.join("filler");
    let mut file = std::fs::File::create(&path).expect("filler");
    let chunk = vec![0u8; 16 * 1024];
    while file.write_all(&chunk).is_ok() {}
    let small = [0u8; 512];
    while file.write_all(&small).is_ok() {}
    path
}
