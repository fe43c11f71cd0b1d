//! PostgreSQL for the benchmark: a throwaway cluster started with `initdb`/`pg_ctl` (durable commits:
//! `fsync=on`, `synchronous_commit=on`), or an existing one given by URL. Databases are created per run.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, bail};

use crate::config::PostgresSource;

/// A cluster the harness may create databases on.
pub struct Cluster {
    /// A URL of a database on the cluster, used to `CREATE DATABASE`.
    pub admin_url: String,
    /// Set when this harness started the cluster: stopped and removed when dropped.
    throwaway: Option<Throwaway>,
}

struct Throwaway {
    pg_bin_dir: PathBuf,
    data_dir: PathBuf,
    /// PostgreSQL refuses to run as root: its commands then run as the `postgres` user.
    as_postgres: bool,
    _dir: tempfile::TempDir,
}

impl Cluster {
    pub fn open(source: &PostgresSource) -> anyhow::Result<Cluster> {
        match source {
            PostgresSource::Existing { url } => Ok(Cluster {
                admin_url: url.clone(),
                throwaway: None,
            }),
            PostgresSource::Throwaway { pg_bin_dir } => Self::start(pg_bin_dir),
        }
    }

    fn start(pg_bin_dir: &Path) -> anyhow::Result<Cluster> {
        let dir = tempfile::Builder::new()
            .prefix("bench-pg.")
            .tempdir()
            .context("create a folder for the PostgreSQL cluster")?;
        let as_postgres = is_root()?;
        if as_postgres {
            run(Command::new("chown")
                .arg("postgres:postgres")
                .arg(dir.path()))?;
        }
        let data_dir = dir.path().join("data");
        let port = free_port()?;
        let throwaway = Throwaway {
            pg_bin_dir: pg_bin_dir.to_path_buf(),
            data_dir: data_dir.clone(),
            as_postgres,
            _dir: dir,
        };
        // `--no-sync` only skips flushing the fresh cluster's files once; commits stay durable.
        run(throwaway.command("initdb").arg("-D").arg(&data_dir).args([
            "-U",
            "postgres",
            "-A",
            "trust",
            "--no-sync",
        ]))?;
        let socket_dir = data_dir.parent().context("cluster folder")?;
        let options = format!(
            "-c listen_addresses=127.0.0.1 -p {port} -k {} -c max_connections=300 \
             -c fsync=on -c synchronous_commit=on",
            socket_dir.display()
        );
        run(throwaway
            .command("pg_ctl")
            .arg("-D")
            .arg(&data_dir)
            .arg("-l")
            .arg(socket_dir.join("log"))
            .args(["-w", "-o", &options, "start"]))?;
        Ok(Cluster {
            admin_url: format!("postgres://postgres@127.0.0.1:{port}/postgres"),
            throwaway: Some(throwaway),
        })
    }

    /// The server's processes (postmaster and children), when this harness started the cluster.
    pub fn server_pids(&self) -> Option<Vec<u32>> {
        let throwaway = self.throwaway.as_ref()?;
        let pid_file = std::fs::read_to_string(throwaway.data_dir.join("postmaster.pid")).ok()?;
        let postmaster = pid_file.lines().next()?.trim().parse().ok()?;
        Some(crate::probe::with_children(postmaster))
    }

    /// A fresh, empty database on the cluster; its URL.
    pub async fn create_database(&self) -> anyhow::Result<String> {
        use sqlx::Connection;
        let name = format!("bench_{}", uuid::Uuid::new_v4().simple());
        let mut connection = sqlx::AnyConnection::connect(&self.admin_url)
            .await
            .context("connect to PostgreSQL")?;
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&mut connection)
            .await
            .context("create a benchmark database")?;
        let (base, _) = self
            .admin_url
            .rsplit_once('/')
            .context("a PostgreSQL URL ends with /<database>")?;
        Ok(format!("{base}/{name}"))
    }

    /// Drops a database made by [`Cluster::create_database`] (matters on a cluster that outlives the run).
    pub async fn drop_database(&self, url: &str) -> anyhow::Result<()> {
        use sqlx::Connection;
        let (_, name) = url.rsplit_once('/').context("a database URL")?;
        let mut connection = sqlx::AnyConnection::connect(&self.admin_url)
            .await
            .context("connect to PostgreSQL")?;
        sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
            .execute(&mut connection)
            .await
            .context("drop a benchmark database")?;
        Ok(())
    }
}

impl Throwaway {
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
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if let Some(throwaway) = &self.throwaway {
            let _ = throwaway
                .command("pg_ctl")
                .arg("-D")
                .arg(&throwaway.data_dir)
                .args(["-m", "immediate", "stop"])
                .output();
        }
    }
}

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

/// A loopback port free right now (the cluster binds it a moment later).
fn free_port() -> anyhow::Result<u16> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").context("find a free port")?;
    Ok(listener.local_addr()?.port())
}
