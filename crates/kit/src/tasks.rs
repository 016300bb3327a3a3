//! Background work that stops cleanly: every loop of a service (the audit writer, key reloads,
//! pruning, the rate limiter's cleanup, and later outbox relays and event consumers) runs on
//! one [`Background`], built on tokio-util's `TaskTracker` and `CancellationToken`.
//!
//! On shutdown the service first stops serving HTTP (in-flight requests finish), then calls
//! [`Background::stop`]: every task sees its token cancelled, finishes the batch it holds, and
//! returns; `stop` waits for them up to a deadline.

use std::{future::Future, time::Duration};

use tokio_util::{sync::CancellationToken, task::TaskTracker};

/// The background tasks of one service (or of one process running several).
#[derive(Clone, Default)]
pub struct Background {
    tracker: TaskTracker,
    cancel: CancellationToken,
}

impl Background {
    pub fn new() -> Self {
        Self::default()
    }

    /// Runs `task` until it returns. It is handed a token that is cancelled when the
    /// service stops; it must then finish what it holds and return.
    pub fn spawn<F, Fut>(&self, name: &'static str, task: F)
    where
        F: FnOnce(CancellationToken) -> Fut,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let future = task(self.cancel.child_token());
        self.tracker.spawn(async move {
            future.await;
            tracing::debug!(task = name, "background task finished");
        });
    }

    /// Runs `tick` every `period` (the first time after one period) until the service stops.
    /// A tick in progress when the stop comes is completed, never cut off.
    pub fn every<F, Fut>(&self, name: &'static str, period: Duration, mut tick: F)
    where
        F: FnMut() -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        self.spawn(name, move |cancel| async move {
            loop {
                tokio::select! {
                    () = cancel.cancelled() => break,
                    () = tokio::time::sleep(period) => tick().await,
                }
            }
        });
    }

    /// Tells every task to finish and waits for them, at most `deadline`. Returns whether all
    /// of them finished in time (those that did not are left to the runtime's end).
    pub async fn stop(&self, deadline: Duration) -> bool {
        self.cancel.cancel();
        self.tracker.close();
        let finished = tokio::time::timeout(deadline, self.tracker.wait()).await.is_ok();
        if !finished {
            tracing::warn!(
                left = self.tracker.len(),
                "background tasks did not finish within the shutdown deadline"
            );
        }
        finished
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    };

    use super::*;

    #[tokio::test(start_paused = true)]
    async fn periodic_work_runs_on_time_and_stops_when_told() {
        let background = Background::new();
        let ticks = Arc::new(AtomicUsize::new(0));
        let counter = ticks.clone();
        background.every("count", Duration::from_secs(10), move || {
            let counter = counter.clone();
            async move {
                counter.fetch_add(1, Ordering::SeqCst);
            }
        });
        tokio::time::sleep(Duration::from_secs(35)).await;
        assert_eq!(ticks.load(Ordering::SeqCst), 3);
        assert!(background.stop(Duration::from_secs(1)).await);
        tokio::time::sleep(Duration::from_secs(60)).await;
        assert_eq!(ticks.load(Ordering::SeqCst), 3, "no tick after stop");
    }

    #[tokio::test(start_paused = true)]
    async fn a_task_finishes_its_batch_before_stop_returns() {
        let background = Background::new();
        let done = Arc::new(AtomicUsize::new(0));
        let flag = done.clone();
        background.spawn("batch", move |cancel| async move {
            cancel.cancelled().await;
            // The last batch takes a while; stop must wait for it.
            tokio::time::sleep(Duration::from_millis(300)).await;
            flag.store(1, Ordering::SeqCst);
        });
        assert!(background.stop(Duration::from_secs(5)).await);
        assert_eq!(done.load(Ordering::SeqCst), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn a_task_that_ignores_the_stop_is_abandoned_at_the_deadline() {
        let background = Background::new();
        background.spawn("stubborn", |_| std::future::pending());
        assert!(!background.stop(Duration::from_secs(2)).await);
    }
}
