//! `GET /events`: the dashboard's live feed, as Server-Sent Events.
//!
//! One event per `event_interval` (a second), never per sample: a
//! `snapshot` event whose data is one line of JSON ([`super::snapshot`]).
//! The first event carries every window the board keeps, the later ones
//! only the windows closed since, so a page opened late has its history at
//! once and a steady stream stays small. A tick reads the board in place
//! (`Board::read`) and copies only what it sends. The browser's EventSource
//! reconnects by itself (`retry:` says after 2 s), and a reconnected page
//! gets the history again (the script skips windows it has).
//!
//! Bounded: at most `http.max_event_streams` streams at once (the next gets
//! 503 with `Retry-After`), each holds one snapshot at a time, and every
//! stream ends when the dashboard's stop token is cancelled, before the
//! server stops, so a graceful stop never waits on an open stream.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use actix_web::web::Bytes;
use actix_web::HttpResponse;

use super::Dashboard;

/// Counts an open stream; frees its slot when dropped (the stream ended,
/// or the client went away and actix dropped it).
struct Slot(Arc<AtomicUsize>);

impl Slot {
    fn take(open: &Arc<AtomicUsize>, max: usize) -> Option<Slot> {
        open.fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
            (n < max).then_some(n + 1)
        })
        .ok()
        .map(|_| Slot(open.clone()))
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// One SSE message: `event: snapshot` and the JSON on one `data:` line
/// (serde_json never writes a raw newline).
pub fn frame(json: &str) -> Bytes {
    let mut s = String::with_capacity(json.len() + 32);
    s.push_str("event: snapshot\ndata: ");
    s.push_str(json);
    s.push_str("\n\n");
    Bytes::from(s)
}

struct State {
    dash: Dashboard,
    _slot: Slot,
    after_seq: Option<u64>,
    first: bool,
    ticks: tokio::time::Interval,
}

/// `HEAD /events`: the status and headers a GET would get now, without
/// a body and without taking a stream slot.
pub fn head(dash: &Dashboard) -> HttpResponse {
    if dash.stop.is_cancelled() {
        return HttpResponse::ServiceUnavailable()
            .insert_header(("retry-after", "2"))
            .finish();
    }
    if dash.streams.load(Ordering::Acquire) >= dash.max_streams {
        return HttpResponse::ServiceUnavailable()
            .insert_header(("retry-after", "5"))
            .content_type("text/plain; charset=utf-8")
            .finish();
    }
    // A stream of unknown length, as the GET's: no content-length.
    HttpResponse::Ok()
        .content_type("text/event-stream")
        .insert_header(("cache-control", "no-store"))
        .insert_header(("x-accel-buffering", "no"))
        .streaming(futures::stream::empty::<Result<Bytes, actix_web::Error>>())
}

/// The handler's response: the stream, or 503 when every slot is taken.
pub fn respond(dash: &Dashboard) -> HttpResponse {
    if dash.stop.is_cancelled() {
        return HttpResponse::ServiceUnavailable()
            .insert_header(("retry-after", "2"))
            .body("stopping\n");
    }
    let Some(slot) = Slot::take(&dash.streams, dash.max_streams) else {
        return HttpResponse::ServiceUnavailable()
            .insert_header(("retry-after", "5"))
            .content_type("text/plain; charset=utf-8")
            .body(format!(
                "too many event streams open (http.max_event_streams = {})\n",
                dash.max_streams
            ));
    };
    let mut ticks = tokio::time::interval(dash.event_interval);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let state = State {
        dash: dash.clone(),
        _slot: slot,
        after_seq: None,
        first: true,
        ticks,
    };
    let stream = futures::stream::unfold(state, |mut st| async move {
        let stop = st.dash.stop.clone();
        tokio::select! {
            biased;
            _ = stop.cancelled() => return None,
            _ = st.ticks.tick() => {}
        }
        let (snap, last) = st.dash.snapshot(st.after_seq);
        st.after_seq = last;
        let json = match serde_json::to_string(&snap) {
            Ok(j) => j,
            Err(e) => {
                tracing::error!(error = %e, "cannot encode a dashboard snapshot");
                return None;
            }
        };
        let mut out = frame(&json);
        if st.first {
            st.first = false;
            let mut with_retry = b"retry: 2000\n".to_vec();
            with_retry.extend_from_slice(&out);
            out = Bytes::from(with_retry);
        }
        Some((Ok::<_, actix_web::Error>(out), st))
    });
    HttpResponse::Ok()
        .content_type("text/event-stream")
        .insert_header(("cache-control", "no-store"))
        .insert_header(("x-accel-buffering", "no"))
        .streaming(stream)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_are_bounded_and_given_back() {
        let open = Arc::new(AtomicUsize::new(0));
        let a = Slot::take(&open, 2).unwrap();
        let b = Slot::take(&open, 2).unwrap();
        assert!(Slot::take(&open, 2).is_none());
        drop(a);
        assert_eq!(open.load(Ordering::Acquire), 1);
        let _c = Slot::take(&open, 2).unwrap();
        drop(b);
        assert_eq!(open.load(Ordering::Acquire), 1);
    }

    #[test]
    fn a_frame_is_one_event_with_one_data_line() {
        let f = frame(r#"{"a":"x\ny"}"#);
        assert_eq!(&f[..], b"event: snapshot\ndata: {\"a\":\"x\\ny\"}\n\n");
    }
}
