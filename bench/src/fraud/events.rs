//! The events of the fraud stream: the key texts of the key spaces (cards, accounts, devices,
//! merchants, IPs), one transaction ([`Event`]) and the sizes of the key spaces
//! ([`FraudShape`]) that random events are drawn from.

use super::CARDS_PER_ACCOUNT;
use crate::workload::Rng;

fn push_padded(out: &mut String, prefix: &str, n: u64, width: usize) {
    out.push_str(prefix);
    let mut d = [b'0'; 20];
    let mut i = d.len();
    let mut n = n;
    loop {
        i -= 1;
        d[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    let len = (d.len() - i).max(width);
    // Digits are ASCII.
    out.push_str(std::str::from_utf8(&d[d.len() - len..]).unwrap_or("0"));
}

/// `card:%07d`.
pub fn card_key(i: u64, out: &mut String) {
    push_padded(out, "card:", i, 7);
}
/// `acct:%07d`.
pub fn account_key(i: u64, out: &mut String) {
    push_padded(out, "acct:", i, 7);
}
/// `dev:%06d`.
pub fn device_key(i: u64, out: &mut String) {
    push_padded(out, "dev:", i, 6);
}
/// `m:%04d`.
pub fn merchant_key(i: u64, out: &mut String) {
    push_padded(out, "m:", i, 4);
}
/// `10.a.b.c` from the low 24 bits.
pub fn ip_text(i: u64, out: &mut String) {
    use std::fmt::Write as _;
    let _ = write!(out, "10.{}.{}.{}", (i >> 16) & 255, (i >> 8) & 255, i & 255);
}

/// One transaction.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Event {
    pub ts_us: i64,
    pub card: u64,
    pub account: u64,
    pub device: u64,
    pub amount: f64,
    pub merchant: u64,
    pub ip: u64,
}

/// Sizes of the key spaces.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FraudShape {
    pub cards: u64,
    pub devices: u64,
    pub merchants: u64,
    pub ips: u64,
}

impl Default for FraudShape {
    fn default() -> Self {
        Self {
            cards: 1_000_000,
            devices: 300_000,
            merchants: 1000,
            ips: 10_000,
        }
    }
}

/// Log-uniform in [1, 2000], rounded to cents.
fn amount(rng: &mut Rng) -> f64 {
    let u = (rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
    (2000f64.powf(u) * 100.0).round() / 100.0
}

impl FraudShape {
    pub fn accounts(&self) -> u64 {
        self.cards.div_ceil(CARDS_PER_ACCOUNT)
    }

    /// An event of `card` at `ts_us`; the other fields random.
    pub fn event(&self, rng: &mut Rng, card: u64, ts_us: i64) -> Event {
        Event {
            ts_us,
            card,
            account: card / CARDS_PER_ACCOUNT,
            device: rng.below(self.devices.max(1)),
            amount: amount(rng),
            merchant: rng.below(self.merchants.max(1)),
            ip: rng.below(self.ips.max(1)),
        }
    }

    /// An event of a uniformly random card.
    pub fn random_event(&self, rng: &mut Rng, ts_us: i64) -> Event {
        let card = rng.below(self.cards.max(1));
        self.event(rng, card, ts_us)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_follow_the_shape() {
        let shape = FraudShape::default();
        let mut rng = Rng::new(1);
        let mut big = 0;
        for _ in 0..10_000 {
            let e = shape.random_event(&mut rng, 5);
            assert!(e.card < shape.cards && e.device < shape.devices);
            assert_eq!(e.account, e.card / 4);
            assert!(e.merchant < 1000 && e.ip < 10_000);
            assert!((1.0..=2000.0).contains(&e.amount), "{}", e.amount);
            assert_eq!((e.amount * 100.0).round() / 100.0, e.amount);
            big += (e.amount > 500.0) as u32;
        }
        assert!((1200..2500).contains(&big), "{big}");
    }
}
