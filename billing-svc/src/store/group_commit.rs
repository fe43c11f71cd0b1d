//! Group commit: write operations from many callers run in one database transaction, and every caller is
//! answered only after the commit that made its write durable.
//!
//! A writer task takes whatever operations are queued (up to a batch size), loads what they declared in
//! bulk, runs them one after the other in one [`Batch`], writes what they staged in bulk and commits once:
//! one fsync and a constant number of statements for the whole batch instead of several per operation. It
//! never
//! waits for a batch to fill: operations that arrive while a batch commits form the next one, so under low
//! load a batch is a single operation and latency stays that of a plain transaction.
//!
//! An operation that fails is answered with its error and what it staged is dropped; the others in the
//! batch are unaffected. If the commit fails, every operation of the batch gets the error and nothing of the
//! batch is written, so a caller never sees success for a write that is not durable.

use std::sync::Arc;

use futures::future::BoxFuture;
use sqlx::AnyPool;
use tokio::sync::{mpsc, oneshot};

use super::backend::Backend;
use super::batch::{Batch, Prefetch};
use crate::error::BillingError;

/// What a queued operation reports back to the writer: whether it succeeded (keep what it staged) and how
/// to answer its caller once the batch's fate is known.
type Finish = Box<dyn FnOnce(Result<(), Arc<sqlx::Error>>) + Send>;
type Run = Box<dyn for<'b> FnOnce(&'b mut Batch) -> BoxFuture<'b, (bool, Finish)> + Send>;

/// A queued operation and what it will read.
struct Job {
    prefetch: Prefetch,
    run: Run,
}

/// Operations waiting per writer before callers wait to enqueue.
const QUEUE_DEPTH: usize = 4096;

/// The handle callers enqueue operations through. Each writer owns one connection; an account's operations
/// always go to the same writer (by a hash of its id), so different writers never wait on each other's locks.
#[derive(Clone)]
pub struct GroupCommit {
    writers: Arc<[mpsc::Sender<Job>]>,
}

impl GroupCommit {
    /// Starts `writers` writer tasks on `pool`, each committing batches of at most `max_batch` operations.
    pub fn start(pool: AnyPool, backend: Backend, writers: usize, max_batch: usize) -> GroupCommit {
        let senders: Vec<_> = (0..writers.max(1))
            .map(|_| {
                let (sender, receiver) = mpsc::channel(QUEUE_DEPTH);
                tokio::spawn(run_writer(
                    pool.clone(),
                    backend,
                    receiver,
                    max_batch.max(1),
                ));
                sender
            })
            .collect();
        GroupCommit {
            writers: senders.into(),
        }
    }

    /// Runs `operation` in the next batch of the writer of `shard` and returns its result once durable.
    pub async fn write<T, F>(
        &self,
        shard: &str,
        prefetch: Prefetch,
        operation: F,
    ) -> Result<T, BillingError>
    where
        T: Send + 'static,
        F: for<'b> FnOnce(&'b mut Batch) -> BoxFuture<'b, Result<T, BillingError>> + Send + 'static,
    {
        let (answer, answered) = oneshot::channel();
        let run: Run = Box::new(move |batch| {
            Box::pin(async move {
                let result = operation(batch).await;
                let succeeded = result.is_ok();
                let finish: Finish = Box::new(move |commit| {
                    let outcome = match (result, commit) {
                        (Ok(value), Ok(())) => Ok(value),
                        (Ok(_), Err(error)) => Err(BillingError::Commit(error)),
                        (Err(error), _) => Err(error),
                    };
                    // The caller may have gone away (cancelled request): the write stands regardless.
                    let _ = answer.send(outcome);
                });
                (succeeded, finish)
            })
        });
        let job = Job { prefetch, run };
        let writer = &self.writers[shard_of(shard, self.writers.len())];
        writer
            .send(job)
            .await
            .map_err(|_| BillingError::WriteAborted)?;
        // A job dropped unrun (its batch failed before reaching it) never answers: nothing of it was written.
        answered.await.map_err(|_| BillingError::WriteAborted)?
    }
}

/// A stable shard for an account id.
fn shard_of(key: &str, shards: usize) -> usize {
    // FNV-1a: stable across runs and cheap; the distribution only needs to be even, not secret.
    let hash = key.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |hash, byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0000_0100_0000_01b3)
    });
    usize::try_from(hash % u64::try_from(shards).unwrap_or(1)).unwrap_or(0)
}

/// Takes batches off the queue until every sender is gone (shutdown), committing each.
async fn run_writer(
    pool: AnyPool,
    backend: Backend,
    mut queue: mpsc::Receiver<Job>,
    max_batch: usize,
) {
    let mut batch = Vec::with_capacity(max_batch);
    while queue.recv_many(&mut batch, max_batch).await > 0 {
        commit_batch(&pool, backend, batch.drain(..)).await;
    }
}

async fn commit_batch(pool: &AnyPool, backend: Backend, jobs: impl Iterator<Item = Job>) {
    let mut prefetch = Prefetch::default();
    let runs: Vec<Run> = jobs
        .map(|job| {
            prefetch.merge(job.prefetch);
            job.run
        })
        .collect();
    let operations = runs.len();
    let mut finishes: Vec<Finish> = Vec::with_capacity(operations);
    let outcome = async {
        let mut batch = Batch::begin(pool, backend).await?;
        batch.load(&prefetch).await?;
        for run in runs {
            let (succeeded, finish) = run(&mut batch).await;
            finishes.push(finish);
            batch.end_operation(succeeded).await?;
        }
        batch.commit().await
    }
    .await
    .map_err(Arc::new);
    match &outcome {
        Ok(statements) => {
            tracing::debug!(operations, statements, "batch committed");
        }
        Err(error) => {
            tracing::error!(%error, operations, "batch not committed; its operations fail");
        }
    }
    let outcome = outcome.map(|_| ());
    for finish in finishes {
        finish(outcome.clone());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_are_stable_and_in_range() {
        assert_eq!(shard_of("account-a", 1), 0);
        let shard = shard_of("account-a", 4);
        assert!(shard < 4);
        assert_eq!(shard_of("account-a", 4), shard);
    }
}
