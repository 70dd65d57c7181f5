//! What every actor shares: ending the process when an actor it depends
//! on is gone, and the low priority of observer threads.
//!
//! Actors are thin shells that own state, timers and I/O around the pure
//! logic of their feature; each lives in its feature's folder
//! (`source::actor`, `model::actor`, `metric::actor`, `plot::actor`,
//! `monitor::actor`). Each holds, for each kind of message it emits, a
//! [`Fanout`](crate::core::fanout::Fanout) of recipients wired at start-up
//! by [`crate::pipeline`]; the RabbitMQ bridge is just one more recipient.
//! Sends to work recipients use `send().await` (never `do_send`, which
//! ignores mailbox capacity), so a slow consumer slows the source down
//! instead of growing a queue; observers (see [`crate::core::fanout`]) get
//! a bounded hand-off and never slow anything.

/// Ends the process because an actor this one depends on is gone.
///
/// Supervised actors keep their mailbox open while they restart, so a closed
/// mailbox means an actor died (a panic); running on without it would lose
/// data silently. The outer supervisor (Docker, systemd) restarts us.
pub fn fatal_dead_actor(who: &str, err: actix::MailboxError) -> ! {
    if crate::core::exit::is_leaving() {
        // The run was given up and the process is exiting with its own
        // code: this thread just waits for the end.
        tracing::debug!(actor = who, error = %err, "mailbox closed while leaving");
        loop {
            std::thread::park();
        }
    }
    tracing::error!(actor = who, error = %err, "a downstream actor is gone; exiting");
    eprintln!("modelwatch: fatal: {who}: downstream actor is gone ({err})");
    std::process::exit(crate::core::exit::FATAL)
}

/// The nice value of observer threads: a CFS weight of 110 against the
/// work threads' 1024, so under full load an observer gets about a tenth
/// of a core's share (enough to keep up at moderate rates), never more
/// than the pipeline leaves.
pub const OBSERVER_NICE: libc::c_int = 10;

/// Gives the calling thread a low scheduling priority ([`OBSERVER_NICE`]):
/// observers run on such threads, so the work path always gets the CPU
/// first and an observer never slows it, even on a machine with fewer
/// cores than busy threads. Linux applies a nice value to one thread when
/// given its thread id; failing to lower it (another OS) changes nothing
/// else, so the error is only logged.
pub fn lower_this_threads_priority() {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: gettid and setpriority take plain integers and touch no memory.
        let rc = unsafe {
            let tid = libc::syscall(libc::SYS_gettid) as libc::id_t;
            libc::setpriority(libc::PRIO_PROCESS, tid, OBSERVER_NICE)
        };
        if rc != 0 {
            tracing::debug!(error = %std::io::Error::last_os_error(), "could not lower an observer thread's priority");
        }
    }
}
