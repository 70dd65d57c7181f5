//! Consuming: the inbound side of the split layout. [`inbound::Inbound`]
//! reads a role's durable work queue and feeds the local actor, acking a
//! delivery only once its work is done; [`decode`] checks every body and
//! says why it refuses one (bounded); [`throttle`] keeps repeated warnings
//! to one line per interval.

pub mod decode;
pub mod inbound;
pub mod throttle;
