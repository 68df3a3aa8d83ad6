//! Observability of every HTTP call: a request id (`x-request-id`, taken from the caller or made here, and sent back),
//! a tracing span carrying it around the handler and every store call it makes, and one access-log line per call
//! (`INFO`, from `tower_http::trace`: status and latency).

use axum::body::Body;
use axum::http::Request;
use axum::response::Response;
use std::convert::Infallible;
use tower::util::BoxCloneSyncService;
use tower::{Service, ServiceBuilder};
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::{DefaultOnResponse, TraceLayer};
use tracing::Level;

/// Wraps `inner` so each call gets a request id, a span (target `signoff::access`) and an access-log line.
pub(crate) fn wrap<S>(inner: S) -> BoxCloneSyncService<Request<Body>, Response, Infallible>
where
    S: Service<Request<Body>, Response = Response, Error = Infallible> + Clone + Send + Sync + 'static,
    S::Future: Send + 'static,
{
    BoxCloneSyncService::new(
        ServiceBuilder::new()
            .map_response(|response: Response<_>| response.map(Body::new))
            .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
            .layer(
                TraceLayer::new_for_http().make_span_with(span_for).on_request(()).on_response(
                    DefaultOnResponse::new().level(Level::INFO).latency_unit(tower_http::LatencyUnit::Micros),
                ),
            )
            .layer(PropagateRequestIdLayer::x_request_id())
            .service(inner),
    )
}

/// The span of one call: its request id, method and path (never the query string or headers, which may carry
/// secrets).
fn span_for<B>(request: &Request<B>) -> tracing::Span {
    let request_id = request.headers().get("x-request-id").and_then(|v| v.to_str().ok()).unwrap_or("-");
    tracing::info_span!(target: "signoff::access", "http", request_id, method = %request.method(), path = request.uri().path())
}
