//! `GET /live`: the event stream for an open page, authenticated by the session cookie (a bearer key never reaches
//! the browser). It says only which request changed and how; the page fetches itself again to show it, so the
//! queue's filters and order stay the server's. The stream ends when the session does.

use crate::Dashboard;
use crate::page::PageError;
use crate::session::SignedIn;
use axum::extract::State;
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use futures::{Stream, StreamExt};
use std::convert::Infallible;
use std::time::Duration;

pub async fn stream(
    State(dashboard): State<Dashboard>,
    signed_in: SignedIn,
) -> Result<Sse<impl Stream<Item = Result<SseEvent, Infallible>>>, PageError> {
    let after = dashboard.app.store.chain_head().await?.map_or(0, |(seq, _)| seq);
    let token_hash = signed_in.session.token_hash.clone();
    let checker = dashboard.clone();
    let still_signed_in = move || {
        let (dashboard, token_hash) = (checker.clone(), token_hash.clone());
        async move { matches!(SignedIn::find(&dashboard, &token_hash).await, Ok(Some(_))) }
    };
    let changes = signoff_server::follow_events(dashboard.app.clone(), after, None, still_signed_in).filter_map(
        |event| async move {
            let request_id = event.request_id?;
            let data = serde_json::json!({ "kind": event.kind.as_str(), "request_id": request_id.to_string() });
            Some(Ok(SseEvent::default().id(event.seq.to_string()).event("change").data(data.to_string())))
        },
    );
    Ok(Sse::new(changes).keep_alive(KeepAlive::new().interval(Duration::from_secs(15)).text("heartbeat")))
}
