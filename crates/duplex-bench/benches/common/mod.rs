//! What the benches of this crate start from: criterion with the settings
//! of docs/benchmarks.md.

use std::time::Duration;

use criterion::Criterion;

/// Criterion with 1 s of warm-up and 3 s of measurement, `samples`
/// samples where given (criterion's 100 otherwise), and the command line's
/// options on top.
///
/// Benches call this from their own `main` instead of
/// `criterion_group!`/`criterion_main!`, which expand to undocumented
/// public items that the workspace lints reject.
pub(crate) fn criterion(samples: Option<usize>) -> Criterion {
    let c = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    match samples {
        Some(n) => c.sample_size(n),
        None => c,
    }
    .configure_from_args()
}
