//! The fraud example's data model: accounts, cards, devices, merchants and card transactions,
//! generated deterministically from a seed, with a planted fraud ring — a few devices with
//! near-identical fingerprints and a few accounts shared by many cards, transacting in a burst
//! over the last minutes.
//!
//! The generator (`fraud-gen`) writes the data set as JSON lines for `tarn upsert` and `tarn
//! ingest` ([`Dataset::write_files`]); the end-to-end test (`tests/fraud_example.rs`) builds
//! the same data set from the same [`Config`] and recomputes every answer of the `fraud_check`
//! context from it ([`oracle`]).

pub mod limits;
pub mod oracle;
mod write;

pub use write::FILES;

/// Components of a device fingerprint (`VECTOR(16)` in `schema.sql`).
pub const FINGERPRINT_DIM: usize = 16;

/// Fingerprint components are multiples of 1/`FINGERPRINT_STEPS` in [-1, 1]: exact in f32 and
/// in decimal, so the JSON text, the server's f32 and the oracle's f32 are the same number.
const FINGERPRINT_STEPS: i32 = 1024;

/// How far (in fingerprint steps, per component) a ring device lies from the ring's base.
const RING_NOISE_STEPS: i32 = 12;

/// How far the allowlisted decoy lies from the ring's base: near, but not among the ring.
const DECOY_NOISE_STEPS: i32 = 30;

/// What to generate. Everything but `now_us` comes from flags; the same config gives the same
/// data set, byte for byte.
#[derive(Clone, Debug)]
pub struct Config {
    pub seed: u64,
    /// Events are dated in the `span_minutes` before this (µs since the epoch).
    pub now_us: i64,
    /// Ordinary accounts (the ring's come on top).
    pub accounts: usize,
    /// Ordinary cards.
    pub cards: usize,
    pub merchants: usize,
    /// Ordinary transactions.
    pub events: usize,
    pub span_minutes: u32,
    pub ring_accounts: usize,
    pub ring_cards: usize,
    pub ring_devices: usize,
    /// Transactions of the ring's cards, all in the last `burst_minutes`.
    pub ring_events: usize,
    pub burst_minutes: u32,
}

impl Config {
    /// The walkthrough's sizes (about 3,000 events).
    pub fn new(seed: u64, now_us: i64) -> Config {
        Config {
            seed,
            now_us,
            accounts: 200,
            cards: 300,
            merchants: 40,
            events: 2_800,
            span_minutes: 30,
            ring_accounts: 2,
            ring_cards: 12,
            ring_devices: 4,
            ring_events: 200,
            burst_minutes: 5,
        }
    }

    /// Refuses sizes the generator cannot honour, naming the flag.
    pub fn check(&self) -> Result<(), String> {
        let sizes = [
            ("accounts", self.accounts),
            ("cards", self.cards),
            ("merchants", self.merchants),
            ("events", self.events),
            ("ring-accounts", self.ring_accounts),
            ("ring-cards", self.ring_cards),
            ("ring-devices", self.ring_devices),
            ("ring-events", self.ring_events),
        ];
        for (flag, n) in sizes {
            if n == 0 || n > limits::MAX_ENTITIES {
                return Err(format!(
                    "--{flag} is {n}: must be 1..={}",
                    limits::MAX_ENTITIES
                ));
            }
        }
        for (flag, m) in [
            ("span-minutes", self.span_minutes),
            ("burst-minutes", self.burst_minutes),
        ] {
            if m == 0 || m > limits::MAX_SPAN_MINUTES {
                return Err(format!(
                    "--{flag} is {m}: must be 1..={}",
                    limits::MAX_SPAN_MINUTES
                ));
            }
        }
        if self.burst_minutes > self.span_minutes {
            return Err(format!(
                "--burst-minutes ({}) is longer than --span-minutes ({})",
                self.burst_minutes, self.span_minutes
            ));
        }
        Ok(())
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct Account {
    pub account_id: String,
    pub owner: String,
    pub country: String,
    pub opened_at_us: i64,
    pub risk: f64,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Device {
    pub device_id: String,
    /// The account the device was first registered by.
    pub account_id: String,
    pub platform: String,
    pub fingerprint: Vec<f32>,
    /// Shared devices (shop kiosks, test phones) the kNN search of `fraud_check` skips.
    pub allowlisted: bool,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Card {
    pub card_id: String,
    pub account_id: String,
    /// The device the card was enrolled on.
    pub device_id: String,
    pub bin: String,
    pub issued_at_us: i64,
    pub blocked: bool,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Merchant {
    pub merchant_id: String,
    pub name: String,
    pub category: String,
    pub country: String,
}

/// One card transaction (a row of the `transactions` stream).
#[derive(Clone, Debug, PartialEq)]
pub struct Event {
    pub ts_us: i64,
    pub card_id: String,
    pub account_id: String,
    pub device_id: String,
    pub ip: String,
    pub merchant_id: String,
    /// Whole cents (`k / 100`).
    pub amount: f64,
}

/// The planted ring: its members' ids.
#[derive(Clone, Debug, PartialEq)]
pub struct Ring {
    pub accounts: Vec<String>,
    pub cards: Vec<String>,
    pub devices: Vec<String>,
    pub ips: Vec<String>,
    /// An allowlisted device whose fingerprint is close to the ring's (the filter drops it).
    pub decoy_device: String,
}

/// A generated data set. Events are in event-time order; event times are distinct.
#[derive(Clone, Debug)]
pub struct Dataset {
    pub config: Config,
    pub accounts: Vec<Account>,
    pub devices: Vec<Device>,
    pub cards: Vec<Card>,
    pub merchants: Vec<Merchant>,
    pub events: Vec<Event>,
    pub ring: Ring,
}

/// SplitMix64: tiny, fast and fixed forever, so a seed means the same data in every release.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (n ≥ 1).
    fn below(&mut self, n: u64) -> u64 {
        ((self.next() as u128 * n as u128) >> 64) as u64
    }

    fn index(&mut self, n: usize) -> usize {
        self.below(n as u64) as usize
    }

    /// Uniform in `lo..=hi`.
    fn range(&mut self, lo: i64, hi: i64) -> i64 {
        lo + self.below((hi - lo + 1) as u64) as i64
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }

    fn pick<'a>(&mut self, from: &'a [&'a str]) -> &'a str {
        from[self.index(from.len())]
    }
}

const COUNTRIES: &[&str] = &["DE", "FR", "NL", "ES", "IT", "PL", "SE", "US", "GB"];
const PLATFORMS: &[&str] = &["ios", "android", "web"];
const CATEGORIES: &[&str] = &[
    "grocery",
    "fuel",
    "travel",
    "restaurants",
    "apparel",
    "books",
];
/// What a ring buys: resellable goods.
const RING_CATEGORIES: &[&str] = &["electronics", "gift_cards"];
const BINS: &[&str] = &["411111", "510510", "424242", "555544", "401288"];

const MINUTE_US: i64 = 60_000_000;
const DAY_US: i64 = 86_400 * 1_000_000;

fn id(prefix: &str, n: usize) -> String {
    format!("{prefix}-{n:07}")
}

impl Dataset {
    /// Builds the data set of `config` (call [`Config::check`] first: sizes are trusted here).
    pub fn generate(config: &Config) -> Dataset {
        let mut rng = Rng(config.seed);
        let c = config;
        let merchants = merchants(&mut rng, c);
        let mut accounts: Vec<Account> = (1..=c.accounts + c.ring_accounts)
            .map(|n| account(&mut rng, c, n))
            .collect();
        let ring_accounts: Vec<String> = accounts[c.accounts..]
            .iter()
            .map(|a| a.account_id.clone())
            .collect();
        // The ring's accounts look young and clean: that is the point of a ring.
        for a in &mut accounts[c.accounts..] {
            a.opened_at_us = c.now_us - rng.range(2, 9) * DAY_US;
            a.risk = 0.05;
        }
        let (devices, ring_devices, decoy_device) = devices(&mut rng, c, &accounts);
        let cards = cards(&mut rng, c, &accounts, &devices, &ring_devices);
        let ring_cards: Vec<String> = cards[c.cards..].iter().map(|k| k.card_id.clone()).collect();
        let ring_ips: Vec<String> = (0..3)
            .map(|_| format!("203.0.113.{}", rng.range(2, 254)))
            .collect();
        let ring = Ring {
            accounts: ring_accounts,
            cards: ring_cards,
            devices: ring_devices,
            ips: ring_ips,
            decoy_device,
        };
        let events = events(&mut rng, c, &cards, &merchants, &ring);
        Dataset {
            config: config.clone(),
            accounts,
            devices,
            cards,
            merchants,
            events,
            ring,
        }
    }

    pub fn account(&self, account_id: &str) -> Option<&Account> {
        self.accounts.iter().find(|a| a.account_id == account_id)
    }

    pub fn card(&self, card_id: &str) -> Option<&Card> {
        self.cards.iter().find(|c| c.card_id == card_id)
    }

    pub fn device(&self, device_id: &str) -> Option<&Device> {
        self.devices.iter().find(|d| d.device_id == device_id)
    }
}

fn merchants(rng: &mut Rng, c: &Config) -> Vec<Merchant> {
    (1..=c.merchants)
        .map(|n| {
            // Every tenth merchant sells what rings buy.
            let category = if n % 10 == 0 {
                rng.pick(RING_CATEGORIES)
            } else {
                rng.pick(CATEGORIES)
            };
            Merchant {
                merchant_id: id("m", n),
                name: format!("Merchant {n}"),
                category: category.to_string(),
                country: rng.pick(COUNTRIES).to_string(),
            }
        })
        .collect()
}

fn account(rng: &mut Rng, c: &Config, n: usize) -> Account {
    Account {
        account_id: id("a", n),
        owner: format!("Owner {n}"),
        country: rng.pick(COUNTRIES).to_string(),
        opened_at_us: c.now_us - rng.range(30, 3_000) * DAY_US,
        risk: rng.range(0, 40) as f64 / 100.0,
    }
}

fn random_fingerprint(rng: &mut Rng) -> Vec<f32> {
    let s = FINGERPRINT_STEPS as i64;
    (0..FINGERPRINT_DIM)
        .map(|_| rng.range(-s, s) as f32 / FINGERPRINT_STEPS as f32)
        .collect()
}

/// A fingerprint near a corner of the cube (every component 0.85 … 1 in magnitude): far from
/// the ordinary devices, which fill the cube, so the ring is found by its own members only.
fn corner_fingerprint(rng: &mut Rng) -> Vec<f32> {
    let s = FINGERPRINT_STEPS as i64;
    (0..FINGERPRINT_DIM)
        .map(|_| {
            let m = rng.range(s * 85 / 100, s);
            let signed = if rng.chance(50) { m } else { -m };
            signed as f32 / FINGERPRINT_STEPS as f32
        })
        .collect()
}

fn near(rng: &mut Rng, base: &[f32], noise_steps: i32) -> Vec<f32> {
    let s = FINGERPRINT_STEPS as i64;
    base.iter()
        .map(|&x| {
            let step = (x * FINGERPRINT_STEPS as f32) as i64
                + rng.range(-(noise_steps as i64), noise_steps as i64);
            step.clamp(-s, s) as f32 / FINGERPRINT_STEPS as f32
        })
        .collect()
}

/// One or two devices per ordinary account (5 % of them allowlisted), the ring's devices
/// around one base fingerprint, and an allowlisted decoy near that base.
fn devices(rng: &mut Rng, c: &Config, accounts: &[Account]) -> (Vec<Device>, Vec<String>, String) {
    let mut devices = Vec::new();
    let mut add = |account_id: &str, platform: &str, fingerprint, allowlisted| {
        let device_id = id("d", devices.len() + 1);
        devices.push(Device {
            device_id: device_id.clone(),
            account_id: account_id.to_string(),
            platform: platform.to_string(),
            fingerprint,
            allowlisted,
        });
        device_id
    };
    for a in &accounts[..c.accounts] {
        let devices_of_account = if rng.chance(30) { 2 } else { 1 };
        for _ in 0..devices_of_account {
            let fp = random_fingerprint(rng);
            let allow = rng.chance(5);
            add(&a.account_id, rng.pick(PLATFORMS), fp, allow);
        }
    }
    let base = corner_fingerprint(rng);
    let decoy_fp = near(rng, &base, DECOY_NOISE_STEPS);
    let decoy_owner = &accounts[rng.index(c.accounts)].account_id;
    let decoy = add(decoy_owner, "kiosk", decoy_fp, true);
    let ring_accounts = &accounts[c.accounts..];
    let ring: Vec<String> = (0..c.ring_devices)
        .map(|i| {
            let fp = near(rng, &base, RING_NOISE_STEPS);
            add(
                &ring_accounts[i % ring_accounts.len()].account_id,
                "android",
                fp,
                false,
            )
        })
        .collect();
    (devices, ring, decoy)
}

/// Ordinary cards on an ordinary account and one of its devices; the ring's cards spread over
/// the ring's few accounts and devices.
fn cards(
    rng: &mut Rng,
    c: &Config,
    accounts: &[Account],
    devices: &[Device],
    ring_devices: &[String],
) -> Vec<Card> {
    let mut cards = Vec::with_capacity(c.cards + c.ring_cards);
    // Each account's own devices (kiosks excluded) in device order, looked up once: a scan of
    // every device per card made a data set of 100k cards take minutes.
    let mut own_devices: std::collections::HashMap<&str, Vec<&Device>> =
        std::collections::HashMap::new();
    for d in devices.iter().filter(|d| d.platform != "kiosk") {
        own_devices
            .entry(d.account_id.as_str())
            .or_default()
            .push(d);
    }
    for n in 1..=c.cards {
        // The first cards give every account one; the rest land anywhere.
        let a = if n <= c.accounts {
            &accounts[n - 1]
        } else {
            &accounts[rng.index(c.accounts)]
        };
        let own = &own_devices[a.account_id.as_str()];
        let device = &own[rng.index(own.len())].device_id;
        cards.push(card(rng, c, n, &a.account_id, device));
    }
    let ring_accounts = &accounts[c.accounts..];
    for i in 0..c.ring_cards {
        let account = &ring_accounts[i % ring_accounts.len()].account_id;
        let device = &ring_devices[rng.index(ring_devices.len())];
        let mut k = card(rng, c, c.cards + i + 1, account, device);
        k.issued_at_us = c.now_us - rng.range(1, 3) * DAY_US;
        k.blocked = false;
        cards.push(k);
    }
    cards
}

fn card(rng: &mut Rng, c: &Config, n: usize, account_id: &str, device_id: &str) -> Card {
    Card {
        card_id: id("c", n),
        account_id: account_id.to_string(),
        device_id: device_id.to_string(),
        bin: rng.pick(BINS).to_string(),
        issued_at_us: c.now_us - rng.range(10, 1_500) * DAY_US,
        blocked: rng.chance(3),
    }
}

/// Ordinary transactions spread over the span (the card's own device and one of two home
/// IPs of its account), the ring's in a burst at the end of it; sorted by event time, which
/// is made distinct.
fn events(
    rng: &mut Rng,
    c: &Config,
    cards: &[Card],
    merchants: &[Merchant],
    ring: &Ring,
) -> Vec<Event> {
    let span_us = c.span_minutes as i64 * MINUTE_US;
    let burst_us = c.burst_minutes as i64 * MINUTE_US;
    let home_ip = |account_id: &str, which: u64| {
        let h = Rng(account_id.bytes().fold(which, |h, b| h * 31 + b as u64)).next();
        format!("10.{}.{}.{}", h % 256, (h >> 8) % 256, 1 + (h >> 16) % 254)
    };
    let ring_merchants: Vec<&Merchant> = merchants
        .iter()
        .filter(|m| RING_CATEGORIES.contains(&m.category.as_str()))
        .collect();
    let mut events = Vec::with_capacity(c.events + c.ring_events);
    for _ in 0..c.events {
        let card = &cards[rng.index(c.cards)];
        let ip = home_ip(&card.account_id, rng.below(2));
        events.push(Event {
            ts_us: c.now_us - rng.range(1, span_us),
            card_id: card.card_id.clone(),
            account_id: card.account_id.clone(),
            device_id: card.device_id.clone(),
            ip,
            merchant_id: merchants[rng.index(merchants.len())].merchant_id.clone(),
            amount: rng.range(100, 20_000) as f64 / 100.0,
        });
    }
    for _ in 0..c.ring_events {
        let card = &cards[c.cards + rng.index(c.ring_cards)];
        let merchant = match ring_merchants.len() {
            0 => &merchants[rng.index(merchants.len())],
            n => ring_merchants[rng.index(n)],
        };
        events.push(Event {
            ts_us: c.now_us - rng.range(1, burst_us),
            card_id: card.card_id.clone(),
            account_id: card.account_id.clone(),
            device_id: ring.devices[rng.index(ring.devices.len())].clone(),
            ip: ring.ips[rng.index(ring.ips.len())].clone(),
            merchant_id: merchant.merchant_id.clone(),
            amount: rng.range(20_000, 200_000) as f64 / 100.0,
        });
    }
    events.sort_by_key(|e| e.ts_us);
    // Distinct event times (one µs apart at least), so "newest" and "last" have one answer.
    for i in 1..events.len() {
        if events[i].ts_us <= events[i - 1].ts_us {
            events[i].ts_us = events[i - 1].ts_us + 1;
        }
    }
    events
}
