//! Limits on abuse, against the real server on a port: header, idle, body and request timeouts, the connection
//! cap, per-key and per-address rate limits, query strings with NUL or invalid UTF-8, byte-bounded pages, and
//! access to `/metrics`.

use serde_json::{Value, json};
use signoff_server::{AppState, Limits, MetricsToken};
use signoff_testkit::{Backend, TestApp, TestDatabase, error_code, on_every_backend, send};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

on_every_backend!(
    a_burst_over_the_key_rate_limit_is_refused_with_retry_after_and_recovers,
    calls_without_an_accepted_key_are_limited_by_client_address,
    nul_bytes_and_invalid_utf8_in_any_query_are_bad_requests,
    list_pages_stop_past_the_byte_limit_and_the_cursor_reaches_the_rest,
    the_event_stream_reads_byte_bounded_pages_without_losing_events,
    a_wait_longer_than_the_request_timeout_is_not_cut,
);

fn limits(change: impl FnOnce(&mut Limits)) -> impl FnOnce(&mut AppState) {
    move |state| {
        let mut limits = signoff_testkit::test_limits();
        change(&mut limits);
        state.limits = limits;
    }
}

fn address(app: &TestApp) -> String {
    app.url.trim_start_matches("http://").to_string()
}

/// A raw HTTP/1.1 GET with keep-alive.
fn get_request(path: &str) -> String {
    format!("GET {path} HTTP/1.1\r\nHost: signoff\r\n\r\n")
}

/// Reads one response (head and `Content-Length` body); `None` if the server closed the connection first.
async fn read_response(stream: &mut TcpStream) -> Option<(u16, String, String)> {
    let mut data = Vec::new();
    let head_end = loop {
        if let Some(end) = data.windows(4).position(|w| w == b"\r\n\r\n") {
            break end + 4;
        }
        let mut chunk = [0u8; 4096];
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => return None,
            Ok(n) => data.extend_from_slice(&chunk[..n]),
        }
    };
    let head = String::from_utf8_lossy(&data[..head_end]).to_ascii_lowercase();
    let status = head.split(' ').nth(1)?.parse().ok()?;
    let length: usize = head
        .lines()
        .find_map(|line| line.strip_prefix("content-length:"))
        .map_or(0, |value| value.trim().parse().unwrap_or(0));
    while data.len() < head_end + length {
        let mut chunk = [0u8; 4096];
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => return None,
            Ok(n) => data.extend_from_slice(&chunk[..n]),
        }
    }
    Some((status, head, String::from_utf8_lossy(&data[head_end..head_end + length]).into_owned()))
}

/// Waits (at most 10 s) for the server to close the connection; returns how long that took.
async fn closed_after(stream: &mut TcpStream, since: Instant) -> Duration {
    let mut chunk = [0u8; 1024];
    let read = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    });
    read.await.expect("the server closes the connection");
    since.elapsed()
}

#[tokio::test]
async fn a_client_sending_one_header_byte_per_second_is_cut_off_at_the_header_timeout() {
    let (_db, app) =
        TestApp::on_with(Backend::Sqlite, limits(|l| l.header_timeout = Duration::from_millis(2500))).await;
    let mut stream = TcpStream::connect(address(&app)).await.unwrap();
    let (mut reader, mut writer) = stream.split();
    let started = Instant::now();
    let head = b"GET /healthz HTTP/1.1\r\nHost: signoff\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaa\r\n\r\n";
    let trickle = async {
        for byte in head {
            if writer.write_all(&[*byte]).await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
        panic!("the whole head was sent without the server closing the connection");
    };
    let mut answer = Vec::new();
    tokio::select! {
        () = trickle => {}
        read = reader.read_to_end(&mut answer) => { let _ = read; }
    }
    let elapsed = started.elapsed();
    assert!(answer.is_empty(), "no answer to a head that never arrived: {:?}", String::from_utf8_lossy(&answer));
    assert!(elapsed >= Duration::from_millis(2400) && elapsed < Duration::from_secs(5), "closed after {elapsed:?}");

    // A prompt client on the same server is served.
    let (status, _) = send(app.http.get(format!("{}/healthz", app.url))).await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn idle_keep_alive_connections_outlive_the_header_timeout_until_the_idle_timeout() {
    let (_db, app) = TestApp::on_with(
        Backend::Sqlite,
        limits(|l| {
            l.header_timeout = Duration::from_millis(500);
            l.idle_timeout = Duration::from_secs(2);
        }),
    )
    .await;
    let mut stream = TcpStream::connect(address(&app)).await.unwrap();
    stream.write_all(get_request("/healthz").as_bytes()).await.unwrap();
    assert_eq!(read_response(&mut stream).await.unwrap().0, 200);
    // Idle for longer than the header timeout, still well within the idle timeout: the connection is kept.
    tokio::time::sleep(Duration::from_secs(1)).await;
    stream.write_all(get_request("/healthz").as_bytes()).await.unwrap();
    assert_eq!(read_response(&mut stream).await.unwrap().0, 200);
    let answered = Instant::now();
    let idle = closed_after(&mut stream, answered).await;
    assert!(idle >= Duration::from_millis(1900) && idle < Duration::from_secs(4), "closed after {idle:?}");
}

#[tokio::test]
async fn a_body_slower_than_the_body_timeout_is_answered_timeout() {
    let (_db, app) = TestApp::on_with(Backend::Sqlite, limits(|l| l.body_timeout = Duration::from_secs(1))).await;
    let mut stream = TcpStream::connect(address(&app)).await.unwrap();
    let head = format!(
        "POST /v1/requests HTTP/1.1\r\nHost: signoff\r\nAuthorization: Bearer {}\r\n\
         Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{{\"action\"",
        app.agent_key
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let started = Instant::now();
    let (status, _, body) = read_response(&mut stream).await.expect("an answer");
    assert_eq!(status, 503);
    let body: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(error_code(&body), "timeout", "{body}");
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[tokio::test]
async fn connections_over_the_cap_are_answered_too_many_connections_until_one_closes() {
    let (_db, app) = TestApp::on_with(Backend::Sqlite, limits(|l| l.max_connections = 2)).await;
    let mut open = Vec::new();
    for _ in 0..2 {
        let mut stream = TcpStream::connect(address(&app)).await.unwrap();
        stream.write_all(get_request("/healthz").as_bytes()).await.unwrap();
        assert_eq!(read_response(&mut stream).await.unwrap().0, 200);
        open.push(stream);
    }
    let mut third = TcpStream::connect(address(&app)).await.unwrap();
    third.write_all(get_request("/healthz").as_bytes()).await.unwrap();
    let (status, head, body) = read_response(&mut third).await.expect("an answer");
    assert_eq!(status, 503);
    assert!(head.contains("retry-after: 1"), "{head}");
    assert_eq!(error_code(&serde_json::from_str(&body).unwrap()), "too_many_connections");
    assert!(closed_after(&mut third, Instant::now()).await < Duration::from_secs(2));

    // The two open connections are still served; once one closes, a new connection gets its place.
    open[1].write_all(get_request("/healthz").as_bytes()).await.unwrap();
    assert_eq!(read_response(&mut open[1]).await.unwrap().0, 200);
    drop(open.remove(0));
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let mut next = TcpStream::connect(address(&app)).await.unwrap();
        next.write_all(get_request("/healthz").as_bytes()).await.unwrap();
        match read_response(&mut next).await.map(|answer| answer.0) {
            Some(200) => break,
            answer => assert!(Instant::now() < deadline, "still refused: {answer:?}"),
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn a_burst_over_the_key_rate_limit_is_refused_with_retry_after_and_recovers(backend: Backend) {
    let (_db, app) = TestApp::on_with(
        backend,
        limits(|l| {
            l.rate_limit = 2;
            l.ip_rate_limit = 1000;
        }),
    )
    .await;
    // The key's first call counts against the address; from then on the key has its own bucket of 2.
    let (status, created) = app.create(json!({"action": "refund"})).await;
    assert_eq!(status, 201);
    let wait = format!("/v1/requests/{}/wait?timeout_s=0", created["id"].as_str().unwrap());
    for _ in 0..2 {
        assert_eq!(send(app.get(&wait, &app.agent_key)).await.0, 200);
    }
    let refused = app.get(&wait, &app.agent_key).send().await.unwrap();
    assert_eq!(refused.status(), 429);
    let retry_after: u64 = refused.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!(retry_after >= 1);
    assert_eq!(error_code(&refused.json().await.unwrap()), "rate_limited");
    // Another key is not affected.
    assert_eq!(send(app.get("/v1/requests", &app.approver_key)).await.0, 200);

    tokio::time::sleep(Duration::from_secs(retry_after)).await;
    assert_eq!(send(app.get(&wait, &app.agent_key)).await.0, 200);
}

async fn calls_without_an_accepted_key_are_limited_by_client_address(backend: Backend) {
    let (_db, app) = TestApp::on_with(
        backend,
        limits(|l| {
            l.rate_limit = 1000;
            l.ip_rate_limit = 2;
        }),
    )
    .await;
    assert_eq!(send(app.get("/v1/requests", &app.agent_key)).await.0, 200);
    assert_eq!(send(app.get("/v1/requests", "so_unknown_1")).await.0, 401);
    // A fresh made-up key does not get a fresh bucket: the address's is empty.
    let (status, body) = send(app.get("/v1/requests", "so_unknown_2")).await;
    assert_eq!((status, error_code(&body)), (429, "rate_limited"));
    assert_eq!(send(app.http.get(format!("{}/healthz", app.url))).await.0, 429);
    // The accepted key counts against its own bucket.
    assert_eq!(send(app.get("/v1/requests", &app.agent_key)).await.0, 200);
}

async fn nul_bytes_and_invalid_utf8_in_any_query_are_bad_requests(backend: Backend) {
    let (_db, app) = TestApp::on(backend).await;
    let (_, created) = app.create(json!({"action": "refund"})).await;
    let id = created["id"].as_str().unwrap();
    for bad in ["%00", "a%00b", "%FF", "%C3"] {
        for path in [
            format!("/v1/requests?action={bad}"),
            format!("/v1/requests?run_id={bad}&status=pending"),
            format!("/v1/requests?group={bad}"),
            format!("/v1/requests/{id}/wait?timeout_s={bad}"),
            format!("/v1/events?after={bad}"),
            format!("/v1/audit/verify?from={bad}"),
            format!("/v1/requests/{id}?{bad}=1"),
        ] {
            let (status, body) = send(app.get(&path, &app.admin_key)).await;
            assert_eq!((status, error_code(&body)), (400, "bad_request"), "{path}: {body}");
            let message = body["error"]["message"].as_str().unwrap();
            assert!(message.contains("NUL") || message.contains("UTF-8"), "{path}: {message}");
        }
    }
    let (status, body) = send(app.get("/v1/requests?action=r%C3%A9fund+x", &app.admin_key)).await;
    assert_eq!(status, 200, "{body}");
}

async fn list_pages_stop_past_the_byte_limit_and_the_cursor_reaches_the_rest(backend: Backend) {
    let (_db, app) = TestApp::on_with(backend, limits(|l| l.page_bytes = 4000)).await;
    let mut created = Vec::new();
    for i in 0..5 {
        let (status, request) = app.create(json!({"action": "bulk", "args": {"i": i, "pad": "x".repeat(1500)}})).await;
        assert_eq!(status, 201);
        created.push(request["id"].as_str().unwrap().to_string());
    }
    let mut seen = Vec::new();
    let mut cursor = None::<String>;
    loop {
        let path = match &cursor {
            Some(cursor) => format!("/v1/requests?action=bulk&limit=50&cursor={cursor}"),
            None => "/v1/requests?action=bulk&limit=50".to_string(),
        };
        let (status, page) = send(app.get(&path, &app.admin_key)).await;
        assert_eq!(status, 200);
        let items = page["items"].as_array().unwrap();
        assert!(!items.is_empty() && items.len() < 5, "a page holds what fits in 4000 bytes: {}", items.len());
        seen.extend(items.iter().map(|r| r["id"].as_str().unwrap().to_string()));
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_string()),
            None => break,
        }
        assert!(seen.len() <= 5, "no request twice: {seen:?}");
    }
    created.reverse();
    assert_eq!(seen, created, "every request once, newest first");
}

async fn the_event_stream_reads_byte_bounded_pages_without_losing_events(backend: Backend) {
    let (_db, app) = TestApp::on_with(backend, limits(|l| l.page_bytes = 1000)).await;
    for i in 0..5 {
        let (status, _) = app.create(json!({"action": "bulk", "args": {"i": i}})).await;
        assert_eq!(status, 201);
    }
    let logged = app.state.store.events_after(0, 1000, None).await.unwrap();
    let logged_bytes: usize = logged.iter().map(|event| serde_json::to_vec(event).unwrap().len()).sum();
    assert!(logged_bytes > 3 * 1000, "the log spans several pages: {logged_bytes} bytes");
    let expected: Vec<String> = logged.iter().map(|event| event.seq.to_string()).collect();

    let mut response = app.get("/v1/events", &app.admin_key).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let mut text = String::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let streamed = loop {
        let ids: Vec<String> = text
            .lines()
            .filter_map(|line| line.strip_prefix("id: ").or_else(|| line.strip_prefix("id:")))
            .map(|id| id.trim().to_string())
            .collect();
        if ids.len() >= expected.len() {
            break ids;
        }
        match tokio::time::timeout_at(deadline, response.chunk()).await {
            Ok(Ok(Some(bytes))) => text.push_str(&String::from_utf8_lossy(&bytes)),
            other => panic!("the stream stopped after ids {ids:?}: {other:?}"),
        }
    };
    assert_eq!(streamed, expected, "every event once, in order");
}

async fn a_wait_longer_than_the_request_timeout_is_not_cut(backend: Backend) {
    let (_db, app) = TestApp::on_with(backend, limits(|l| l.request_timeout = Duration::from_secs(1))).await;
    let (_, created) = app.create(json!({"action": "refund"})).await;
    let started = Instant::now();
    let wait = format!("/v1/requests/{}/wait?timeout_s=2", created["id"].as_str().unwrap());
    let (status, request) = send(app.get(&wait, &app.agent_key)).await;
    assert_eq!((status, request["status"].as_str()), (200, Some("pending")), "{request}");
    assert!(started.elapsed() >= Duration::from_secs(2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_slower_than_the_request_timeout_is_answered_timeout() {
    let (db, app) =
        TestApp::on_with(Backend::Postgres, limits(|l| l.request_timeout = Duration::from_millis(800))).await;
    // Hold the event chain's lock, which every write takes first, so a create cannot finish.
    use sqlx::Connection;
    let mut blocker = sqlx::PgConnection::connect(&db.url).await.unwrap();
    let mut transaction = blocker.begin().await.unwrap();
    sqlx::query("SELECT pg_advisory_xact_lock($1)").bind(0x5167_0FF0_i64).execute(&mut *transaction).await.unwrap();
    let started = Instant::now();
    let (status, body) = app.create(json!({"action": "refund"})).await;
    assert_eq!((status, error_code(&body)), (503, "timeout"), "{body}");
    assert!(started.elapsed() < Duration::from_secs(5));
    transaction.rollback().await.unwrap();
    assert_eq!(app.create(json!({"action": "refund"})).await.0, 201);
}

#[tokio::test]
async fn metrics_with_a_token_need_it() {
    let (_db, app) =
        TestApp::on_with(Backend::Sqlite, |state| state.metrics_token = Some(MetricsToken::new("s3cret"))).await;
    let metrics = format!("{}/metrics", app.url);
    let (status, body) = send(app.http.get(&metrics)).await;
    assert_eq!((status, error_code(&body)), (401, "unauthorized"));
    assert_eq!(send(app.http.get(&metrics).bearer_auth("s3cre")).await.0, 401);
    assert_eq!(send(app.http.get(&metrics).bearer_auth(&app.admin_key)).await.0, 401, "API keys are not the token");
    let answer = app.http.get(&metrics).bearer_auth("s3cret").send().await.unwrap();
    assert_eq!(answer.status(), 200);
    assert!(answer.text().await.unwrap().contains("signoff_requests_pending"));
}

#[tokio::test]
async fn a_separate_metrics_listener_serves_metrics_only_there() {
    let db = TestDatabase::new(Backend::Sqlite).await;
    let state = AppState::load(db.open().await, signoff_testkit::test_callbacks()).await.unwrap();
    let main = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let metrics = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let (main_url, metrics_url) =
        (format!("http://{}", main.local_addr().unwrap()), format!("http://{}", metrics.local_addr().unwrap()));
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server =
        tokio::spawn(signoff_server::serve_with_metrics(main, Some(metrics), state, axum::Router::new(), async move {
            let _ = stopped.await;
        }));
    let http = reqwest::Client::new();
    let (status, body) = send(http.get(format!("{main_url}/metrics"))).await;
    assert_eq!((status, error_code(&body)), (404, "not_found"));
    assert_eq!(send(http.get(format!("{main_url}/healthz"))).await.0, 200);
    let answer = http.get(format!("{metrics_url}/metrics")).send().await.unwrap();
    assert_eq!(answer.status(), 200);
    assert!(answer.text().await.unwrap().contains("signoff_requests_pending"));
    assert_eq!(send(http.get(format!("{metrics_url}/healthz"))).await.0, 404);
    assert_eq!(send(http.get(format!("{metrics_url}/v1/requests"))).await.0, 404);
    stop.send(()).unwrap();
    server.await.unwrap().unwrap();
}
