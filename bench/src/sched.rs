//! Open-loop scheduling: intended send times on a fixed-rate grid, a backlog that keeps
//! each request's intended time while no connection can take it, and the choice of
//! connection.

use std::collections::VecDeque;

/// A fixed-rate schedule: request `i` is intended at `start + i / rate`.
#[derive(Clone, Debug)]
pub struct Schedule {
    start: u64,
    interval_ns: f64,
    next: u64,
}

impl Schedule {
    pub fn new(start_ns: u64, rate_per_sec: f64) -> Self {
        assert!(rate_per_sec > 0.0, "rate must be positive");
        Self {
            start: start_ns,
            interval_ns: 1e9 / rate_per_sec,
            next: 0,
        }
    }

    /// Intended time of request `i`.
    pub fn intended(&self, i: u64) -> u64 {
        self.start + (i as f64 * self.interval_ns) as u64
    }

    /// Intended time of the next request not yet released.
    pub fn next_due(&self) -> u64 {
        self.intended(self.next)
    }

    /// Release every request whose intended time is `<= now` and `< stop` into `backlog`
    /// (as intended times). Returns how many were released. A generator that fell behind
    /// releases the whole burst at once, each with its own (past) intended time.
    pub fn release_due(&mut self, now: u64, stop: u64, backlog: &mut VecDeque<u64>) -> usize {
        let mut n = 0;
        loop {
            let t = self.intended(self.next);
            if t > now || t >= stop {
                return n;
            }
            backlog.push_back(t);
            self.next += 1;
            n += 1;
        }
    }

    pub fn released(&self) -> u64 {
        self.next
    }
}

/// Pick a connection with fewer than `cap` requests in flight, round-robin from `cursor`.
/// Advances `cursor` past the chosen connection. `None` if all are full.
pub fn pick_conn(inflight: &[usize], cap: usize, cursor: &mut usize) -> Option<usize> {
    let n = inflight.len();
    for k in 0..n {
        let i = (*cursor + k) % n;
        if inflight[i] < cap {
            *cursor = (i + 1) % n;
            return Some(i);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedule_is_a_fixed_grid() {
        let s = Schedule::new(1_000, 1000.0); // 1 ms apart
        assert_eq!(s.intended(0), 1_000);
        assert_eq!(s.intended(1), 1_001_000);
        assert_eq!(s.intended(1000), 1_000_001_000);
    }

    #[test]
    fn release_keeps_intended_times_when_late() {
        let mut s = Schedule::new(0, 1000.0);
        let mut q = VecDeque::new();
        assert_eq!(s.release_due(0, u64::MAX, &mut q), 1);
        // The generator wakes up 5.5 ms late: five more are released at once, each
        // stamped with the time it *should* have gone out.
        assert_eq!(s.release_due(5_500_000, u64::MAX, &mut q), 5);
        assert_eq!(
            q.iter().copied().collect::<Vec<_>>(),
            vec![0, 1_000_000, 2_000_000, 3_000_000, 4_000_000, 5_000_000]
        );
        assert_eq!(s.next_due(), 6_000_000);
        assert_eq!(s.release_due(5_900_000, u64::MAX, &mut q), 0);
    }

    #[test]
    fn release_stops_at_end_of_run() {
        let mut s = Schedule::new(0, 1000.0);
        let mut q = VecDeque::new();
        assert_eq!(s.release_due(10_000_000, 3_000_000, &mut q), 3);
        assert_eq!(s.released(), 3);
    }

    #[test]
    fn pick_is_round_robin_and_respects_cap() {
        let mut cur = 0;
        let mut inflight = vec![0, 0, 0];
        let mut order = Vec::new();
        for _ in 0..6 {
            let i = pick_conn(&inflight, 2, &mut cur).unwrap();
            inflight[i] += 1;
            order.push(i);
        }
        assert_eq!(order, vec![0, 1, 2, 0, 1, 2]);
        assert_eq!(pick_conn(&inflight, 2, &mut cur), None);
        inflight[1] -= 1;
        assert_eq!(pick_conn(&inflight, 2, &mut cur), Some(1));
    }
}
