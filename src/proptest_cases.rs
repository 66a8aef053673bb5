//! The case count of every property test: 64 by default, so CI stays fast;
//! `PROPTEST_CASES=10000 cargo test --all-features prop_` runs a deeper search.

/// The property tests' configuration.
pub(crate) fn config() -> proptest::test_runner::Config {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|cases| cases.parse().ok())
        .unwrap_or(64);
    proptest::test_runner::Config::with_cases(cases)
}
