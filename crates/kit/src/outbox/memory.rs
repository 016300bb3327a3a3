//! A publisher that keeps what it is given, for unit tests of code that writes or relays
//! events. It can be told to fail, as a broker that is down would, or to stall, as one that
//! takes records but does not acknowledge them.

use std::sync::{
    Arc, Mutex,
    atomic::{AtomicBool, Ordering},
};

use super::{Message, PublishError, Publisher};

#[derive(Clone, Default)]
pub struct MemoryPublisher {
    published: Arc<Mutex<Vec<Message>>>,
    down: Arc<AtomicBool>,
    stalled: Arc<AtomicBool>,
}

impl MemoryPublisher {
    pub fn new() -> Self {
        Self::default()
    }

    /// Everything delivered so far, in delivery order.
    pub fn published(&self) -> Vec<Message> {
        self.published.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// While down, every publish fails and nothing is kept.
    pub fn set_down(&self, down: bool) {
        self.down.store(down, Ordering::SeqCst);
    }

    /// While stalled, a publish does not return.
    pub fn set_stalled(&self, stalled: bool) {
        self.stalled.store(stalled, Ordering::SeqCst);
    }
}

impl Publisher for MemoryPublisher {
    async fn publish(&self, batch: &[Message]) -> Result<(), PublishError> {
        while self.stalled.load(Ordering::SeqCst) {
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
        if self.down.load(Ordering::SeqCst) {
            return Err(PublishError("the memory publisher is down".to_owned()));
        }
        self.published.lock().unwrap_or_else(|p| p.into_inner()).extend_from_slice(batch);
        Ok(())
    }
}
