//! A run's random streams: one ChaCha8 generator of the run's seed per console (numbered by
//! its index) and per other drawer (numbered from the top of the range down).

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

/// The random streams of a run that are not a console's: numbered from the top of the range
/// down, so they never meet a console's stream (numbered by its index from 0). The numbers are
/// part of what a seed means: changing one changes every run of every seed.
#[derive(Debug, Clone, Copy)]
pub enum Stream {
    /// Admin `n`'s decisions and thinking times.
    Admin(u32),
    /// Setting the preferences while seeding.
    Preferences,
    /// Importing the accounts while seeding.
    Import,
    /// Generating the OTP batches while seeding.
    Batches,
    /// A Poisson arrival schedule's gaps.
    Arrivals,
}

impl Stream {
    fn id(self) -> u64 {
        match self {
            Stream::Admin(n) => u64::MAX - u64::from(n),
            Stream::Preferences => u64::MAX - 10_000,
            Stream::Import => u64::MAX - 10_001,
            Stream::Batches => u64::MAX - 10_002,
            Stream::Arrivals => u64::MAX - 10_003,
        }
    }
}

/// The generator of one of a run's streams other than the consoles'.
pub fn stream_rng(seed: u64, stream: Stream) -> ChaCha8Rng {
    console_rng(seed, stream.id())
}

/// The console's own generator: ChaCha8 seeded with the run seed, on the console's stream.
pub fn console_rng(seed: u64, index: u64) -> ChaCha8Rng {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(index);
    rng
}
