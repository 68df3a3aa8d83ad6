//! The event log over HTTP: a live Server-Sent Events stream (resumable with `Last-Event-ID`), the audit chain's
//! verification, and its export as JSON Lines (`signoff audit export`, the dashboard's download).

use crate::AppState;
use crate::auth::Caller;
use crate::error::ApiError;
use axum::Json;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use futures::{Stream, StreamExt};
use signoff_domain::{ChainVerifier, Event, Role};
pub use signoff_wire::Verification;
use std::convert::Infallible;
use std::future::Future;
use std::time::Duration;

/// Events read from the store per query.
const PAGE: u32 = 500;
/// The longest the stream goes without re-reading the log, in case a change notice was missed.
const RECHECK: Duration = Duration::from_secs(2);

/// `GET /v1/events`: every event the caller may see (agents: their own requests'; others: all), oldest first,
/// starting after `Last-Event-ID` (or `?after=SEQ`), then live. Ends when the server shuts down.
pub async fn stream(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    crate::extract::ApiQuery(params): crate::extract::ApiQuery<StreamParams>,
) -> Result<Sse<impl Stream<Item = Result<SseEvent, Infallible>>>, ApiError> {
    let from_header = headers
        .get("last-event-id")
        .map(|value| {
            value.to_str().ok().and_then(|v| v.trim().parse::<i64>().ok()).ok_or_else(|| {
                ApiError::invalid("Last-Event-ID must be the id (sequence number) of an event this stream sent")
            })
        })
        .transpose()?;
    let after = from_header.or(params.after).unwrap_or(0);
    let owner = (caller.role() == Role::Agent).then(|| caller.0.id.clone());
    let key_state = state.clone();
    let still_valid = move || {
        let (caller, state) = (caller.clone(), key_state.clone());
        async move { caller.still_valid(&state).await }
    };
    let events = follow(state, after, owner, still_valid).map(|event| {
        let sse = SseEvent::default()
            .id(event.seq.to_string())
            .event(event.kind.as_str())
            .json_data(&event)
            .unwrap_or_else(|_| SseEvent::default().comment("unencodable event"));
        Ok(sse)
    });
    Ok(Sse::new(events).keep_alive(KeepAlive::new().interval(Duration::from_secs(15)).text("heartbeat")))
}

#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StreamParams {
    after: Option<i64>,
}

/// The event log after sequence number `after` (only the requests of the key `owner`, when set), oldest first, then
/// live as events commit. Ends when the server shuts down, or when `still_valid` (asked every few seconds: is the
/// caller's key or session still good?) answers no. Front ends that stream to people (the dashboard) use it too.
pub fn follow<F, V>(state: AppState, after: i64, owner: Option<String>, still_valid: V) -> impl Stream<Item = Event>
where
    V: Fn() -> F + Send + 'static,
    F: Future<Output = bool> + Send,
{
    let cursor = Cursor {
        state,
        still_valid,
        owner,
        after,
        buffered: Vec::new().into_iter(),
        changes: None,
        checked: std::time::Instant::now(),
    };
    futures::stream::unfold(cursor, |mut cursor| async move {
        let event = cursor.next().await?;
        Some((event, cursor))
    })
}

/// Where a stream is in the log.
struct Cursor<V> {
    state: AppState,
    still_valid: V,
    /// When the caller was last found valid; one that is no longer ends the stream within `RECHECK`.
    checked: std::time::Instant,
    owner: Option<String>,
    after: i64,
    buffered: std::vec::IntoIter<Event>,
    changes: Option<tokio::sync::broadcast::Receiver<signoff_store::Change>>,
}

impl<F, V> Cursor<V>
where
    V: Fn() -> F,
    F: Future<Output = bool>,
{
    /// The next event, waiting for one if needed; `None` when the server shuts down or the caller is no longer valid.
    async fn next(&mut self) -> Option<Event> {
        loop {
            if let Some(event) = self.buffered.next() {
                self.after = event.seq;
                return Some(event);
            }
            if self.state.waiters.is_shutting_down() {
                return None;
            }
            if self.checked.elapsed() >= RECHECK {
                if !(self.still_valid)().await {
                    return None;
                }
                self.checked = std::time::Instant::now();
            }
            // Subscribe before reading, so an event committed in between still wakes us.
            let changes = self.changes.get_or_insert_with(|| self.state.store.changes());
            match self.state.store.events_after(self.after, PAGE, self.owner.as_deref()).await {
                Ok(mut page) if !page.is_empty() => {
                    // Held while the client reads, so bounded in bytes too; the rest is read again later.
                    crate::limits::fit_page(&mut page, self.state.limits.page_bytes);
                    self.buffered = page.into_iter();
                    continue;
                }
                Ok(_) => {}
                Err(error) => tracing::warn!(%error, "event stream cannot read the log; retrying"),
            }
            let mut shutdown = self.state.waiters.shutdown_signal();
            tokio::select! {
                _ = changes.recv() => {}
                _ = tokio::time::sleep(RECHECK) => {}
                _ = shutdown.changed() => return None,
            }
        }
    }
}

/// Recomputes the whole hash chain and names the first bad event.
pub async fn verify(store: &dyn signoff_store::Store) -> Result<Verification, signoff_store::StoreError> {
    let mut verifier = ChainVerifier::from_genesis();
    let mut after = 0;
    loop {
        let page = store.events_after(after, 5_000, None).await?;
        let Some(last) = page.last() else { break };
        after = last.seq;
        for event in &page {
            if let Err(broken) = verifier.check(event) {
                return Ok(Verification {
                    ok: false,
                    events: verifier.checked(),
                    head: verifier.head().map(String::from),
                    first_bad_seq: Some(broken.seq),
                    problem: Some(broken.to_string()),
                });
            }
        }
    }
    Ok(Verification {
        ok: true,
        events: verifier.checked(),
        head: verifier.head().map(String::from),
        first_bad_seq: None,
        problem: None,
    })
}

/// The event log as `signoff audit export` writes it: pages of events, oldest first, from the first event at or
/// after `since` (from the first of all, without it) to the head. The pages form one contiguous slice of the chain,
/// so an export verifies on its own; pages before `since` come out empty.
pub fn export(
    store: std::sync::Arc<dyn signoff_store::Store>,
    since: Option<chrono::DateTime<chrono::Utc>>,
) -> impl Stream<Item = Result<Vec<Event>, signoff_store::StoreError>> {
    futures::stream::try_unfold((0, since), move |(after, since)| {
        let store = store.clone();
        async move {
            let page = store.events_after(after, 5_000, None).await?;
            let Some(last) = page.last() else { return Ok(None) };
            let after = last.seq;
            let events: Vec<Event> = match since {
                None => page,
                Some(since) => page.into_iter().skip_while(|event| event.at < since).collect(),
            };
            // Once the slice has started, everything after it belongs to it.
            let since = if events.is_empty() { since } else { None };
            Ok(Some((events, (after, since))))
        }
    })
}

/// Events as JSON Lines: one event per line, each line ending with a newline.
pub fn json_lines(events: &[Event]) -> Result<Vec<u8>, serde_json::Error> {
    let mut out = Vec::new();
    for event in events {
        serde_json::to_writer(&mut out, event)?;
        out.push(b'\n');
    }
    Ok(out)
}

/// `GET /v1/audit/verify` (admin).
pub async fn verify_route(State(state): State<AppState>, caller: Caller) -> Result<Json<Verification>, ApiError> {
    caller.require(&[Role::Admin], "verify the audit log")?;
    Ok(Json(verify(state.store.as_ref()).await?))
}
