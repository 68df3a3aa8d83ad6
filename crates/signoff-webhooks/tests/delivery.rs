//! Delivery against a real HTTP receiver on 127.0.0.1: headers and signature, status handling, timeouts, limits,
//! and refusal of private targets without connecting.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::post;
use signoff_webhooks::{
    CallbackUrlPolicy, DEFAULT_TOLERANCE, DeliveryOptions, DeliveryResult, MAX_RESPONSE_BYTES, USER_AGENT_VALUE, Url,
    WebhookHeaders, WebhookSecret, build_client, deliver, deliver_with_options, unix_now, verify,
};

const DEV: CallbackUrlPolicy = CallbackUrlPolicy { allow_private: true };
const STRICT: CallbackUrlPolicy = CallbackUrlPolicy { allow_private: false };
const BODY: &[u8] = br#"{"request_id":"req_1","status":"approved","comment":"ok \u2713"}"#;

/// One request as the receiver saw it.
#[derive(Debug, Clone)]
struct Received {
    headers: HeaderMap,
    body: Bytes,
}

#[derive(Clone, Default)]
struct Receiver {
    received: Arc<Mutex<Vec<Received>>>,
}

impl Receiver {
    fn received(&self) -> Vec<Received> {
        self.received.lock().unwrap().clone()
    }
}

async fn record(State(receiver): State<Receiver>, headers: HeaderMap, body: Bytes) -> &'static str {
    receiver.received.lock().unwrap().push(Received { headers, body });
    "thanks"
}

async fn start_receiver() -> (SocketAddr, Receiver) {
    let receiver = Receiver::default();
    let app = Router::new()
        .route("/ok", post(record))
        .route("/no-content", post(|| async { StatusCode::NO_CONTENT }))
        .route("/gone", post(|| async { (StatusCode::GONE, "unsubscribed") }))
        .route("/error", post(|| async { (StatusCode::INTERNAL_SERVER_ERROR, "database is down") }))
        .route("/not-found", post(|| async { (StatusCode::NOT_FOUND, "no such hook") }))
        .route("/redirect", post(|| async { (StatusCode::FOUND, [(header::LOCATION, "/ok")]) }))
        .route(
            "/slow",
            post(|| async {
                tokio::time::sleep(Duration::from_secs(10)).await;
                "too late"
            }),
        )
        .route("/big", post(|| async { "x".repeat(1 << 20).into_response() }))
        .with_state(receiver.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (address, receiver)
}

fn url(address: SocketAddr, path: &str) -> Url {
    DEV.check(&format!("http://{address}{path}")).unwrap()
}

fn secret() -> WebhookSecret {
    WebhookSecret::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap()
}

async fn deliver_to(address: SocketAddr, path: &str) -> DeliveryResult {
    let client = build_client().unwrap();
    deliver(&client, &url(address, path), &secret(), "msg_delivery_test", BODY, &DEV).await
}

fn header<'a>(received: &'a Received, name: &str) -> &'a str {
    received.headers.get(name).unwrap_or_else(|| panic!("missing header {name}")).to_str().unwrap()
}

#[tokio::test]
async fn delivers_the_signed_body_with_the_standard_headers() {
    let (address, receiver) = start_receiver().await;
    let before = unix_now();
    let result = deliver_to(address, "/ok").await;
    let DeliveryResult::Delivered { status, response_excerpt, .. } = &result else { panic!("{result:?}") };
    assert_eq!((*status, response_excerpt.as_str()), (200, "thanks"));
    assert!(result.is_final());

    let received = receiver.received();
    assert_eq!(received.len(), 1);
    let request = &received[0];
    assert_eq!(request.body.as_ref(), BODY);
    assert_eq!(header(request, "content-type"), "application/json");
    assert_eq!(header(request, "user-agent"), USER_AGENT_VALUE);
    assert_eq!(header(request, "webhook-id"), "msg_delivery_test");
    let timestamp: i64 = header(request, "webhook-timestamp").parse().unwrap();
    assert!((before..=unix_now()).contains(&timestamp), "timestamp {timestamp} is not now");
    let headers = WebhookHeaders {
        id: header(request, "webhook-id"),
        timestamp: header(request, "webhook-timestamp"),
        signature: header(request, "webhook-signature"),
    };
    assert!(headers.signature.starts_with("v1,"), "{}", headers.signature);
    verify(&secret(), &headers, &request.body, DEFAULT_TOLERANCE).unwrap();
    assert!(verify(&WebhookSecret::generate(), &headers, &request.body, DEFAULT_TOLERANCE).is_err());
}

#[tokio::test]
async fn any_2xx_is_delivered() {
    let (address, _) = start_receiver().await;
    let result = deliver_to(address, "/no-content").await;
    assert!(matches!(result, DeliveryResult::Delivered { status: 204, .. }), "{result:?}");
    assert_eq!(result.response_excerpt(), "");
}

#[tokio::test]
async fn gone_means_stop() {
    let (address, _) = start_receiver().await;
    let result = deliver_to(address, "/gone").await;
    assert!(matches!(&result, DeliveryResult::Gone { response_excerpt, .. } if response_excerpt == "unsubscribed"));
    assert!(result.is_final());
    assert_eq!(result.status(), Some(410));
}

#[tokio::test]
async fn other_statuses_fail_with_status_and_excerpt() {
    let (address, _) = start_receiver().await;
    for (path, code, excerpt) in [("/error", 500, "database is down"), ("/not-found", 404, "no such hook")] {
        let result = deliver_to(address, path).await;
        let DeliveryResult::Failed { status, error, response_excerpt, .. } = &result else { panic!("{result:?}") };
        assert_eq!((*status, response_excerpt.as_str()), (Some(code), excerpt));
        assert!(error.starts_with(&format!("callback answered HTTP {code}")), "{error}");
        assert!(!result.is_final());
    }
}

#[tokio::test]
async fn redirects_fail_and_are_not_followed() {
    let (address, receiver) = start_receiver().await;
    let result = deliver_to(address, "/redirect").await;
    let DeliveryResult::Failed { status, error, .. } = &result else { panic!("{result:?}") };
    assert_eq!(*status, Some(302));
    assert!(error.contains("/ok") && error.contains("redirects are not followed"), "{error}");
    assert!(receiver.received().is_empty(), "the redirect target was called");
}

#[tokio::test]
async fn a_client_that_follows_redirects_is_caught() {
    let (address, _) = start_receiver().await;
    let following = reqwest::Client::new();
    let result = deliver(&following, &url(address, "/redirect"), &secret(), "msg_1", BODY, &DEV).await;
    let DeliveryResult::Failed { error, .. } = &result else { panic!("{result:?}") };
    assert!(error.contains("followed a redirect"), "{error}");
}

#[tokio::test]
async fn a_slow_receiver_times_out() {
    let (address, _) = start_receiver().await;
    let client = build_client().unwrap();
    let options = DeliveryOptions { timeout: Duration::from_millis(300) };
    let result =
        deliver_with_options(&client, &url(address, "/slow"), &secret(), "msg_slow", BODY, &DEV, &options).await;
    let DeliveryResult::Failed { status, error, elapsed_ms, .. } = &result else { panic!("{result:?}") };
    assert_eq!(*status, None);
    assert!(error.contains("timed out"), "{error}");
    assert!((300..3000).contains(elapsed_ms), "elapsed {elapsed_ms} ms");
    assert_eq!(DeliveryOptions::default().timeout, Duration::from_secs(15));
}

#[tokio::test]
async fn at_most_4_kib_of_the_answer_is_kept() {
    let (address, _) = start_receiver().await;
    let result = deliver_to(address, "/big").await;
    assert!(matches!(result, DeliveryResult::Delivered { status: 200, .. }), "{result:?}");
    assert_eq!(result.response_excerpt().len(), MAX_RESPONSE_BYTES);
}

#[tokio::test]
async fn a_closed_port_fails_without_status() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    drop(listener);
    let result = deliver_to(address, "/ok").await;
    let DeliveryResult::Failed { status: None, error, .. } = &result else { panic!("{result:?}") };
    assert_eq!(error, "connection refused");
}

#[tokio::test]
async fn private_targets_are_refused_without_connecting() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let connections = Arc::new(AtomicUsize::new(0));
    let counter = connections.clone();
    tokio::spawn(async move {
        while listener.accept().await.is_ok() {
            counter.fetch_add(1, Ordering::SeqCst);
        }
    });
    let client = build_client().unwrap();
    for target in [
        format!("http://localhost:{port}/cb"),
        format!("http://api.localhost:{port}/cb"),
        format!("http://127.0.0.1:{port}/cb"),
        format!("http://[::ffff:127.0.0.1]:{port}/cb"),
    ] {
        let url = Url::parse(&target).unwrap();
        let result = deliver(&client, &url, &secret(), "msg_private", BODY, &STRICT).await;
        let DeliveryResult::Failed { status: None, error, .. } = &result else { panic!("{target}: {result:?}") };
        assert!(error.contains("SIGNOFF_ALLOW_PRIVATE_CALLBACKS=true"), "{target}: {error}");
    }
    // The same listener is reachable when private targets are allowed, so the count above means something.
    let allowed = Url::parse(&format!("http://localhost:{port}/cb")).unwrap();
    let options = DeliveryOptions { timeout: Duration::from_millis(200) };
    let result = deliver_with_options(&client, &allowed, &secret(), "msg_private", BODY, &DEV, &options).await;
    assert!(matches!(result, DeliveryResult::Failed { .. }), "{result:?}");
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(connections.load(Ordering::SeqCst), 1, "only the allowed attempt may connect");
}

#[tokio::test]
async fn other_schemes_are_refused_at_delivery() {
    let client = build_client().unwrap();
    let url = Url::parse("ftp://example.com/cb").unwrap();
    let result = deliver(&client, &url, &secret(), "msg_ftp", BODY, &STRICT).await;
    assert_eq!(result.error(), Some("callback_url must use http or https, not ftp"));
}
