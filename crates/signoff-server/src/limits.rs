//! Limits on abuse: connection timeouts and the connection cap, per-key and per-address rate limits, request and
//! body timeouts, query-string checks, page sizes in bytes, and who may read `/metrics`.
//!
//! [`serve`] runs the accept loop: each connection is served by hyper's HTTP/1 connection with hyper-util's tokio
//! I/O, timer and graceful shutdown, over a clone of one built [`Router`]. A small watchdog per connection closes
//! it when a request head takes longer than [`Limits::header_timeout`] (counted from the connection's accept, or
//! from the first byte of the next request) or when it sits idle between requests longer than
//! [`Limits::idle_timeout`]. hyper's own header timeout is not used, because it also runs while a keep-alive
//! connection is idle, which would make the idle timeout the same as the header timeout.

use crate::AppState;
use crate::error::ApiError;
use axum::Router;
use axum::body::Body;
use axum::extract::{ConnectInfo, Request};
use axum::http::{HeaderValue, Method, header};
use axum::response::{IntoResponse, Response};
use hyper::body::{Frame, SizeHint};
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use signoff_wire::ErrorCode;
use std::collections::HashMap;
use std::future::Future;
use std::hash::BuildHasher;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, watch};
use tokio::time::Instant;

/// Every limit the server enforces. [`Limits::default`] is the documented default set.
#[derive(Debug, Clone, PartialEq)]
pub struct Limits {
    /// Time allowed for a request's head (request line and headers), from the connection's accept or from the
    /// first byte of a later request on it. Default 5 s.
    pub header_timeout: Duration,
    /// Time allowed to receive a request's whole body, from the moment its head arrived. Default 30 s.
    pub body_timeout: Duration,
    /// How long a keep-alive connection may sit with no request in progress. Default 60 s.
    pub idle_timeout: Duration,
    /// Time allowed for a call to be answered, on every route except `GET /v1/requests/{id}/wait`,
    /// `GET /v1/events` and `/mcp`. Default 30 s.
    pub request_timeout: Duration,
    /// Open connections at most (both listeners together); over it, a new connection is answered
    /// `503 too_many_connections` and closed. Default 10,000.
    pub max_connections: usize,
    /// Calls per second per API key, with a burst of one second's worth; 0 disables. Default 100.
    pub rate_limit: u32,
    /// Calls per second per client address (IPv6: per /64) for calls without an accepted key; 0 disables.
    /// Default 100.
    pub ip_rate_limit: u32,
    /// A list page (and an event-stream read) stops adding items once their JSON passes this many bytes, and
    /// returns a cursor for the rest; a page always holds at least one item. Default 1 MiB.
    pub page_bytes: usize,
    /// Caps on the fields of a new request (`413 field_too_large`).
    pub fields: crate::service::FieldLimits,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            header_timeout: Duration::from_secs(5),
            body_timeout: Duration::from_secs(30),
            idle_timeout: Duration::from_secs(60),
            request_timeout: Duration::from_secs(30),
            fields: crate::service::FieldLimits::default(),
            max_connections: 10_000,
            rate_limit: 100,
            ip_rate_limit: 100,
            page_bytes: 1024 * 1024,
        }
    }
}

/// The bearer token `GET /metrics` requires, when one is configured. Its `Debug` never shows it.
#[derive(Clone)]
pub struct MetricsToken(Arc<[u8; 32]>);

impl MetricsToken {
    pub fn new(token: &str) -> Self {
        MetricsToken(Arc::new(sha256(token)))
    }

    /// Whether `presented` is the token, compared in constant time (over hashes, so the length does not leak).
    pub fn matches(&self, presented: &str) -> bool {
        use subtle::ConstantTimeEq;
        bool::from(sha256(presented).ct_eq(&*self.0))
    }
}

impl std::fmt::Debug for MetricsToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MetricsToken(***)")
    }
}

fn sha256(text: &str) -> [u8; 32] {
    use sha2::Digest;
    sha2::Sha256::digest(text.as_bytes()).into()
}

/// Where `/metrics` is served from a router's point of view.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum MetricsRoute {
    /// Alongside the API.
    Served,
    /// On a separate listener: the API's listener answers 404 for it.
    Hidden,
    /// The separate metrics listener: only `/metrics`, every other path is 404.
    Only,
}

/// What the guard middleware shares across calls.
struct Guard {
    limits: Limits,
    metrics: MetricsRoute,
    metrics_token: Option<MetricsToken>,
    keys: Buckets,
    addresses: Buckets,
}

/// The whole application as one service: `pages` beside the API, every per-call limit and the observability
/// layers applied around the router (not per route: a route's layers each box the call's future, and a parked
/// long-poll keeps every one of those boxes).
pub(crate) type AppService = tower::util::BoxCloneSyncService<Request, Response, std::convert::Infallible>;

/// The application service, with `pages` beside the API, and every per-call limit applied.
pub(crate) fn service(state: AppState, metrics: MetricsRoute, pages: Router) -> AppService {
    let guard = Arc::new(Guard {
        limits: state.limits.clone(),
        metrics,
        metrics_token: state.metrics_token.clone(),
        keys: Buckets::new(state.limits.rate_limit),
        addresses: Buckets::new(state.limits.ip_rate_limit),
    });
    let routes = pages.merge(crate::routes::router(state));
    crate::observe::wrap(Guarded { inner: routes, guard })
}

/// Set by [`crate::auth::Caller`]'s extractor: whether the call's key was accepted (0 while not checked).
#[derive(Clone, Default)]
pub(crate) struct KeyVerdict(Arc<AtomicU8>);

const KEY_ACCEPTED: u8 = 1;
const KEY_REFUSED: u8 = 2;

impl KeyVerdict {
    pub(crate) fn record(&self, accepted: bool) {
        self.0.store(if accepted { KEY_ACCEPTED } else { KEY_REFUSED }, Ordering::Relaxed);
    }
}

/// The per-call limits around `inner`, in order: the metrics route, rate limits, the query string, then the request
/// timeout.
#[derive(Clone)]
struct Guarded<S> {
    inner: S,
    guard: Arc<Guard>,
}

/// What the checks before a call decided.
enum Admission {
    /// Answered without calling the router.
    Answer(Response),
    /// The declared body is over the limit.
    Oversized(Request),
    /// Passed on, with the key's hash (to settle its bucket afterwards) and where its verdict will be recorded.
    Call { request: Request, key: Option<u64>, verdict: KeyVerdict },
}

impl Guard {
    fn admit(&self, mut request: Request) -> Admission {
        let is_metrics = request.uri().path() == "/metrics";
        match (self.metrics, is_metrics) {
            (MetricsRoute::Hidden, true) | (MetricsRoute::Only, false) => {
                return Admission::Answer(ApiError::not_found("route").into_response());
            }
            (_, true) => {
                if let Some(token) = &self.metrics_token
                    && !bearer(&request).is_some_and(|presented| token.matches(presented))
                {
                    let message = "GET /metrics needs `Authorization: Bearer <metrics token>`";
                    return Admission::Answer(ApiError::new(ErrorCode::Unauthorized, message).into_response());
                }
            }
            _ => {}
        }

        let key = bearer(&request).map(|secret| self.keys.hash(secret.as_bytes()));
        let now = Instant::now();
        let charged = match key.and_then(|key| self.keys.take_if_known(key, now)) {
            Some(result) => result,
            None => match request.extensions().get::<ConnectInfo<SocketAddr>>() {
                Some(ConnectInfo(address)) if self.limits.ip_rate_limit > 0 => {
                    self.addresses.take(self.addresses.hash(&address_group(address.ip())), now)
                }
                _ => Ok(()),
            },
        };
        if let Err(retry_after) = charged {
            return Admission::Answer(rate_limited(retry_after));
        }

        if let Some(query) = request.uri().query()
            && let Err(error) = check_query(query)
        {
            return Admission::Answer(error.into_response());
        }

        if declared_length(&request).is_some_and(|length| length > crate::MAX_BODY_BYTES as u64) {
            return Admission::Oversized(request);
        }

        let verdict = KeyVerdict::default();
        request.extensions_mut().insert(verdict.clone());
        let deadline = Instant::now() + self.limits.body_timeout;
        let request = request.map(|body| {
            Body::new(DeadlineBody { inner: body, deadline: Box::pin(tokio::time::sleep_until(deadline)) })
        });
        Admission::Call { request, key, verdict }
    }

    /// After the call: an accepted key keeps a bucket of its own, a refused one loses it.
    fn settle(&self, key: Option<u64>, verdict: &KeyVerdict) {
        if let Some(key) = key {
            match verdict.0.load(Ordering::Relaxed) {
                KEY_ACCEPTED => self.keys.remember(key, Instant::now()),
                KEY_REFUSED => self.keys.forget(key),
                _ => {}
            }
        }
    }
}

impl<S> tower::Service<Request> for Guarded<S>
where
    S: tower::Service<Request, Response = Response, Error = std::convert::Infallible> + Send + 'static,
    S::Future: Send + 'static,
{
    type Response = Response;
    type Error = std::convert::Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        let (request, key, verdict) = match self.guard.admit(request) {
            Admission::Answer(response) => return Box::pin(std::future::ready(Ok(response))),
            Admission::Oversized(request) => {
                let body_timeout = self.guard.limits.body_timeout;
                return Box::pin(async move { Ok(refuse_oversized(request, body_timeout).await) });
            }
            Admission::Call { request, key, verdict } => (request, key, verdict),
        };
        let request_timeout =
            (!is_long_lived(request.method(), request.uri().path())).then_some(self.guard.limits.request_timeout);
        // Called now, so the future below holds the router's future, never the request.
        let call = self.inner.call(request);
        let guard = self.guard.clone();
        Box::pin(async move {
            let response = match request_timeout {
                None => call.await,
                Some(limit) => match tokio::time::timeout(limit, call).await {
                    Ok(response) => response,
                    Err(_elapsed) => Ok(ApiError::new(
                        ErrorCode::Timeout,
                        format!("the call was not answered within the request timeout of {limit:?}"),
                    )
                    .into_response()),
                },
            };
            guard.settle(key, &verdict);
            response
        })
    }
}

/// `429 rate_limited` with `Retry-After` in whole seconds.
fn rate_limited(retry_after: u64) -> Response {
    let message = format!("too many calls; retry after {retry_after} s");
    let mut response = ApiError::new(ErrorCode::RateLimited, message).into_response();
    response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(retry_after));
    response
}

/// The bearer secret of a call, if it has one.
fn bearer(request: &Request) -> Option<&str> {
    let value = request.headers().get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, secret) = value.split_once(' ')?;
    let secret = secret.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !secret.is_empty()).then_some(secret)
}

/// Calls that may legitimately run longer than the request timeout: long-poll waits, the event stream, and the MCP
/// endpoint (its tool calls wait for decisions, each for a bounded time, and its `GET` is an event stream).
fn is_long_lived(method: &Method, path: &str) -> bool {
    if path == crate::MCP_PATH {
        return true;
    }
    if method != Method::GET {
        return false;
    }
    if path == "/v1/events" {
        return true;
    }
    let segments: Vec<&str> = path.split('/').collect();
    matches!(segments.as_slice(), ["", "v1", "requests", id, "wait"] if !id.is_empty())
}

/// The address a rate-limit bucket is kept for: IPv4 addresses one by one, IPv6 by /64 (one site's prefix).
fn address_group(ip: IpAddr) -> IpAddr {
    match ip.to_canonical() {
        IpAddr::V4(v4) => IpAddr::V4(v4),
        IpAddr::V6(v6) => IpAddr::V6((u128::from(v6) & !(u128::from(u64::MAX))).into()),
    }
}

/// Refuses a query string with a NUL byte or invalid UTF-8 once percent-decoded, which no parameter may carry
/// (a NUL would otherwise reach the database as text and fail there).
pub(crate) fn check_query(query: &str) -> Result<(), ApiError> {
    for pair in query.split('&') {
        let decoded = percent_decode(pair);
        let name = pair.split('=').next().unwrap_or_default();
        let name: String = name.chars().take(40).collect();
        if decoded.contains(&0) {
            return Err(ApiError::new(
                ErrorCode::BadRequest,
                format!("the query parameter `{name}` contains a NUL byte (%00), which no parameter may carry"),
            ));
        }
        if std::str::from_utf8(&decoded).is_err() {
            return Err(ApiError::new(
                ErrorCode::BadRequest,
                format!("the query parameter `{name}` is not valid UTF-8 once percent-decoded"),
            ));
        }
    }
    Ok(())
}

/// `application/x-www-form-urlencoded` decoding: `+` is a space, `%XX` a byte; a stray `%` stays as it is.
fn percent_decode(text: &str) -> Vec<u8> {
    let bytes = text.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |at: usize| bytes.get(at).and_then(|b| (*b as char).to_digit(16));
        match bytes[i] {
            b'+' => decoded.push(b' '),
            b'%' if hex(i + 1).is_some() && hex(i + 2).is_some() => {
                decoded.push((hex(i + 1).unwrap_or(0) * 16 + hex(i + 2).unwrap_or(0)) as u8);
                i += 2;
            }
            byte => decoded.push(byte),
        }
        i += 1;
    }
    decoded
}

/// Keeps the leading `items` whose JSON fits in `max_bytes` (at least one); returns whether any were dropped.
pub(crate) fn fit_page<T: serde::Serialize>(items: &mut Vec<T>, max_bytes: usize) -> bool {
    let mut total = 0;
    let keep = items
        .iter()
        .position(|item| {
            let mut counter = ByteCounter(0);
            let _ = serde_json::to_writer(&mut counter, item);
            total += counter.0 + 1;
            total > max_bytes
        })
        .map_or(items.len(), |first_over| first_over.max(1));
    let dropped = keep < items.len();
    items.truncate(keep);
    dropped
}

struct ByteCounter(usize);

impl std::io::Write for ByteCounter {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0 += bytes.len();
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Token buckets, one per key hash, in shards; buckets untouched for a while are full and so are dropped.
struct Buckets {
    /// Tokens per second; 0 means unlimited (buckets are still remembered, to know which keys were accepted).
    rate: f64,
    /// The burst: at least one call.
    capacity: f64,
    /// How long an untouched bucket takes to refill, and so to carry no information (at least [`IDLE_BUCKET`]).
    idle: Duration,
    hasher: std::hash::RandomState,
    shards: Box<[Mutex<Shard>]>,
}

const SHARDS: usize = 16;
/// Buckets at most per shard; past it, new clients share the shard's overflow bucket until a sweep makes room.
const SHARD_CAPACITY: usize = 100_000 / SHARDS;
/// A bucket untouched this long has refilled (a burst of one second's worth refills within a second) and carries no
/// information.
const IDLE_BUCKET: Duration = Duration::from_secs(10);

struct Shard {
    buckets: HashMap<u64, Bucket>,
    overflow: Bucket,
    swept: Instant,
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

impl Buckets {
    /// `rate` tokens per second with a burst of one second's worth.
    fn new(rate: u32) -> Self {
        Self::with_burst(f64::from(rate), f64::from(rate.max(1)))
    }

    /// `rate` tokens per second with a burst of `capacity`.
    fn with_burst(rate: f64, capacity: f64) -> Self {
        let now = Instant::now();
        let shard = || {
            Mutex::new(Shard { buckets: HashMap::new(), overflow: Bucket { tokens: capacity, at: now }, swept: now })
        };
        let refill = if rate > 0.0 { Duration::from_secs_f64(capacity / rate) } else { Duration::ZERO };
        Buckets {
            rate,
            capacity,
            idle: refill.max(IDLE_BUCKET),
            hasher: std::hash::RandomState::new(),
            shards: (0..SHARDS).map(|_| shard()).collect(),
        }
    }

    fn hash<T: std::hash::Hash + ?Sized>(&self, value: &T) -> u64 {
        self.hasher.hash_one(value)
    }

    fn shard(&self, key: u64, now: Instant) -> std::sync::MutexGuard<'_, Shard> {
        let mut shard = self.shards[key as usize % SHARDS].lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if now.duration_since(shard.swept) >= self.idle {
            shard.buckets.retain(|_, bucket| now.duration_since(bucket.at) < self.idle);
            shard.swept = now;
        }
        shard
    }

    /// Takes a token from `key`'s bucket, creating it full if needed; `Err(seconds)` when it is empty.
    fn take(&self, key: u64, now: Instant) -> Result<(), u64> {
        let mut shard = self.shard(key, now);
        let fresh = Bucket { tokens: self.capacity, at: now };
        if shard.buckets.len() < SHARD_CAPACITY || shard.buckets.contains_key(&key) {
            let bucket = shard.buckets.entry(key).or_insert(fresh);
            self.take_from(bucket, now)
        } else {
            self.take_from(&mut shard.overflow, now)
        }
    }

    /// Takes a token from `key`'s bucket if it has one (the key was accepted lately); `None` otherwise.
    fn take_if_known(&self, key: u64, now: Instant) -> Option<Result<(), u64>> {
        let mut shard = self.shard(key, now);
        shard.buckets.get_mut(&key).map(|bucket| self.take_from(bucket, now))
    }

    /// Gives an accepted key a bucket (full: this call was charged elsewhere), if it has none.
    fn remember(&self, key: u64, now: Instant) {
        let mut shard = self.shard(key, now);
        if shard.buckets.len() < SHARD_CAPACITY {
            shard.buckets.entry(key).or_insert(Bucket { tokens: self.capacity, at: now });
        }
    }

    /// Drops a refused key's bucket, so its calls count against the client address again.
    fn forget(&self, key: u64) {
        self.shard(key, Instant::now()).buckets.remove(&key);
    }

    fn take_from(&self, bucket: &mut Bucket, now: Instant) -> Result<(), u64> {
        if self.rate == 0.0 {
            bucket.at = now;
            return Ok(());
        }
        let refilled = bucket.tokens + now.duration_since(bucket.at).as_secs_f64() * self.rate;
        bucket.tokens = refilled.min(self.capacity);
        bucket.at = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            Ok(())
        } else {
            Err((((1.0 - bucket.tokens) / self.rate).ceil() as u64).max(1))
        }
    }
}

/// Failed attempts per client address (IPv6: per /64), for front ends that must slow down guessing (the dashboard's
/// sign-in): a burst of `burst` failures, then one more per `refill`. Successes cost nothing.
#[derive(Clone)]
pub struct FailureLimiter(Arc<Buckets>);

impl FailureLimiter {
    pub fn new(burst: u32, refill: Duration) -> Self {
        let capacity = f64::from(burst.max(1));
        FailureLimiter(Arc::new(Buckets::with_burst(1.0 / refill.as_secs_f64().max(f64::EPSILON), capacity)))
    }

    /// `Err(seconds to wait)` while `address` has no failure left; takes nothing.
    pub fn check(&self, address: IpAddr) -> Result<(), u64> {
        let (key, now) = (self.0.hash(&address_group(address)), Instant::now());
        let shard = self.0.shard(key, now);
        let mut bucket = shard.buckets.get(&key).copied().unwrap_or(Bucket { tokens: self.0.capacity, at: now });
        self.0.take_from(&mut bucket, now)
    }

    /// Counts a failure from `address`.
    pub fn failed(&self, address: IpAddr) {
        let _ = self.0.take(self.0.hash(&address_group(address)), Instant::now());
    }
}

/// The error a request body gives when it did not arrive within the body timeout.
#[derive(Debug)]
pub(crate) struct BodyTimedOut;

impl std::fmt::Display for BodyTimedOut {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the request body did not arrive within the body timeout")
    }
}

impl std::error::Error for BodyTimedOut {}

/// Whether a body-reading failure was the body timeout.
pub(crate) fn is_body_timeout(error: &(dyn std::error::Error + 'static)) -> bool {
    let mut cause = Some(error);
    while let Some(error) = cause {
        if error.is::<BodyTimedOut>() {
            return true;
        }
        cause = error.source();
    }
    false
}

/// A request body that fails with [`BodyTimedOut`] once its deadline passes.
struct DeadlineBody {
    inner: Body,
    deadline: Pin<Box<tokio::time::Sleep>>,
}

impl hyper::body::Body for DeadlineBody {
    type Data = axum::body::Bytes;
    type Error = axum::BoxError;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let this = self.get_mut();
        if let Poll::Ready(frame) = Pin::new(&mut this.inner).poll_frame(cx) {
            return Poll::Ready(frame.map(|frame| frame.map_err(Into::into)));
        }
        match this.deadline.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Some(Err(Box::new(BodyTimedOut)))),
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// Serves `main` (and `metrics`, on its own listener) until `shutdown` resolves; then stops accepting, and waits
/// for every connection to finish its calls.
pub(crate) async fn serve(
    listener: TcpListener,
    main: AppService,
    metrics: Option<(TcpListener, AppService)>,
    limits: &Limits,
    shutdown: impl Future<Output = ()>,
) {
    let connections = Arc::new(Semaphore::new(limits.max_connections.clamp(1, Semaphore::MAX_PERMITS)));
    let refusals = Arc::new(Semaphore::new(MAX_REFUSALS));
    let graceful = GracefulShutdown::new();
    let (metrics_listener, metrics_router) = metrics.unzip();
    tokio::pin!(shutdown);
    loop {
        let (accepted, router) = tokio::select! {
            accepted = listener.accept() => (accepted, &main),
            accepted = accept_maybe(metrics_listener.as_ref()) => (accepted, metrics_router.as_ref().unwrap_or(&main)),
            () = &mut shutdown => break,
        };
        let (stream, remote) = match accepted {
            Ok(accepted) => accepted,
            Err(error) => {
                // Out of file descriptors and the like: give the system a moment rather than spin.
                tracing::warn!(%error, "cannot accept a connection");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        match connections.clone().try_acquire_owned() {
            Ok(permit) => {
                let connection = Connection::new(stream, remote, router.clone(), limits);
                let served = graceful.watch(connection.hyper);
                let expired = connection.watchdog;
                tokio::spawn(async move {
                    tokio::select! {
                        // The connection first: one whose request head is in (or whose call is running) is served,
                        // even when this task is first polled after the header deadline on an overloaded machine.
                        biased;
                        result = served => if let Err(error) = result {
                            tracing::debug!(%error, %remote, "connection ended with an error");
                        },
                        () = expired => tracing::debug!(%remote, "connection closed: header or idle timeout"),
                    }
                    drop(permit);
                });
            }
            Err(_) => match refusals.clone().try_acquire_owned() {
                Ok(permit) => {
                    tokio::spawn(async move {
                        refuse(stream).await;
                        drop(permit);
                    });
                }
                Err(_) => drop(stream),
            },
        }
    }
    drop(listener);
    drop(metrics_listener);
    graceful.shutdown().await;
}

/// Connections being answered `too_many_connections` at once at most; past it, new ones are closed unanswered.
const MAX_REFUSALS: usize = 1024;

const TOO_MANY_CONNECTIONS: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\nretry-after: 1\r\nconnection: close\r\ncontent-length: 107\r\n\r\n{\"error\":{\"code\":\"too_many_connections\",\"message\":\"the server is at its connection limit; retry shortly\"}}\n";

async fn accept_maybe(listener: Option<&TcpListener>) -> std::io::Result<(TcpStream, SocketAddr)> {
    match listener {
        Some(listener) => listener.accept().await,
        None => std::future::pending().await,
    }
}

/// Answers a connection over the cap with `503 too_many_connections` and closes it. The request, if the client
/// sends one, is read and dropped (for at most a second), so closing does not reset the connection before the
/// client has read the answer.
async fn refuse(mut stream: TcpStream) {
    let _ = tokio::time::timeout(Duration::from_secs(1), async {
        stream.write_all(TOO_MANY_CONNECTIONS).await?;
        stream.shutdown().await?;
        let mut sink = [0u8; 4096];
        let mut read = 0;
        while read < 64 * 1024 {
            match tokio::io::AsyncReadExt::read(&mut stream, &mut sink).await? {
                0 => break,
                n => read += n,
            }
        }
        std::io::Result::Ok(())
    })
    .await;
}

/// Where a connection is between requests, which decides its deadline.
#[derive(Debug, Clone, Copy)]
struct Phase {
    /// Calls being handled or answered.
    in_flight: usize,
    /// A request head is on its way (since the accept, or since the first byte after the last answer).
    reading_head: bool,
    since: Instant,
}

impl Phase {
    fn deadline(&self, header_timeout: Duration, idle_timeout: Duration) -> Option<Instant> {
        match (self.in_flight, self.reading_head) {
            (0, true) => Some(self.since + header_timeout),
            (0, false) => Some(self.since + idle_timeout),
            _ => None,
        }
    }
}

type PhaseCell = Arc<watch::Sender<Phase>>;
type HyperConnection = hyper::server::conn::http1::Connection<TokioIo<WatchedIo>, ConnectionService>;

/// One accepted connection: hyper's connection future and its watchdog.
struct Connection {
    hyper: HyperConnection,
    watchdog: Pin<Box<dyn Future<Output = ()> + Send>>,
}

impl Connection {
    fn new(stream: TcpStream, remote: SocketAddr, router: AppService, limits: &Limits) -> Self {
        let _ = stream.set_nodelay(true);
        let (phase, watch) = watch::channel(Phase { in_flight: 0, reading_head: true, since: Instant::now() });
        let phase = Arc::new(phase);
        let io = TokioIo::new(WatchedIo { inner: stream, phase: phase.clone() });
        let service = ConnectionService { router, remote, phase };
        let mut builder = hyper::server::conn::http1::Builder::new();
        builder.timer(TokioTimer::new()).header_read_timeout(None).keep_alive(true);
        let hyper = builder.serve_connection(io, service);
        let watchdog = Box::pin(watchdog(watch, limits.header_timeout, limits.idle_timeout));
        Connection { hyper, watchdog }
    }
}

/// Resolves when the connection's header or idle deadline passes.
async fn watchdog(mut phase: watch::Receiver<Phase>, header_timeout: Duration, idle_timeout: Duration) {
    loop {
        let deadline = phase.borrow_and_update().deadline(header_timeout, idle_timeout);
        let changed = match deadline {
            Some(deadline) => tokio::select! {
                () = tokio::time::sleep_until(deadline) => {
                    let still = phase.borrow().deadline(header_timeout, idle_timeout);
                    if still.is_some_and(|at| at <= Instant::now()) {
                        return;
                    }
                    continue;
                }
                changed = phase.changed() => changed,
            },
            None => phase.changed().await,
        };
        if changed.is_err() {
            // The connection is gone; its own future ends the task.
            return std::future::pending().await;
        }
    }
}

/// The socket, noting the first byte of each new request head.
struct WatchedIo {
    inner: TcpStream,
    phase: PhaseCell,
}

impl AsyncRead for WatchedIo {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let polled = Pin::new(&mut this.inner).poll_read(cx, buf);
        if buf.filled().len() > before {
            this.phase.send_if_modified(|phase| {
                let starts_head = phase.in_flight == 0 && !phase.reading_head;
                if starts_head {
                    phase.reading_head = true;
                    phase.since = Instant::now();
                }
                starts_head
            });
        }
        polled
    }
}

impl AsyncWrite for WatchedIo {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

/// The built application (cloned, an `Arc`), with the caller's address, counting the calls in flight.
struct ConnectionService {
    router: AppService,
    remote: SocketAddr,
    phase: PhaseCell,
}

/// Marks a call in flight until its answer has been sent (or abandoned).
struct InFlight(PhaseCell);

impl InFlight {
    fn start(phase: &PhaseCell) -> Self {
        phase.send_modify(|phase| {
            phase.in_flight += 1;
            phase.reading_head = false;
        });
        InFlight(phase.clone())
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.send_modify(|phase| {
            phase.in_flight = phase.in_flight.saturating_sub(1);
            if phase.in_flight == 0 {
                phase.since = Instant::now();
            }
        });
    }
}

impl hyper::service::Service<hyper::Request<hyper::body::Incoming>> for ConnectionService {
    type Response = Response<AnsweringBody>;
    type Error = std::convert::Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn call(&self, request: hyper::Request<hyper::body::Incoming>) -> Self::Future {
        let in_flight = InFlight::start(&self.phase);
        let mut request = request.map(Body::new);
        request.extensions_mut().insert(ConnectInfo(self.remote));
        // Called before boxing, so the boxed future holds the application's future alone, not the request too.
        let call = tower::Service::call(&mut self.router.clone(), request);
        Box::pin(async move {
            let response = call.await?;
            Ok(response.map(|body| AnsweringBody { inner: body, _in_flight: in_flight }))
        })
    }
}

/// A response body that keeps its call counted in flight until hyper is done with it.
pub(crate) struct AnsweringBody {
    inner: Body,
    _in_flight: InFlight,
}

impl hyper::body::Body for AnsweringBody {
    type Data = axum::body::Bytes;
    type Error = axum::Error;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        Pin::new(&mut self.get_mut().inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// The body length a request declares (`Content-Length`), if it does.
fn declared_length(request: &Request) -> Option<u64> {
    request.headers().get(axum::http::header::CONTENT_LENGTH)?.to_str().ok()?.trim().parse().ok()
}

/// The most of an oversized body read (and thrown away) before answering, so the client, still sending, reads our
/// `413` instead of a reset connection.
const DRAIN_AT_MOST: usize = 16 * 1024 * 1024;

/// Answers `413 payload_too_large` to a request that declares a body over the limit, after draining what it sends
/// (up to [`DRAIN_AT_MOST`], within the body timeout); the connection is closed after the answer.
async fn refuse_oversized(request: Request, body_timeout: Duration) -> Response {
    use http_body_util::BodyExt as _;
    let mut body = request.into_body();
    let drain = async {
        let mut read = 0usize;
        while read <= DRAIN_AT_MOST {
            match body.frame().await {
                Some(Ok(frame)) => read += frame.data_ref().map_or(0, |data| data.len()),
                _ => break,
            }
        }
    };
    let _ = tokio::time::timeout(body_timeout, drain).await;
    let message = format!("the body is larger than the limit of {} bytes", crate::MAX_BODY_BYTES);
    let mut response = ApiError::new(ErrorCode::PayloadTooLarge, message).into_response();
    response.headers_mut().insert(axum::http::header::CONNECTION, axum::http::HeaderValue::from_static("close"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries_with_nul_or_invalid_utf8_are_refused() {
        assert!(check_query("status=pending&action=refund+now&run_id=%C3%A9").is_ok());
        assert!(check_query("a=%").is_ok());
        let nul = check_query("status=pending&action=a%00b").unwrap_err();
        assert_eq!(nul.code, ErrorCode::BadRequest);
        assert!(nul.message.contains("`action`") && nul.message.contains("NUL"), "{}", nul.message);
        let invalid = check_query("x%FF=1").unwrap_err();
        assert!(invalid.message.contains("UTF-8"), "{}", invalid.message);
    }

    #[test]
    fn only_waits_the_event_stream_and_mcp_outlive_the_request_timeout() {
        assert!(is_long_lived(&Method::GET, "/v1/events"));
        assert!(is_long_lived(&Method::GET, "/v1/requests/0190/wait"));
        assert!(!is_long_lived(&Method::POST, "/v1/requests/0190/wait"));
        assert!(!is_long_lived(&Method::GET, "/v1/requests/0190"));
        assert!(!is_long_lived(&Method::GET, "/v1/requests//wait"));
        assert!(!is_long_lived(&Method::GET, "/v1/requests/a/b/wait"));
        assert!(is_long_lived(&Method::POST, "/mcp"));
        assert!(is_long_lived(&Method::GET, "/mcp"));
        assert!(!is_long_lived(&Method::POST, "/mcp/other"));
    }

    #[test]
    fn pages_stop_past_the_byte_limit_but_keep_one_item() {
        let mut items = vec!["x".repeat(10); 5];
        assert!(fit_page(&mut items, 30));
        assert_eq!(items.len(), 2);
        let mut big = vec!["x".repeat(100), "y".into()];
        assert!(fit_page(&mut big, 10));
        assert_eq!(big.len(), 1);
        let mut small = vec![1, 2, 3];
        assert!(!fit_page(&mut small, 1024));
        assert_eq!(small.len(), 3);
    }

    #[test]
    fn a_bucket_holds_one_seconds_burst_and_names_a_whole_second_to_wait() {
        let buckets = Buckets::new(3);
        let now = Instant::now();
        for _ in 0..3 {
            assert_eq!(buckets.take(7, now), Ok(()));
        }
        assert_eq!(buckets.take(7, now), Err(1));
        assert_eq!(buckets.take(8, now), Ok(()), "another key has its own bucket");
        assert_eq!(buckets.take(7, now + Duration::from_millis(400)), Ok(()));
        assert_eq!(Buckets::new(0).take(7, now), Ok(()), "0 disables the limit");
    }

    #[test]
    fn failures_are_limited_per_address_and_checking_costs_nothing() {
        let limiter = FailureLimiter::new(3, Duration::from_secs(60));
        let (guesser, other): (IpAddr, IpAddr) = ("192.0.2.7".parse().unwrap(), "192.0.2.8".parse().unwrap());
        for _ in 0..5 {
            assert_eq!(limiter.check(guesser), Ok(()), "checks take nothing");
        }
        for _ in 0..3 {
            limiter.failed(guesser);
        }
        let wait = limiter.check(guesser).unwrap_err();
        assert!((59..=60).contains(&wait), "one failure refills per minute: {wait}");
        assert_eq!(limiter.check(other), Ok(()), "another address has its own allowance");
        let same_site: IpAddr = "2001:db8::1".parse().unwrap();
        for _ in 0..3 {
            limiter.failed(same_site);
        }
        assert!(limiter.check("2001:db8::2".parse().unwrap()).is_err(), "IPv6 is limited per /64");
    }

    #[test]
    fn idle_buckets_are_dropped_and_unknown_keys_are_not_remembered() {
        let buckets = Buckets::new(1);
        let now = Instant::now();
        assert!(buckets.take_if_known(1, now).is_none());
        buckets.remember(1, now);
        assert_eq!(buckets.take_if_known(1, now), Some(Ok(())));
        let later = now + IDLE_BUCKET * 2;
        assert!(buckets.take_if_known(1, later).is_none(), "swept after being idle");
        buckets.remember(2, later);
        buckets.forget(2);
        assert!(buckets.take_if_known(2, later).is_none());
    }

    #[test]
    fn ipv6_addresses_share_a_bucket_per_64() {
        let a: IpAddr = "2001:db8:1:2::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:ffff::9".parse().unwrap();
        let c: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(address_group(a), address_group(b));
        assert_ne!(address_group(a), address_group(c));
        let v4: IpAddr = "10.0.0.1".parse().unwrap();
        let mapped: IpAddr = "::ffff:10.0.0.1".parse().unwrap();
        assert_eq!(address_group(v4), address_group(mapped));
        assert_ne!(address_group("10.0.0.2".parse().unwrap()), address_group(v4));
    }

    #[test]
    fn the_metrics_token_is_matched_exactly_and_never_printed() {
        let token = MetricsToken::new("s3cret");
        assert!(token.matches("s3cret"));
        assert!(!token.matches("s3cre"));
        assert!(!token.matches(""));
        assert!(!format!("{token:?}").contains("s3cret"));
    }

    #[test]
    fn the_refusal_is_a_well_formed_json_answer() {
        let text = std::str::from_utf8(TOO_MANY_CONNECTIONS).unwrap();
        let (head, body) = text.split_once("\r\n\r\n").unwrap();
        let length: usize =
            head.lines().find_map(|line| line.strip_prefix("content-length: ")).unwrap().parse().unwrap();
        assert_eq!(length, body.len());
        let parsed: signoff_wire::ErrorBody = serde_json::from_str(body).unwrap();
        assert_eq!(parsed.error.code, ErrorCode::TooManyConnections);
    }
}
