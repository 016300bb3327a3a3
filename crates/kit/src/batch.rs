//! Group commit: many concurrent requests' writes committed together, each request answered
//! once its own write is done.
//!
//! A [`Batcher`] owns a queue and one writer task on a [`Background`]. Requests
//! [`submit`](Batcher::submit) an item and wait; the writer takes whatever is queued (up to
//! `max_batch`), hands the batch to the service's `commit` function, and answers each request
//! with its own result. While a batch commits the next one queues up, so a busy service pays
//! one statement and one WAL flush for many requests and an idle one answers at once. A full
//! queue makes submitters wait (backpressure). When the background work stops, the writer
//! refuses new items, commits everything already handed over, then ends.

use std::future::Future;

use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use crate::tasks::Background;

/// The writer has stopped: the item was not taken (or its answer was lost with the writer).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the batch writer has stopped")]
pub struct Stopped;

struct Pending<T, R> {
    item: T,
    answer: oneshot::Sender<R>,
}

/// Hands items of type `T` to a group-committing writer and returns each one's `R`.
pub struct Batcher<T, R> {
    sender: mpsc::Sender<Pending<T, R>>,
}

impl<T, R> Clone for Batcher<T, R> {
    fn clone(&self) -> Self {
        Self { sender: self.sender.clone() }
    }
}

/// How a [`Batcher`] queues and batches.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Items waiting at most; more submitters wait for room.
    pub queue: usize,
    /// Items in one batch at most.
    pub max_batch: usize,
}

impl<T: Send + 'static, R: Send + 'static> Batcher<T, R> {
    /// Starts the writer, called `name`, on `background`. `commit` gets each batch (never
    /// empty) and must answer one `R` per item, in the batch's order.
    pub fn start<F, Fut>(background: &Background, name: &'static str, limits: Limits, commit: F) -> Self
    where
        F: FnMut(Vec<T>) -> Fut + Send + 'static,
        Fut: Future<Output = Vec<R>> + Send + 'static,
    {
        let (sender, receiver) = mpsc::channel(limits.queue.max(1));
        background.spawn(name, move |stop| write_batches(receiver, stop, limits.max_batch.max(1), commit));
        Self { sender }
    }

    /// Hands `item` over and waits for its result.
    pub async fn submit(&self, item: T) -> Result<R, Stopped> {
        let (answer, answered) = oneshot::channel();
        self.sender.send(Pending { item, answer }).await.map_err(|_| Stopped)?;
        answered.await.map_err(|_| Stopped)
    }

    /// Items handed over and not yet taken into a batch.
    pub fn waiting(&self) -> usize {
        self.sender.max_capacity() - self.sender.capacity()
    }
}

async fn write_batches<T, R, F, Fut>(
    mut receiver: mpsc::Receiver<Pending<T, R>>,
    stop: CancellationToken,
    max_batch: usize,
    mut commit: F,
) where
    F: FnMut(Vec<T>) -> Fut,
    Fut: Future<Output = Vec<R>>,
{
    let mut batch = Vec::with_capacity(max_batch);
    loop {
        tokio::select! {
            received = receiver.recv_many(&mut batch, max_batch) => {
                if received == 0 {
                    return;
                }
                write(&mut batch, &mut commit).await;
            }
            () = stop.cancelled() => break,
        }
    }
    // Stopping: refuse new items, commit every item already handed over, then end.
    receiver.close();
    while receiver.recv_many(&mut batch, max_batch).await > 0 {
        write(&mut batch, &mut commit).await;
    }
}

async fn write<T, R, F, Fut>(batch: &mut Vec<Pending<T, R>>, commit: &mut F)
where
    F: FnMut(Vec<T>) -> Fut,
    Fut: Future<Output = Vec<R>>,
{
    let (items, answers): (Vec<T>, Vec<oneshot::Sender<R>>) =
        batch.drain(..).map(|p| (p.item, p.answer)).unzip();
    let expected = items.len();
    let results = commit(items).await;
    if results.len() != expected {
        // A bug in `commit`: its callers get Stopped rather than someone else's answer.
        tracing::error!(
            expected,
            answered = results.len(),
            "a batch commit answered the wrong number of items"
        );
        return;
    }
    for (answer, result) in answers.into_iter().zip(results) {
        let _ = answer.send(result);
    }
}

/// What a failed batch says about its items, for [`together_else_alone`].
pub trait BatchError: std::fmt::Display {
    /// The store cannot take any write now (unreachable, overloaded, timed out): each item
    /// alone would fail the same way, each after its own wait.
    fn is_unavailable(&self) -> bool;
    /// An item's answer when its batch failed that way.
    fn unavailable() -> Self;
}

/// Commits `items` together with `commit`, the usual `commit` of a [`Batcher`]. If the batch
/// fails as a whole, commits each item alone, so one bad item never fails the others; but if
/// the failure says the store is unavailable, answers every item not yet committed
/// [`BatchError::unavailable`] at once instead of waiting as long again for each (while new
/// items queue behind them). `what` names the batch in the log.
pub async fn together_else_alone<'a, T, R, E, F, Fut>(
    what: &'static str,
    items: &'a [T],
    mut commit: F,
) -> Vec<Result<R, E>>
where
    E: BatchError,
    F: FnMut(&'a [T]) -> Fut,
    Fut: Future<Output = Result<Vec<Result<R, E>>, E>>,
{
    let err = match commit(items).await {
        Ok(results) => return results,
        Err(err) if items.len() == 1 => return vec![Err(err)],
        Err(err) => err,
    };
    let mut results = Vec::with_capacity(items.len());
    if err.is_unavailable() {
        tracing::warn!(error = %err, rows = items.len(), batch = what, "the store is unavailable; a batch was not written");
    } else {
        tracing::warn!(error = %err, rows = items.len(), batch = what, "a batch failed; committing its items one at a time");
        for one in items.chunks(1) {
            match commit(one).await {
                Ok(answers) => {
                    results.push(answers.into_iter().next().unwrap_or_else(|| Err(E::unavailable())))
                }
                Err(err) if err.is_unavailable() => {
                    tracing::warn!(error = %err, rows = items.len() - results.len(), batch = what, "the store became unavailable; the rest of a batch was not written");
                    break;
                }
                Err(err) => results.push(Err(err)),
            }
        }
    }
    results.resize_with(items.len(), || Err(E::unavailable()));
    results
}

#[cfg(test)]
mod tests {
    use std::{
        sync::{Arc, Mutex},
        time::Duration,
    };

    use super::*;

    const LIMITS: Limits = Limits { queue: 64, max_batch: 8 };

    #[tokio::test]
    async fn each_submitter_gets_its_own_answer_and_batches_group_what_queued() {
        let background = Background::new();
        let (entered, mut batches) = mpsc::unbounded_channel();
        let (gate, opened) = tokio::sync::watch::channel(false);
        let batcher = Batcher::start(&background, "double", LIMITS, move |items: Vec<u32>| {
            let (entered, mut opened) = (entered.clone(), opened.clone());
            async move {
                let _ = entered.send(items.len());
                // Batches wait for the gate, so the rest queue up behind the first.
                let _ = opened.wait_for(|open| *open).await;
                items.into_iter().map(|i| i * 2).collect()
            }
        });
        let first = tokio::spawn({
            let batcher = batcher.clone();
            async move { batcher.submit(0).await }
        });
        assert_eq!(batches.recv().await, Some(1), "the first item is committed alone");
        let rest: Vec<_> = (1..=20)
            .map(|i| {
                let batcher = batcher.clone();
                tokio::spawn(async move { batcher.submit(i).await })
            })
            .collect();
        while batcher.waiting() < 20 {
            tokio::task::yield_now().await;
        }
        gate.send_replace(true);
        assert_eq!(first.await.ok(), Some(Ok(0)));
        for (i, task) in rest.into_iter().enumerate() {
            assert_eq!(task.await.ok(), Some(Ok((i as u32 + 1) * 2)));
        }
        let sizes: Vec<usize> = std::iter::from_fn(|| batches.try_recv().ok()).collect();
        assert_eq!(sizes, vec![8, 8, 4], "the queued items went in full batches");
        assert!(background.stop(Duration::from_secs(1)).await);
        assert_eq!(batcher.submit(1).await, Err(Stopped), "nothing is taken after the stop");
    }

    #[tokio::test]
    async fn items_handed_over_before_the_stop_are_all_committed() {
        let background = Background::new();
        let committed = Arc::new(Mutex::new(0usize));
        let count = committed.clone();
        let batcher = Batcher::start(&background, "count", LIMITS, move |items: Vec<()>| {
            let count = count.clone();
            async move {
                tokio::time::sleep(Duration::from_millis(5)).await;
                count.lock().map(|mut c| *c += items.len()).ok();
                vec![true; items.len()]
            }
        });
        let tasks: Vec<_> = (0..40)
            .map(|_| {
                let batcher = batcher.clone();
                tokio::spawn(async move { batcher.submit(()).await })
            })
            .collect();
        tokio::task::yield_now().await;
        assert!(background.stop(Duration::from_secs(5)).await);
        let mut confirmed = 0;
        for task in tasks {
            confirmed += usize::from(task.await.ok() == Some(Ok(true)));
        }
        assert!(confirmed > 0);
        assert_eq!(
            *committed.lock().expect("lock"),
            confirmed,
            "every confirmed item was committed, no other"
        );
    }

    #[derive(Debug, PartialEq)]
    enum Failure {
        Bad(u32),
        Down,
    }

    impl std::fmt::Display for Failure {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            write!(f, "{self:?}")
        }
    }

    impl BatchError for Failure {
        fn is_unavailable(&self) -> bool {
            *self == Failure::Down
        }
        fn unavailable() -> Self {
            Failure::Down
        }
    }

    /// A store that refuses any batch holding a `0` (a bad item), and is down from its
    /// `down_from`-th call on. Records the size of each batch it was handed.
    async fn store(
        items: &[u32],
        calls: &Mutex<Vec<usize>>,
        down_from: usize,
    ) -> Result<Vec<Result<u32, Failure>>, Failure> {
        let call = {
            let mut calls = calls.lock().expect("lock");
            calls.push(items.len());
            calls.len()
        };
        if call >= down_from {
            Err(Failure::Down)
        } else if let Some(bad) = items.iter().find(|i| **i == 0) {
            Err(Failure::Bad(*bad))
        } else {
            Ok(items.iter().map(|i| Ok(i * 10)).collect())
        }
    }

    #[tokio::test]
    async fn a_refused_batch_is_committed_item_by_item_so_one_bad_item_fails_alone() {
        let calls = Mutex::new(Vec::new());
        let items = [1, 0, 3];
        let results = together_else_alone("test", &items, |part| store(part, &calls, usize::MAX)).await;
        assert_eq!(results, vec![Ok(10), Err(Failure::Bad(0)), Ok(30)]);
        assert_eq!(*calls.lock().expect("lock"), vec![3, 1, 1, 1]);

        let calls = Mutex::new(Vec::new());
        let results = together_else_alone("test", &[1, 2], |part| store(part, &calls, usize::MAX)).await;
        assert_eq!(results, vec![Ok(10), Ok(20)]);
        assert_eq!(*calls.lock().expect("lock"), vec![2], "a batch that commits is committed once");
    }

    #[tokio::test]
    async fn a_store_that_is_down_fails_every_item_at_once() {
        let calls = Mutex::new(Vec::new());
        let results = together_else_alone("test", &[1, 2, 3], |part| store(part, &calls, 1)).await;
        assert_eq!(results, vec![Err(Failure::Down), Err(Failure::Down), Err(Failure::Down)]);
        assert_eq!(*calls.lock().expect("lock"), vec![3], "no item is tried alone");

        // Down in the middle of the one-at-a-time commits: the rest are not tried.
        let calls = Mutex::new(Vec::new());
        let results = together_else_alone("test", &[1, 0, 3, 4], |part| store(part, &calls, 3)).await;
        assert_eq!(results, vec![Ok(10), Err(Failure::Down), Err(Failure::Down), Err(Failure::Down)]);
        assert_eq!(*calls.lock().expect("lock"), vec![4, 1, 1]);
    }
}
