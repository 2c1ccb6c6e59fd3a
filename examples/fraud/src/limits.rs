//! Every limit of the fraud example's generator: a named constant with why it exists and what
//! raising it costs.

/// Largest number of entities of one kind (accounts, cards, merchants) or of events.
///
/// Why 9,999,999: ids are written with a fixed width of 7 digits (`c-0000001`), so that they
/// sort like their numbers, and the whole data set is held in memory before it is written
/// (about 200 bytes per event). What it costs: raising it widens every id and the memory of a
/// run (10 M events ≈ 2 GiB).
pub const MAX_ENTITIES: usize = 9_999_999;

/// Longest span of the generated events: they are dated at most this long before `--now-us`.
///
/// Why 50 minutes: the example's feature views have a one-hour window (`schema.sql`); events
/// older than the window would be counted by no view (late on arrival), which is not what a
/// walkthrough should show. 50 leaves 10 minutes between generating and reading. What it
/// costs: a longer span needs longer windows in `schema.sql`.
pub const MAX_SPAN_MINUTES: u32 = 50;
