//! The process's log lines at warning level and above, kept for a test to read: for the
//! tests that check what the crate logs (each in a binary of its own, as a logger is the
//! process's).

use std::sync::Mutex;

use rocket::log::private::{self as log, Log, Metadata, Record};

/// Keeps every line logged at warning level or above.
struct Lines(Mutex<Vec<String>>);

static LINES: Lines = Lines(Mutex::new(Vec::new()));

impl Log for Lines {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        metadata.level() <= log::Level::Warn
    }

    fn log(&self, record: &Record<'_>) {
        if self.enabled(record.metadata()) {
            self.0.lock().unwrap().push(record.args().to_string());
        }
    }

    fn flush(&self) {}
}

/// Makes the kept lines the process's log, at warning level: before Rocket starts, which
/// then keeps this logger.
pub fn capture() {
    log::set_logger(&LINES).expect("the test's logger is the process's first");
    log::set_max_level(log::LevelFilter::Warn);
}

/// Every line logged so far.
pub fn all() -> Vec<String> {
    LINES.0.lock().unwrap().clone()
}

/// The lines logged so far that contain `text`.
pub fn containing(text: &str) -> Vec<String> {
    all().into_iter().filter(|l| l.contains(text)).collect()
}
