//! A PostgreSQL cluster owned by one test, so that the test may stop and start it under load without
//! disturbing the shared cluster of `TEST_POSTGRES_URL`. `initdb` and `pg_ctl` are taken from
//! `TEST_PG_BIN` (scripts/test exports it), else from `PATH`; as root they run as the `postgres` user,
//! since PostgreSQL refuses to run as root.

use std::path::PathBuf;
use std::process::Command;

use crate::{Backend, TestDatabase};

/// A running (or stopped) private cluster; stopped and deleted when dropped.
pub struct PgCluster {
    bin: PathBuf,
    dir: tempfile::TempDir,
    port: u16,
}

fn pg_bin() -> PathBuf {
    if let Some(bin) = std::env::var_os("TEST_PG_BIN") {
        return PathBuf::from(bin);
    }
    let found = Command::new("sh")
        .args(["-c", "command -v initdb"])
        .output()
        .expect("run sh");
    let initdb = String::from_utf8_lossy(&found.stdout).trim().to_string();
    assert!(
        !initdb.is_empty(),
        "initdb not found: set TEST_PG_BIN to PostgreSQL's bin folder (scripts/test does)"
    );
    std::fs::canonicalize(&initdb)
        .expect("resolve initdb")
        .parent()
        .expect("bin folder")
        .to_path_buf()
}

fn running_as_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|out| String::from_utf8_lossy(&out.stdout).trim() == "0")
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free port")
        .port()
}

impl PgCluster {
    /// Creates and starts a cluster on a free loopback port.
    pub fn start() -> PgCluster {
        let dir = tempfile::tempdir().expect("cluster dir");
        let cluster = PgCluster {
            bin: pg_bin(),
            dir,
            port: free_port(),
        };
        if running_as_root() {
            let status = Command::new("chown")
                .args(["-R", "postgres"])
                .arg(cluster.dir.path())
                .status()
                .expect("chown");
            assert!(status.success(), "chown the cluster dir to postgres");
        }
        cluster.run(
            "initdb",
            &[
                "-D",
                &cluster.data_dir(),
                "-U",
                "postgres",
                "-A",
                "trust",
                "--no-sync",
            ],
        );
        cluster.start_again();
        cluster
    }

    fn data_dir(&self) -> String {
        self.dir.path().join("data").display().to_string()
    }

    fn run(&self, tool: &str, args: &[&str]) {
        let program = self.bin.join(tool);
        let mut command = if running_as_root() {
            let mut command = Command::new("runuser");
            command.args(["-u", "postgres", "--"]).arg(&program);
            command
        } else {
            Command::new(&program)
        };
        let output = command.args(args).output().expect("run a PostgreSQL tool");
        assert!(
            output.status.success(),
            "{tool} {args:?} failed: {}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }

    /// Starts the (stopped) cluster and waits until it accepts connections.
    pub fn start_again(&self) {
        let options = format!(
            "-c listen_addresses=127.0.0.1 -p {} -k {} -c max_connections=100 -c fsync=on",
            self.port,
            self.dir.path().display()
        );
        let log = self.dir.path().join("log").display().to_string();
        self.run(
            "pg_ctl",
            &[
                "-D",
                &self.data_dir(),
                "-l",
                &log,
                "-w",
                "-o",
                &options,
                "start",
            ],
        );
    }

    /// Stops the cluster at once (`-m immediate`: clients are cut off mid-transaction, like a crash).
    pub fn crash(&self) {
        self.run(
            "pg_ctl",
            &["-D", &self.data_dir(), "-m", "immediate", "-w", "stop"],
        );
    }

    /// A new empty database on this cluster.
    pub async fn database(&self) -> TestDatabase {
        sqlx::any::install_default_drivers();
        let admin = format!("postgres://postgres@127.0.0.1:{}/postgres", self.port);
        let name = format!("t_{}", uuid::Uuid::new_v4().simple());
        let mut connection = <sqlx::AnyConnection as sqlx::Connection>::connect(&admin)
            .await
            .expect("connect to the private cluster");
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&mut connection)
            .await
            .expect("create database");
        TestDatabase::existing(
            Backend::Postgres,
            format!("postgres://postgres@127.0.0.1:{}/{name}", self.port),
        )
    }
}

impl Drop for PgCluster {
    fn drop(&mut self) {
        let program = self.bin.join("pg_ctl");
        let data = self.data_dir();
        let args = ["-D", data.as_str(), "-m", "immediate", "stop"];
        let _ = if running_as_root() {
            Command::new("runuser")
                .args(["-u", "postgres", "--"])
                .arg(&program)
                .args(args)
                .output()
        } else {
            Command::new(&program).args(args).output()
        };
    }
}
