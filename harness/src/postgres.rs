//! PostgreSQL clusters the harness creates databases on: an existing one given by URL, or a throwaway one
//! started with `initdb`/`pg_ctl` on a free loopback port (durable commits: `fsync=on`,
//! `synchronous_commit=on`), which a test may crash and start again. PostgreSQL refuses to run as root,
//! so as root its programs run as the `postgres` user.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, bail};
use sqlx::{AnyConnection, Connection};

/// Connections a throwaway cluster accepts: the bench's many-key runs and a test's stack with its pools.
const MAX_CONNECTIONS: u32 = 300;

/// A cluster the harness may create databases on.
pub struct Cluster {
    /// A URL of a database on the cluster, used to `CREATE DATABASE`.
    pub admin_url: String,
    /// Set when the harness started the cluster: stopped and removed when dropped.
    throwaway: Option<Throwaway>,
}

struct Throwaway {
    pg_bin_dir: PathBuf,
    data_dir: PathBuf,
    port: u16,
    /// PostgreSQL refuses to run as root: its programs then run as the `postgres` user.
    as_postgres: bool,
    /// The cluster's folder: `data/`, the server's `log` and its socket.
    dir: tempfile::TempDir,
}

impl Cluster {
    /// The cluster at `admin_url` (a URL with a database the harness may `CREATE DATABASE` from).
    pub fn existing(admin_url: String) -> Cluster {
        Cluster {
            admin_url,
            throwaway: None,
        }
    }

    /// Creates a cluster with `initdb` and `pg_ctl` from `pg_bin_dir`, starts it on a free loopback port
    /// and waits until it accepts connections.
    pub fn throwaway(pg_bin_dir: &Path) -> anyhow::Result<Cluster> {
        let dir = tempfile::Builder::new()
            .prefix("harness-pg.")
            .tempdir()
            .context("create a folder for the PostgreSQL cluster")?;
        let as_postgres = is_root()?;
        if as_postgres {
            run(Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(dir.path()))?;
        }
        let port = free_port()?;
        let throwaway = Throwaway {
            pg_bin_dir: pg_bin_dir.to_path_buf(),
            data_dir: dir.path().join("data"),
            port,
            as_postgres,
            dir,
        };
        // `--no-sync` only skips flushing the fresh cluster's files once; commits stay durable.
        run(throwaway
            .command("initdb")
            .arg("-D")
            .arg(&throwaway.data_dir)
            .args(["-U", "postgres", "-A", "trust", "--no-sync"]))?;
        throwaway.start()?;
        Ok(Cluster {
            admin_url: format!("postgres://postgres@127.0.0.1:{port}/postgres"),
            throwaway: Some(throwaway),
        })
    }

    /// Stops the throwaway cluster at once (`-m immediate`: clients are cut off mid-transaction, like a
    /// crash).
    pub fn crash(&self) -> anyhow::Result<()> {
        let throwaway = self.own()?;
        run(throwaway
            .command("pg_ctl")
            .arg("-D")
            .arg(&throwaway.data_dir)
            .args(["-m", "immediate", "-w", "stop"]))
    }

    /// Starts the (crashed) throwaway cluster again on its port and waits until it accepts connections.
    pub fn start_again(&self) -> anyhow::Result<()> {
        self.own()?.start()
    }

    /// A hot standby of this throwaway cluster: a base backup streamed from it (`pg_basebackup -R`) and
    /// started on its own free port, replicating. Make it synchronous with [`Cluster::require_standby`].
    pub fn standby(&self) -> anyhow::Result<Cluster> {
        let primary = self.own()?;
        let dir = tempfile::Builder::new()
            .prefix("harness-pg-standby.")
            .tempdir()
            .context("create a folder for the standby")?;
        if primary.as_postgres {
            run(Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(dir.path()))?;
        }
        let port = free_port()?;
        let standby = Throwaway {
            pg_bin_dir: primary.pg_bin_dir.clone(),
            data_dir: dir.path().join("data"),
            port,
            as_postgres: primary.as_postgres,
            dir,
        };
        run(standby
            .command("pg_basebackup")
            .args([
                "-h",
                "127.0.0.1",
                "-p",
                &primary.port.to_string(),
                "-U",
                "postgres",
            ])
            .arg("-D")
            .arg(&standby.data_dir)
            .args(["-R", "--wal-method=stream", "--checkpoint=fast"]))?;
        standby.start()?;
        Ok(Cluster {
            admin_url: format!("postgres://postgres@127.0.0.1:{port}/postgres"),
            throwaway: Some(standby),
        })
    }

    /// Makes every commit wait until a standby has it (`synchronous_standby_names = '*'`,
    /// `synchronous_commit = on`), so that what the primary acknowledged survives its loss.
    pub async fn require_standby(&self) -> anyhow::Result<()> {
        let mut connection = self.connect_admin().await?;
        for statement in [
            "ALTER SYSTEM SET synchronous_standby_names = '*'",
            "SELECT pg_reload_conf()",
        ] {
            sqlx::query(statement)
                .execute(&mut connection)
                .await
                .with_context(|| format!("{statement} on the primary"))?;
        }
        // Only once the standby streams as synchronous does a commit wait for it.
        for _ in 0..100 {
            let synchronous: i64 = sqlx::query_scalar(
                "SELECT COUNT(*) FROM pg_stat_replication WHERE sync_state = 'sync' AND state = 'streaming'",
            )
            .fetch_one(&mut connection)
            .await
            .context("read pg_stat_replication")?;
            if synchronous > 0 {
                return Ok(());
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        bail!("no standby became synchronous within 10 s")
    }

    /// Promotes this standby to a primary and waits until it accepts writes.
    pub fn promote(&self) -> anyhow::Result<()> {
        let standby = self.own()?;
        run(standby
            .command("pg_ctl")
            .arg("-D")
            .arg(&standby.data_dir)
            .args(["-w", "promote"]))
    }

    /// The loopback port the throwaway cluster listens on.
    pub fn port(&self) -> Option<u16> {
        self.throwaway.as_ref().map(|throwaway| throwaway.port)
    }

    /// The postmaster's pid, when the harness started the cluster and it runs.
    pub fn postmaster_pid(&self) -> Option<u32> {
        let throwaway = self.throwaway.as_ref()?;
        let pid_file = std::fs::read_to_string(throwaway.data_dir.join("postmaster.pid")).ok()?;
        pid_file.lines().next()?.trim().parse().ok()
    }

    /// A fresh, empty database named `<prefix>_<uuid>` on the cluster; its URL.
    pub async fn create_database(&self, prefix: &str) -> anyhow::Result<String> {
        let name = format!("{prefix}_{}", uuid::Uuid::new_v4().simple());
        let mut connection = self.connect_admin().await?;
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&mut connection)
            .await
            .with_context(|| format!("create the database {name}"))?;
        let (base, _) = self
            .admin_url
            .rsplit_once('/')
            .context("a PostgreSQL URL ends with /<database>")?;
        Ok(format!("{base}/{name}"))
    }

    /// Drops a database made by [`Cluster::create_database`] (matters on a cluster that outlives the run).
    pub async fn drop_database(&self, url: &str) -> anyhow::Result<()> {
        let (_, name) = url.rsplit_once('/').context("a database URL")?;
        let mut connection = self.connect_admin().await?;
        sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
            .execute(&mut connection)
            .await
            .with_context(|| format!("drop the database {name}"))?;
        Ok(())
    }

    async fn connect_admin(&self) -> anyhow::Result<AnyConnection> {
        sqlx::any::install_default_drivers();
        AnyConnection::connect(&self.admin_url)
            .await
            .with_context(|| format!("connect to PostgreSQL at {}", self.admin_url))
    }

    fn own(&self) -> anyhow::Result<&Throwaway> {
        self.throwaway
            .as_ref()
            .context("only a cluster the harness started can be stopped and started")
    }
}

impl Throwaway {
    /// `program` of PostgreSQL's bin folder, run as the `postgres` user when we are root.
    fn command(&self, program: &str) -> Command {
        let path = self.pg_bin_dir.join(program);
        if self.as_postgres {
            let mut command = Command::new("runuser");
            command.args(["-u", "postgres", "--"]).arg(path);
            command
        } else {
            Command::new(path)
        }
    }

    /// `pg_ctl start`, waiting until the server accepts connections. The socket lives in the cluster's
    /// folder, so clusters never share `/var/run/postgresql`.
    fn start(&self) -> anyhow::Result<()> {
        let options = format!(
            "-c listen_addresses=127.0.0.1 -p {} -k {} -c max_connections={MAX_CONNECTIONS} \
             -c fsync=on -c synchronous_commit=on",
            self.port,
            self.dir.path().display()
        );
        run(self
            .command("pg_ctl")
            .arg("-D")
            .arg(&self.data_dir)
            .arg("-l")
            .arg(self.dir.path().join("log"))
            .args(["-w", "-o", &options, "start"]))
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if let Some(throwaway) = &self.throwaway {
            // Best effort: a crashed cluster is stopped already, and the folder goes either way.
            let _ = throwaway
                .command("pg_ctl")
                .arg("-D")
                .arg(&throwaway.data_dir)
                .args(["-m", "immediate", "stop"])
                .output();
        }
    }
}

/// The folder of the `initdb` found on `PATH` (symlinks resolved), for a cluster of the installed
/// PostgreSQL.
pub fn bin_dir_on_path() -> anyhow::Result<PathBuf> {
    let found = Command::new("sh")
        .args(["-c", "command -v initdb"])
        .output()
        .context("run sh -c 'command -v initdb'")?;
    let initdb = String::from_utf8_lossy(&found.stdout).trim().to_string();
    if initdb.is_empty() {
        bail!("initdb is not on PATH: name PostgreSQL's bin folder instead");
    }
    let initdb = std::fs::canonicalize(&initdb).with_context(|| format!("resolve {initdb}"))?;
    initdb
        .parent()
        .map(Path::to_path_buf)
        .with_context(|| format!("the folder of {}", initdb.display()))
}

/// Runs `command` to its end; fails with its output unless it succeeds.
fn run(command: &mut Command) -> anyhow::Result<()> {
    let output = command
        .output()
        .with_context(|| format!("run {command:?}"))?;
    if !output.status.success() {
        bail!(
            "{command:?} failed ({}): {}{}",
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    Ok(())
}

fn is_root() -> anyhow::Result<bool> {
    let output = Command::new("id").arg("-u").output().context("run id -u")?;
    Ok(String::from_utf8_lossy(&output.stdout).trim() == "0")
}

/// A loopback port free right now (the cluster binds it a moment later, and again after a crash).
fn free_port() -> anyhow::Result<u16> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").context("find a free port")?;
    Ok(listener.local_addr()?.port())
}
