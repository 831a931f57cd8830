//! Typing indicators: when to send ours, whose to show — pure state with injected time.
//!
//! Typing goes over broadcast (event `typing` on the conversation's channel), never through
//! the database. We send at most one event per [`SEND_INTERVAL`] while the user types
//! ([`Throttle`]); another person's indicator disappears [`EXPIRY`] after their last event
//! ([`Indicators`]), so a lost "stopped typing" never leaves it on.

use std::collections::HashMap;
use std::time::Duration;

use tokio::time::Instant;
use uuid::Uuid;

pub const SEND_INTERVAL: Duration = Duration::from_secs(2);
pub const EXPIRY: Duration = Duration::from_secs(3);

/// Rate limit for our own typing events.
#[derive(Debug, Default)]
pub struct Throttle {
    last_sent: Option<Instant>,
}

impl Throttle {
    /// The user typed at `now`: should a typing event go out?
    pub fn should_send(&mut self, now: Instant) -> bool {
        match self.last_sent {
            Some(t) if now.duration_since(t) < SEND_INTERVAL => false,
            _ => {
                self.last_sent = Some(now);
                true
            }
        }
    }

    /// A message was sent: the next keystroke may announce typing at once.
    pub fn reset(&mut self) {
        self.last_sent = None;
    }
}

/// Others' typing in one conversation.
#[derive(Debug, Default)]
pub struct Indicators {
    until: HashMap<Uuid, Instant>,
}

impl Indicators {
    /// `user` typed (a broadcast arrived) at `now`.
    pub fn typed(&mut self, user: Uuid, now: Instant) {
        self.until.insert(user, now + EXPIRY);
    }

    /// `user` sent a message or said they stopped.
    pub fn stopped(&mut self, user: Uuid) {
        self.until.remove(&user);
    }

    /// Who is typing at `now` (expired entries are dropped), sorted for a stable display.
    pub fn active(&mut self, now: Instant) -> Vec<Uuid> {
        self.until.retain(|_, t| *t > now);
        let mut users: Vec<Uuid> = self.until.keys().copied().collect();
        users.sort();
        users
    }
}

/// The label under the chat ("Alice tippt…", "2 Personen tippen…").
pub fn label(names: &[String]) -> Option<String> {
    match names {
        [] => None,
        [one] => Some(format!("{one} tippt…")),
        many => Some(format!("{} Personen tippen…", many.len())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn at_most_one_event_per_two_seconds() {
        let t0 = Instant::now();
        let mut t = Throttle::default();
        assert!(t.should_send(t0));
        assert!(!t.should_send(t0 + Duration::from_millis(1999)));
        assert!(t.should_send(t0 + Duration::from_millis(2000)));
        t.reset();
        assert!(t.should_send(t0 + Duration::from_millis(2100)));
    }

    #[test]
    fn indicators_expire_after_three_seconds() {
        let t0 = Instant::now();
        let (a, b) = (Uuid::from_u128(1), Uuid::from_u128(2));
        let mut i = Indicators::default();
        i.typed(a, t0);
        i.typed(b, t0 + Duration::from_secs(1));
        assert_eq!(i.active(t0 + Duration::from_millis(2900)), vec![a, b]);
        assert_eq!(i.active(t0 + Duration::from_millis(3000)), vec![b]);
        i.stopped(b);
        assert!(i.active(t0 + Duration::from_millis(3100)).is_empty());
    }

    #[test]
    fn labels() {
        assert_eq!(label(&[]), None);
        assert_eq!(label(&["Alice".into()]).unwrap(), "Alice tippt…");
        assert_eq!(label(&["A".into(), "B".into()]).unwrap(), "2 Personen tippen…");
    }
}
