//! Process exit codes, in one place because tests and supervisors rely on them.

/// The run finished (count reached or a signal) and everything was flushed.
pub const OK: i32 = 0;
/// A runtime failure after start-up (for example the final flush failed).
pub const FAILURE: i32 = 1;
/// Bad input found before anything started: config, flags, logs dir, artifact.
pub const USAGE: i32 = 2;
/// A panic or a dead actor: the process must be restarted from outside.
pub const FATAL: i32 = 70;

static LEAVING: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// The run was given up on purpose (a second signal): the process is about
/// to exit with its own code, and actors it did not drain see their peers'
/// mailboxes close. From now on that is not a dead actor.
pub fn leave() {
    LEAVING.store(true, std::sync::atomic::Ordering::SeqCst);
}

/// Whether [`leave`] was called.
pub fn is_leaving() -> bool {
    LEAVING.load(std::sync::atomic::Ordering::SeqCst)
}
