//! Publishing: the outbound bridge. Every message of the pipeline is
//! mirrored onto the topic exchange so that anyone can attach a consumer.
//!
//! Two halves joined by a bounded [`outbox::Outbox`]:
//! - [`actor::BridgeActor`], on the actix side, is wired as one more
//!   recipient of features, truths, predictions and metric records;
//! - [`publisher::Publisher`], on the AMQP runtime, connects, declares the
//!   [`super::topology`], publishes with confirms and resends what the
//!   broker did not confirm. [`stats`] counts every event that loses or
//!   repeats a message.

pub mod actor;
pub mod outbox;
pub mod publisher;
pub mod stats;
