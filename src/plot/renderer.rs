//! Renderer: a thread of its own that draws pictures, one at a time and in
//! the order asked (so a final picture is never overwritten by an older
//! one), off the threads that route messages. The plot and the monitor
//! each own one and hand it a [`Draw`]: a snapshot and what to do with it.

use actix::prelude::*;

use crate::plot::render::RenderError;

/// One picture to draw, with everything it needs moved in.
#[derive(Message)]
#[rtype(result = "Result<(), RenderError>")]
pub struct Draw(pub Box<dyn FnOnce() -> Result<(), RenderError> + Send>);

impl Draw {
    pub fn new(f: impl FnOnce() -> Result<(), RenderError> + Send + 'static) -> Draw {
        Draw(Box::new(f))
    }
}

pub struct Renderer;

impl Renderer {
    /// The renderer in `slot`, started on first use.
    pub fn of(slot: &mut Option<Addr<Renderer>>) -> Addr<Renderer> {
        slot.get_or_insert_with(|| SyncArbiter::start(1, || Renderer))
            .clone()
    }
}

impl Actor for Renderer {
    type Context = SyncContext<Self>;
}

impl Handler<Draw> for Renderer {
    type Result = Result<(), RenderError>;

    fn handle(&mut self, d: Draw, _: &mut SyncContext<Self>) -> Self::Result {
        (d.0)()
    }
}
