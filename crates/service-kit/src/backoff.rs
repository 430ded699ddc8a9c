//! The suite's one retry pause: 100 ms first, doubling after every attempt, capped.
//!
//! Every loop that waits for another service to come back (eshop's undos, the
//! consumer's calls, the dead-letter producer) pauses by it, so they all give
//! a recovering service the same room and one setting caps each.

use std::time::Duration;

/// The pauses between the attempts of one retry loop.
#[derive(Debug, Clone)]
pub struct Backoff {
    next: Duration,
    max: Duration,
}

impl Backoff {
    /// The first pause: long enough for a restarting pod's sidecar, short
    /// enough that a blip costs a checkout little.
    pub const FIRST: Duration = Duration::from_millis(100);

    /// Pauses starting at [`Backoff::FIRST`] and never longer than `max`.
    pub fn new(max: Duration) -> Self {
        Self {
            next: Self::FIRST.min(max),
            max,
        }
    }

    /// The pause before the next attempt; the one after it is twice as long, up to the cap.
    pub fn next_wait(&mut self) -> Duration {
        let wait = self.next;
        self.next = self.next.saturating_mul(2).min(self.max);
        wait
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn waits(max: Duration, count: usize) -> Vec<Duration> {
        let mut backoff = Backoff::new(max);
        (0..count).map(|_| backoff.next_wait()).collect()
    }

    #[test]
    fn doubles_from_100_ms_up_to_the_cap() {
        let ms = Duration::from_millis;
        assert_eq!(
            waits(ms(1000), 6),
            [ms(100), ms(200), ms(400), ms(800), ms(1000), ms(1000)]
        );
    }

    #[test]
    fn a_cap_below_the_first_pause_wins_and_a_huge_one_does_not_overflow() {
        let ms = Duration::from_millis;
        assert_eq!(waits(ms(30), 3), [ms(30), ms(30), ms(30)]);
        assert_eq!(waits(Duration::MAX, 100).last(), Some(&Duration::MAX));
    }
}
