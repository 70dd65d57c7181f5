//! History: every message the bridge publishes, kept in a RabbitMQ stream
//! (`history.queue`, declared by [`crate::amqp::topology::declare_history`])
//! and read back by `modelwatch replay`, so a consumer that attaches late
//! reads what it missed and a lost metric log can be rebuilt.
//!
//! RabbitMQ's stream is the log; nothing here keeps one of its own:
//! - [`position`]: `--from`, `--until`, `--key`, parsed and checked (pure);
//! - [`reader`]: the stream consumer (qos, acks as credit, offsets,
//!   reconnects, the end of the stream);
//! - [`offset_file`]: `--from-offset-file`, saved atomically;
//! - [`rebuild`]: `--rebuild DIR`, the metric's files from the history, by
//!   the live run's own code;
//! - [`replay`]: the command that puts them together;
//! - [`backfill`]: the last messages of some keys, bounded, with a deadline
//!   (for observers that start late: the monitor, the dashboard).

pub mod backfill;
pub mod offset_file;
pub mod position;
pub mod reader;
pub mod rebuild;
pub mod replay;

pub use backfill::read_recent;
pub use position::{Start, Until, KEYS};
pub use reader::{Entry, ReadReport, StreamSource};
