//! `billing-svc backup --to FILE`: a consistent copy of the SQLite database, taken while billing-svc runs.
//!
//! The copy is SQLite's `VACUUM INTO` on a read-only connection: one read transaction, so it is the
//! database as of one commit, and in WAL mode billing-svc's writers go on committing while it is read (they
//! are never blocked; only a checkpoint waits for the read to end). It is written next to the target as
//! `FILE.partial`, flushed to disk, checked with the one ledger audit, and only then renamed to `FILE`: a
//! `FILE` that exists is a complete, audited backup. Restoring is copying it back in place of the database
//! with billing-svc stopped (RELIABILITY.md, "Backups"). A PostgreSQL database is backed up with `pg_dump`.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use clap::Parser;
use sqlx::{AnyConnection, Connection};

use crate::audit_command;

/// Writes a consistent, audited copy of billing-svc's SQLite database.
#[derive(Debug, Parser)]
#[command(name = "billing-svc backup")]
pub struct BackupArgs {
    /// The file to write; it must not exist yet.
    #[arg(long)]
    pub to: PathBuf,

    /// The database to copy: billing-svc's `DATABASE_URL`.
    #[arg(
        long,
        env = "DATABASE_URL",
        default_value = "sqlite://./data/billing.db"
    )]
    pub database_url: String,
}

/// Takes the backup; an error says what to fix.
pub async fn run(args: &BackupArgs) -> anyhow::Result<()> {
    let source = sqlite_path(&args.database_url)?;
    if !Path::new(source).is_file() {
        bail!("DATABASE_URL: there is no SQLite database at {source}");
    }
    if args.to.exists() {
        bail!(
            "--to: {} exists; give a file that does not exist yet",
            args.to.display()
        );
    }
    let partial = partial_path(&args.to);
    remove_if_present(&partial)?;
    sqlx::any::install_default_drivers();

    let copied = copy(source, &partial).await;
    let checked = match copied {
        Ok(()) => check(&partial).await,
        Err(error) => Err(error),
    };
    if let Err(error) = checked {
        let _ = std::fs::remove_file(&partial);
        return Err(error);
    }
    std::fs::rename(&partial, &args.to)
        .with_context(|| format!("rename {} to {}", partial.display(), args.to.display()))?;
    sync_folder_of(&args.to)?;
    let bytes = std::fs::metadata(&args.to).map_or(0, |metadata| metadata.len());
    println!(
        "backup written: {} ({bytes} bytes), audited",
        args.to.display()
    );
    Ok(())
}

/// The file path of a `sqlite:` URL; PostgreSQL is refused with the way to back it up.
fn sqlite_path(database_url: &str) -> anyhow::Result<&str> {
    if database_url.starts_with("postgres://") || database_url.starts_with("postgresql://") {
        bail!(
            "DATABASE_URL is PostgreSQL: back it up with pg_dump (see RELIABILITY.md, \"Backups\")"
        );
    }
    let Some(rest) = database_url.strip_prefix("sqlite:") else {
        bail!("DATABASE_URL must start with sqlite: (or postgres://, backed up with pg_dump)");
    };
    let rest = rest.trim_start_matches("//");
    Ok(rest.split_once('?').map_or(rest, |(path, _)| path))
}

/// `FILE.partial`, where the copy is written before it is checked.
fn partial_path(to: &Path) -> PathBuf {
    let mut name = to.as_os_str().to_owned();
    name.push(".partial");
    PathBuf::from(name)
}

async fn copy(source: &str, partial: &Path) -> anyhow::Result<()> {
    let mut connection = AnyConnection::connect(&format!("sqlite://{source}?mode=ro"))
        .await
        .with_context(|| format!("open {source} read-only"))?;
    // billing-svc may hold the write lock for a checkpoint at the moment the read starts.
    sqlx::query("PRAGMA busy_timeout = 5000")
        .execute(&mut connection)
        .await?;
    sqlx::query("VACUUM INTO $1")
        .bind(partial.display().to_string())
        .execute(&mut connection)
        .await
        .with_context(|| format!("copy {source} into {}", partial.display()))?;
    connection.close().await?;
    std::fs::File::open(partial)
        .and_then(|file| file.sync_all())
        .with_context(|| format!("flush {} to disk", partial.display()))
}

/// Runs the ledger audit on the copy: a backup that breaks an invariant is no backup.
async fn check(partial: &Path) -> anyhow::Result<()> {
    audit_command::audit_database(&format!("sqlite://{}?mode=ro", partial.display()))
        .await
        .with_context(|| format!("the copy {} was not kept", partial.display()))
}

fn remove_if_present(path: &Path) -> anyhow::Result<()> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(error) => Err(error).with_context(|| format!("remove {}", path.display())),
    }
}

fn sync_folder_of(path: &Path) -> anyhow::Result<()> {
    let folder = path
        .parent()
        .filter(|folder| !folder.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::File::open(folder)
        .and_then(|folder| folder.sync_all())
        .with_context(|| format!("flush the folder {}", folder.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_sqlite_urls_are_backed_up_here() {
        assert_eq!(
            sqlite_path("sqlite://./data/billing.db?mode=rwc").ok(),
            Some("./data/billing.db")
        );
        assert_eq!(
            sqlite_path("sqlite:/var/billing.db").ok(),
            Some("/var/billing.db")
        );
        let postgres = sqlite_path("postgres://db/billing").map_err(|error| error.to_string());
        assert!(postgres.is_err_and(|error| error.contains("pg_dump")));
        assert!(sqlite_path("mysql://db").is_err());
    }

    #[test]
    fn the_copy_is_written_beside_the_target() {
        assert_eq!(
            partial_path(Path::new("/backups/billing.db")),
            PathBuf::from("/backups/billing.db.partial")
        );
    }
}
