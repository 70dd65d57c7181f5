//! The locks of the few tests that must not overlap, in a binary whose
//! tests may run at the same time (`RUST_TEST_THREADS`, 1 today: see
//! `.cargo/config.toml`).
//!
//! - [`broker_lock`]: the tests that publish to or read from `ml_pipeline`,
//!   the default exchange of the shared broker. Every run's messages reach
//!   every queue bound there with `#`, and the ids of two runs at once may
//!   even collide, so two such tests at once would count each other's
//!   messages. Tests with an exchange of their own (history, the split
//!   layout's [`super::split::TestBroker`]) or a private broker do not take
//!   it.
//! - [`timing_lock`] (sync tests) and [`timing_lock_async`]: the tests
//!   that measure the program's own timing or speed (the source's rate, the
//!   bench), that need the monitor, an observer, to keep up with a fast
//!   source, or that bound a throughput or a backfill by a deadline the
//!   debug build meets only with most of the CPU: never two at once (each
//!   of these missed its deadline when several of them overlapped).
//!
//! Both are tokio mutexes: no poisoning when a holder fails, and async
//! tests await them without blocking their runtime.

use tokio::sync::{Mutex, MutexGuard};

static BROKER: Mutex<()> = Mutex::const_new(());
static TIMING: Mutex<()> = Mutex::const_new(());

/// Held while a test uses `ml_pipeline` on the shared broker.
pub async fn broker_lock() -> MutexGuard<'static, ()> {
    BROKER.lock().await
}

/// Held while a (synchronous) test measures timing or speed.
pub fn timing_lock() -> MutexGuard<'static, ()> {
    TIMING.blocking_lock()
}

/// [`timing_lock`] for an async test.
pub async fn timing_lock_async() -> MutexGuard<'static, ()> {
    TIMING.lock().await
}
