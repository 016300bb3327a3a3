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
}
