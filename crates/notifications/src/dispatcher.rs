//! Sends queued messages when they are due, through the configured [`Sender`].
//!
//! A pass claims due messages for a lease (`FOR UPDATE SKIP LOCKED`, so two replicas never
//! claim the same one), decides each on what is known now (the patient's preferences and
//! addresses, whether the appointment still stands), renders and sends it, and records the
//! outcome; what a pass reads is fetched in three queries and its outcomes recorded in one,
//! however many messages it holds. A provider error is retried with backoff (5 s doubling, at most 15 min; failed after
//! [`MAX_ATTEMPTS`]); a refusal that cannot pass is failed at once. Messages due while the
//! service was stopped are sent by the first pass after it starts; a message whose lease lapsed
//! (its dispatcher died while sending) is claimed again, so delivery is at least once, and
//! once unless a process dies between the provider's answer and the record of it.

use std::{sync::Arc, time::Duration as StdDuration};

use futures_util::future::join_all;
use kit::{tasks::Background, zone::Zone};
use time::{Duration, OffsetDateTime};
use tokio::sync::Notify;

use crate::{
    sender::{AnySender, SendError, Sender},
    store::{Claimed, Contexts, Outcome, Store},
    templates::{self, Context, Kind, Visit},
};

/// Attempts before a message is failed.
pub const MAX_ATTEMPTS: i32 = 8;
/// Messages claimed (and sent concurrently) per pass.
const BATCH: i64 = 32;
/// How long a claim holds: longer than a send can take (the SDK gives up after 10 s).
const LEASE: Duration = Duration::seconds(60);
/// How often the queue is looked at when nothing wakes the dispatcher.
const POLL: StdDuration = StdDuration::from_millis(500);

#[derive(Clone)]
pub struct Dispatcher {
    store: Store,
    sender: AnySender,
    clinic: String,
}

impl Dispatcher {
    pub fn new(store: Store, sender: AnySender, clinic: String) -> Self {
        Self { store, sender, clinic }
    }

    /// Runs passes on `background` until it stops (the pass in progress is finished); `wake`
    /// starts a pass at once.
    pub fn start(self, background: &Background, wake: Arc<Notify>) {
        background.spawn("notification dispatcher", move |cancel| async move {
            loop {
                let busy = match self.pass().await {
                    Ok(count) => count > 0,
                    Err(err) => {
                        tracing::warn!(error = %err, "cannot claim due messages");
                        false
                    }
                };
                if busy {
                    continue;
                }
                tokio::select! {
                    _ = cancel.cancelled() => break,
                    _ = wake.notified() => {}
                    _ = tokio::time::sleep(POLL) => {}
                }
            }
        });
    }

    /// Claims, sends and records one batch; how many messages it held.
    pub async fn pass(&self) -> Result<usize, sqlx::Error> {
        let claimed = self.store.claim(BATCH, LEASE).await?;
        if claimed.is_empty() {
            return Ok(0);
        }
        let outcomes: Vec<Outcome> = match self.store.contexts(&claimed).await {
            Ok(contexts) => join_all(claimed.iter().map(|message| self.attempt(message, &contexts))).await,
            Err(err) => claimed.iter().map(|m| retry(m.attempts, format!("database: {err}"))).collect(),
        };
        let finished: Vec<_> = claimed.iter().map(|m| m.id).zip(outcomes).collect();
        for (_, outcome) in &finished {
            metrics::counter!("notifications_attempts_total", "outcome" => label(outcome)).increment(1);
        }
        self.store.finish(&finished).await?;
        Ok(claimed.len())
    }

    async fn attempt(&self, message: &Claimed, contexts: &Contexts) -> Outcome {
        match self.decide_and_send(message, contexts).await {
            Ok(outcome) => outcome,
            Err(Retry(error)) => retry(message.attempts, error),
        }
    }

    async fn decide_and_send(&self, message: &Claimed, contexts: &Contexts) -> Result<Outcome, Retry> {
        let Some(kind) = Kind::parse(&message.kind) else {
            return Ok(Outcome::Failed(format!("unknown message kind {}", message.kind)));
        };
        let (contact, preferences, appointment) = contexts.of(message);
        // The patient's or the appointment's event may still be on its way (two topics).
        let contact = contact.ok_or_else(|| Retry("the patient is not known yet".into()))?;
        if !contact.active {
            return Ok(Outcome::Skipped("the patient record is deactivated".into()));
        }
        let visit = match (message.appointment_id, appointment) {
            (None, _) => None,
            (Some(_), None) => return Err(Retry("the appointment is not known yet".into())),
            (Some(_), Some(a)) => {
                if kind == Kind::Reminder {
                    if !matches!(a.status.as_str(), "booked" | "checked_in") {
                        return Ok(Outcome::Cancelled("the appointment is no longer booked".into()));
                    }
                    if a.starts_at <= OffsetDateTime::now_utc() {
                        return Ok(Outcome::Cancelled("the appointment has begun".into()));
                    }
                }
                let zone = Zone::parse(&a.time_zone).unwrap_or_else(|_| Zone::utc());
                Some(Visit {
                    practitioner: a.practitioner_name.clone(),
                    zone,
                    start: a.starts_at,
                    location: a.location.clone(),
                })
            }
        };
        let (allowed, address, missing) = match message.channel.as_str() {
            "email" => (preferences.email, contact.email.clone(), "no email address"),
            _ => (preferences.sms, contact.phone.clone(), "no phone number"),
        };
        if !allowed {
            return Ok(Outcome::Skipped(format!("the patient does not want {} messages", message.channel)));
        }
        let Some(address) = address else { return Ok(Outcome::Skipped(missing.into())) };
        let ctx = Context { clinic: self.clinic.clone(), given_name: contact.given_name.clone(), visit };
        let Some((email, sms)) = templates::render(kind, &ctx, &address) else {
            return Ok(Outcome::Failed("the message needs its appointment".into()));
        };
        let (sent, subject) = if message.channel == "email" {
            (self.sender.email(&email).await, Some(email.subject))
        } else {
            (self.sender.sms(&address, &sms).await, None)
        };
        match sent {
            Ok(provider_id) => Ok(Outcome::Sent { provider_id, recipient: address, subject }),
            Err(SendError::Permanent(why)) => Ok(Outcome::Failed(why)),
            Err(SendError::Transient(why)) => Err(Retry(why)),
        }
    }
}

/// Not sent now; worth another attempt.
struct Retry(String);

/// Another attempt after a backoff, or failed when attempts are used up.
fn retry(attempts: i32, error: String) -> Outcome {
    let done = attempts + 1;
    if done >= MAX_ATTEMPTS {
        return Outcome::Failed(format!("gave up after {done} attempts: {error}"));
    }
    let backoff = Duration::seconds(5 * (1_i64 << done.clamp(0, 8))).min(Duration::minutes(15));
    Outcome::Retry { error, at: OffsetDateTime::now_utc() + backoff }
}

fn label(outcome: &Outcome) -> &'static str {
    match outcome {
        Outcome::Sent { .. } => "sent",
        Outcome::Skipped(_) => "skipped",
        Outcome::Cancelled(_) => "cancelled",
        Outcome::Retry { .. } => "retry",
        Outcome::Failed(_) => "failed",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_back_off_and_then_give_up() {
        let Outcome::Retry { at, .. } = retry(0, "x".into()) else { panic!("retry") };
        let wait = at - OffsetDateTime::now_utc();
        assert!(wait > Duration::seconds(9) && wait <= Duration::seconds(10), "{wait}");
        let Outcome::Retry { at, .. } = retry(6, "x".into()) else { panic!("retry") };
        assert!(at - OffsetDateTime::now_utc() <= Duration::minutes(15));
        assert!(matches!(retry(MAX_ATTEMPTS - 1, "x".into()), Outcome::Failed(_)));
    }
}
