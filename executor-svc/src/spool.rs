//! The durable settlement spool: settlements billing-svc could not take are written here and replayed
//! with `Settle` (idempotent by execution id) until acknowledged, by a background task and at every start.
//!
//! Storage is one JSON line per record in `<spool path>/settlements.jsonl`: `{"add":{...}}` when a
//! settlement is spooled, `{"ack":{...}}` when billing-svc acknowledged it. Each append is fsynced before
//! the call returns, so a response saying `PENDING` is only sent once the settlement is on disk. The file is
//! compacted (rewritten with only what is pending) at start and emptied whenever nothing is pending. Only
//! the key's id is stored, never the plain key.
//!
//! When a write fails (a full disk), the spool is unwritable: what could not be written stays pending in
//! memory and is still replayed to billing-svc, nothing more is appended (a torn last line would swallow the
//! next record), and executor-svc refuses new executions of standard keys ([`Spool::writable`]) rather than
//! promise a settlement it could lose on a restart. The replay loop tries to write the whole pending set
//! again (and a probe block, so that an empty spool proves there is room) until it succeeds, then the spool
//! is writable again.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use proto::billing::v1::{Labels, SettleRequest, UsageStatus};
use serde::{Deserialize, Serialize};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tonic::Code;

use crate::answer::TokenClasses;
use crate::metering::Metering;
use proto::ids::{ApiKeyId, ExecutionId};

const FILE_NAME: &str = "settlements.jsonl";
/// Written and removed to prove the disk has room again after a failed write.
const PROBE_NAME: &str = "room.probe";
const PROBE_BYTES: usize = 64 * 1024;
/// First pause after a failed replay; it doubles up to the configured maximum.
const FIRST_RETRY_DELAY: Duration = Duration::from_millis(200);

/// Everything `Settle` needs, as written to disk.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SpooledSettlement {
    pub api_key_id: ApiKeyId,
    pub execution_id: ExecutionId,
    pub request_id: String,
    pub model: String,
    pub workspace_id: String,
    pub session_id: String,
    pub endpoint: String,
    /// The customer's end user; lines written before it was kept name none.
    #[serde(default)]
    pub end_user_id: String,
    pub input_tokens: u64,
    pub output_tokens: u64,
    /// `billing.v1.UsageStatus` by name, e.g. `USAGE_STATUS_COMPLETED`.
    pub status: String,
    pub duration_ms: u64,
    /// The Open time, so that the replay is priced as the execution was.
    pub started_at_unix_nanos: u64,
    /// The provider that served the call and the providers asked; lines an executor wrote before routes
    /// existed were served by its one provider, `default`, asked once.
    #[serde(default = "provider_before_routes")]
    pub provider: String,
    #[serde(default = "attempts_before_routes")]
    pub attempts: u32,
    /// The token classes; lines written before classes were kept have none.
    #[serde(default)]
    pub classes: TokenClasses,
}

fn provider_before_routes() -> String {
    crate::config::DEFAULT_PROVIDER.to_string()
}

fn attempts_before_routes() -> u32 {
    1
}

impl SpooledSettlement {
    pub fn started_at(started_at: SystemTime) -> u64 {
        started_at.duration_since(UNIX_EPOCH).map_or(0, |elapsed| {
            u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX)
        })
    }

    pub fn to_request(&self) -> SettleRequest {
        let nanos = self.started_at_unix_nanos;
        SettleRequest {
            api_key_id: self.api_key_id.to_string(),
            execution_id: self.execution_id.to_string(),
            labels: Some(Labels {
                model: self.model.clone(),
                workspace_id: self.workspace_id.clone(),
                session_id: self.session_id.clone(),
                endpoint: self.endpoint.clone(),
                end_user_id: self.end_user_id.clone(),
            }),
            input_tokens: self.input_tokens,
            output_tokens: self.output_tokens,
            status: UsageStatus::from_str_name(&self.status)
                .unwrap_or(UsageStatus::Unspecified)
                .into(),
            duration_ms: self.duration_ms,
            provider: self.provider.clone(),
            attempts: self.attempts,
            classes: Some(self.classes.to_pb()),
            started_at: Some(prost_types::Timestamp {
                seconds: i64::try_from(nanos / 1_000_000_000).unwrap_or(i64::MAX),
                nanos: i32::try_from(nanos % 1_000_000_000).unwrap_or(0),
            }),
            ..SettleRequest::default()
        }
    }
}

#[derive(Debug, Serialize, Deserialize)]
// Externally tagged: an internally tagged enum would buffer numbers through serde's `Content`, which
// the workspace's `arbitrary_precision` serde_json cannot read back.
#[serde(rename_all = "snake_case")]
enum Record {
    Add { settlement: Box<SpooledSettlement> },
    Ack { execution_id: ExecutionId },
}

struct State {
    path: PathBuf,
    file: File,
    pending: BTreeMap<ExecutionId, SpooledSettlement>,
}

/// The spool; cheap to clone.
#[derive(Clone)]
pub struct Spool {
    state: Arc<Mutex<State>>,
    added: Arc<Notify>,
    /// Every pending settlement is on disk and the last write succeeded.
    writable: Arc<AtomicBool>,
}

impl Spool {
    /// Opens (creating the folder if needed) and compacts the spool, keeping what is still pending.
    pub fn open(dir: &Path) -> std::io::Result<Spool> {
        std::fs::create_dir_all(dir)?;
        let path = dir.join(FILE_NAME);
        let pending = read_pending(&path)?;
        let file = rewrite(&path, pending.values())?;
        if !pending.is_empty() {
            tracing::info!(pending = pending.len(), "spool holds settlements to replay");
        }
        Ok(Spool {
            state: Arc::new(Mutex::new(State {
                path,
                file,
                pending,
            })),
            added: Arc::new(Notify::new()),
            writable: Arc::new(AtomicBool::new(true)),
        })
    }

    /// Whether a settlement handed to [`Spool::add`] now would be on disk when it returns.
    pub fn writable(&self) -> bool {
        self.writable.load(Ordering::Acquire)
    }

    fn unwritable(&self, error: &std::io::Error) {
        if self.writable.swap(false, Ordering::AcqRel) {
            tracing::error!(%error, "the spool cannot be written: standard-key executions are refused until it can");
        }
    }

    /// When unwritable: writes every pending settlement again (atomically, as at start) and a probe block,
    /// and becomes writable if both succeed. Returns whether the spool is writable.
    pub async fn restore(&self) -> bool {
        if self.writable() {
            return true;
        }
        let state = self.state.clone();
        let restored = tokio::task::spawn_blocking(move || {
            let mut state = Self::lock(&state);
            let file = rewrite(&state.path, state.pending.values())?;
            probe_room(&state.path)?;
            state.file = file;
            Ok::<_, std::io::Error>(state.pending.len())
        })
        .await
        .map_err(std::io::Error::other)
        .and_then(|result| result);
        match restored {
            Ok(pending) => {
                self.writable.store(true, Ordering::Release);
                tracing::info!(pending, "the spool is writable again");
                true
            }
            Err(error) => {
                tracing::debug!(%error, "the spool is still not writable");
                false
            }
        }
    }

    fn lock(state: &Mutex<State>) -> MutexGuard<'_, State> {
        // A panic while holding the lock cannot leave the map half-updated in a way that matters: the file
        // is the source of truth and every record is appended whole.
        state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Writes a settlement durably. If it cannot be written it stays pending in memory and is replayed
    /// while the process lives, the spool becomes unwritable, and the error is returned so the caller can
    /// log it.
    pub async fn add(&self, settlement: SpooledSettlement) -> std::io::Result<()> {
        let state = self.state.clone();
        let writable = self.writable();
        let result = tokio::task::spawn_blocking(move || {
            let mut state = Self::lock(&state);
            state
                .pending
                .insert(settlement.execution_id.clone(), settlement.clone());
            if !writable {
                return Err(std::io::Error::other(
                    "the spool is unwritable since an earlier write failed",
                ));
            }
            append(
                &mut state.file,
                &Record::Add {
                    settlement: Box::new(settlement),
                },
            )
        })
        .await
        .map_err(std::io::Error::other)
        .and_then(|result| result);
        self.added.notify_one();
        if let Err(error) = &result {
            self.unwritable(error);
        }
        result
    }

    /// Records that billing-svc acknowledged a settlement. While the spool is unwritable only memory
    /// changes: the next successful [`Spool::restore`] writes what is still pending.
    pub async fn ack(&self, execution_id: ExecutionId) -> std::io::Result<()> {
        let state = self.state.clone();
        let writable = self.writable();
        let result = tokio::task::spawn_blocking(move || {
            let mut state = Self::lock(&state);
            if state.pending.remove(&execution_id).is_none() || !writable {
                return Ok(());
            }
            if state.pending.is_empty() {
                // Nothing left: start the file afresh instead of letting acks pile up.
                state.file = rewrite(&state.path, std::iter::empty())?;
                Ok(())
            } else {
                append(&mut state.file, &Record::Ack { execution_id })
            }
        })
        .await
        .map_err(std::io::Error::other)
        .and_then(|result| result);
        if let Err(error) = &result {
            self.unwritable(error);
        }
        result
    }

    /// What is waiting for billing-svc.
    pub fn pending(&self) -> Vec<SpooledSettlement> {
        Self::lock(&self.state).pending.values().cloned().collect()
    }

    /// Tries every pending settlement once. `true` when none is left.
    pub async fn flush(&self, metering: &Metering) -> bool {
        for settlement in self.pending() {
            match metering
                .settle(settlement.to_request(), &settlement.request_id)
                .await
            {
                Ok(answer) => {
                    tracing::info!(
                        execution_id = %settlement.execution_id,
                        replayed = answer.replayed,
                        "spooled settlement acknowledged"
                    );
                    if let Err(error) = self.ack(settlement.execution_id.clone()).await {
                        tracing::error!(%error, "cannot record a spool acknowledgement; it will be replayed again");
                    }
                }
                Err(status) => {
                    tracing::warn!(
                        execution_id = %settlement.execution_id,
                        code = ?status.code(),
                        message = status.message(),
                        "spooled settlement not acknowledged yet"
                    );
                    // When billing-svc is down every other entry would fail the same way: wait instead.
                    if matches!(status.code(), Code::Unavailable | Code::DeadlineExceeded) {
                        return false;
                    }
                }
            }
        }
        self.pending().is_empty()
    }

    /// Replays until `stop` is cancelled: at once, whenever a settlement is added, and with exponential
    /// backoff (up to `max_delay`) while billing-svc does not acknowledge.
    pub async fn replay_until_stopped(
        self,
        metering: Metering,
        stop: CancellationToken,
        max_delay: Duration,
    ) {
        let mut delay = FIRST_RETRY_DELAY;
        loop {
            let restored = self.restore().await;
            let wait = if self.flush(&metering).await && restored {
                delay = FIRST_RETRY_DELAY;
                None
            } else {
                let current = delay;
                delay = (delay * 2).min(max_delay);
                Some(current)
            };
            tokio::select! {
                () = stop.cancelled() => return,
                () = self.added.notified() => {}
                () = sleep_or_forever(wait) => {}
            }
        }
    }
}

async fn sleep_or_forever(delay: Option<Duration>) {
    match delay {
        Some(delay) => tokio::time::sleep(delay).await,
        None => std::future::pending().await,
    }
}

fn append(file: &mut File, record: &Record) -> std::io::Result<()> {
    let mut line = serde_json::to_vec(record).map_err(std::io::Error::other)?;
    line.push(b'\n');
    file.write_all(&line)?;
    file.sync_data()
}

/// Writes and removes a block next to the spool file: fails when the disk has no room.
fn probe_room(spool_file: &Path) -> std::io::Result<()> {
    let probe = spool_file.with_file_name(PROBE_NAME);
    let written = File::create(&probe).and_then(|mut file| {
        file.write_all(&[0; PROBE_BYTES])?;
        file.sync_all()
    });
    let removed = std::fs::remove_file(&probe);
    written.and(removed)
}

/// Replays the file's records; a torn last line (a crash mid-append, before the caller got an answer) is
/// skipped.
fn read_pending(path: &Path) -> std::io::Result<BTreeMap<ExecutionId, SpooledSettlement>> {
    let mut pending = BTreeMap::new();
    let file = match File::open(path) {
        Ok(file) => file,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(pending),
        Err(error) => return Err(error),
    };
    for (number, line) in BufReader::new(file).lines().enumerate() {
        let line = line?;
        if line.trim().is_empty() {
            continue;
        }
        match serde_json::from_str::<Record>(&line) {
            Ok(Record::Add { settlement }) => {
                pending.insert(settlement.execution_id.clone(), *settlement);
            }
            Ok(Record::Ack { execution_id }) => {
                pending.remove(&execution_id);
            }
            Err(error) => {
                tracing::warn!(line = number + 1, %error, "skipping an unreadable spool record")
            }
        }
    }
    Ok(pending)
}

/// Atomically replaces the file with `pending` (write aside, fsync, rename, fsync the folder) and returns
/// an append handle on it.
fn rewrite<'a>(
    path: &Path,
    pending: impl Iterator<Item = &'a SpooledSettlement>,
) -> std::io::Result<File> {
    let aside = path.with_extension("jsonl.tmp");
    {
        let mut file = File::create(&aside)?;
        for settlement in pending {
            let mut line = serde_json::to_vec(&Record::Add {
                settlement: Box::new(settlement.clone()),
            })
            .map_err(std::io::Error::other)?;
            line.push(b'\n');
            file.write_all(&line)?;
        }
        file.sync_all()?;
    }
    std::fs::rename(&aside, path)?;
    if let Some(dir) = path.parent() {
        File::open(dir)?.sync_all()?;
    }
    OpenOptions::new().append(true).open(path)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    fn settlement(id: &str) -> SpooledSettlement {
        SpooledSettlement {
            api_key_id: "key-1".into(),
            execution_id: id.into(),
            request_id: "req".into(),
            model: "mock".into(),
            workspace_id: "ws".into(),
            session_id: "s".into(),
            end_user_id: "u".into(),
            endpoint: "/execute".into(),
            input_tokens: 6548,
            output_tokens: 108,
            status: UsageStatus::Completed.as_str_name().into(),
            duration_ms: 12,
            started_at_unix_nanos: 1_700_000_000_123_456_789,
            provider: "default".into(),
            attempts: 1,
            classes: TokenClasses {
                cached_input: 6000,
                ..TokenClasses::default()
            },
        }
    }

    #[tokio::test]
    async fn pending_settlements_survive_a_restart_and_acks_remove_them() {
        let dir = tempfile::tempdir().unwrap();
        let spool = Spool::open(dir.path()).unwrap();
        spool.add(settlement("a")).await.unwrap();
        spool.add(settlement("b")).await.unwrap();
        spool.ack("a".into()).await.unwrap();
        drop(spool);

        let reopened = Spool::open(dir.path()).unwrap();
        assert_eq!(reopened.pending(), vec![settlement("b")]);
        reopened.ack("b".into()).await.unwrap();
        drop(reopened);

        assert!(Spool::open(dir.path()).unwrap().pending().is_empty());
        let on_disk = std::fs::read_to_string(dir.path().join(FILE_NAME)).unwrap();
        assert!(
            on_disk.is_empty(),
            "fully acknowledged spool is compacted: {on_disk:?}"
        );
    }

    #[tokio::test]
    async fn a_torn_last_line_is_skipped() {
        let dir = tempfile::tempdir().unwrap();
        let spool = Spool::open(dir.path()).unwrap();
        spool.add(settlement("a")).await.unwrap();
        drop(spool);
        let mut file = OpenOptions::new()
            .append(true)
            .open(dir.path().join(FILE_NAME))
            .unwrap();
        file.write_all(b"{\"add\":{\"settlement\":{\"api_k")
            .unwrap();

        assert_eq!(
            Spool::open(dir.path()).unwrap().pending(),
            vec![settlement("a")]
        );
    }

    #[test]
    fn replay_request_carries_the_original_figures_and_start_time() {
        let request = settlement("a").to_request();
        assert_eq!((request.input_tokens, request.output_tokens), (6548, 108));
        assert_eq!(request.status(), UsageStatus::Completed);
        assert_eq!(
            request.started_at,
            Some(prost_types::Timestamp {
                seconds: 1_700_000_000,
                nanos: 123_456_789
            })
        );
    }
}
