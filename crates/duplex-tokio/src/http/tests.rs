//! The driver against a real endpoint (duplex-polling's Server-Sent
//! Events dialect, which streams), without a network: what the dialect
//! services rely on.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use duplex_polling::{Event, SseConfig, SseServer};
use http::StatusCode;
use http_body_util::{BodyExt, Empty};

use super::{Application, Deferred, Echo, PollingService, WeakPollingService};

const STEP: Duration = Duration::from_secs(5);

fn get() -> http::Request<Empty<Bytes>> {
    http::Request::get("/events").body(Empty::new()).unwrap()
}

#[tokio::test]
async fn a_streaming_answer_streams_and_its_dropped_body_aborts_the_request() {
    let service = PollingService::new(SseServer::new(SseConfig::default()), Echo, "/events");
    let response = tokio::time::timeout(STEP, service.handle_streaming(get()))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let mut body = response.into_body();
    let frame = tokio::time::timeout(STEP, body.frame())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    let chunk = frame.into_data().unwrap();
    assert!(
        String::from_utf8_lossy(&chunk).contains("retry:"),
        "{chunk:?}"
    );
    assert_eq!(service.in_flight(), (1, 0), "the stream is in flight");
    drop(body);
    assert_eq!(service.in_flight(), (0, 0), "the dropped stream is gone");
    // The session waits for the client to resume: it was aborted, not closed.
    assert_eq!(service.with(|server, _, _, _| server.session_count()), 1);
}

#[tokio::test]
async fn handle_answers_a_streaming_endpoint_with_500_and_leaves_nothing_behind() {
    let service = PollingService::new(SseServer::new(SseConfig::default()), Echo, "/events");
    let response = tokio::time::timeout(STEP, service.handle(get()))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(service.in_flight(), (0, 0));
}

/// An application whose handler calls back into the service, as a user's
/// Socket.IO handler emitting does.
struct Reentrant {
    handle: Option<WeakPollingService<SseServer, Reentrant>>,
    seen: Arc<Mutex<Vec<usize>>>,
}

impl Application<SseServer> for Reentrant {
    fn on_event(&mut self, _: &mut SseServer, event: Event, _: Instant, deferred: &mut Deferred) {
        if let (Event::Opened { .. }, Some(handle)) = (event, self.handle.clone()) {
            let seen = self.seen.clone();
            deferred.push(move || {
                // Would deadlock if deferred work ran under the lock.
                if let Some(service) = handle.upgrade() {
                    let count = service.with(|server, _, _, _| server.session_count());
                    seen.lock().unwrap().push(count);
                }
            });
        }
    }
}

#[tokio::test]
async fn deferred_user_code_runs_outside_the_lock_and_may_call_back() {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let app = Reentrant {
        handle: None,
        seen: seen.clone(),
    };
    let service = PollingService::new(SseServer::new(SseConfig::default()), app, "/events");
    let weak = service.downgrade();
    service.with(|_, app, _, _| app.handle = Some(weak));
    let response = tokio::time::timeout(STEP, service.handle_streaming(get()))
        .await
        .expect("no deadlock");
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(*seen.lock().unwrap(), vec![1]);
}
