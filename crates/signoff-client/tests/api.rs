//! The client against the real app on both backends, one call of every endpoint it covers: health, policy, requests
//! The client against the real app on both backends, one call of every endpoint it covers: health, policy, requests
//! (create, read, list, wait, decide, answer, cancel, report, confirm, flag), their events, deliveries and
//! notifications, the live event stream, the audit log, on-call rotations, statistics and metrics; and the API's
//! errors as `ClientError::Api` with codes.

use serde_json::json;
use signoff_client::{Client, ClientError, ListQuery, StatsQuery};
use signoff_domain::checkpoint::CheckpointKey;
use signoff_testkit::{Backend, CallbackReceiver, TestApp, on_every_backend};
use signoff_wire::{
    DecisionBody, DeliveryState, ErrorCode, Event, EventKind, FlagBody, Kind, Mode, NewRequest, OutcomeBody,
    ReviewVerdict, Status, Verdict, stats::GroupBy,
};
use std::time::Duration;

on_every_backend!(
    every_endpoint_answers_through_the_client,
    errors_come_back_with_the_apis_codes,
    the_readme_example_runs_with_the_approved_arguments,
    reviews_are_confirmed_and_flagged_through_the_client,
);

fn policy(starts: chrono::DateTime<chrono::Utc>) -> String {
    format!(
        r#"
version: 1
approvers:
  - {{ id: dana, name: Dana, groups: [finance, oncall] }}
  - {{ id: ada, name: Ada, groups: [finance] }}
groups:
  finance: {{ notify: [dashboard] }}
  oncall: {{ notify: [dashboard], rotation: {{ members: [dana], every: 1h, starts: "{}" }} }}
defaults: {{ route: finance, timeout: 1h, on_timeout: reject }}
"#,
        starts.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
    )
}

fn refund(amount: u64) -> NewRequest {
    let mut new = NewRequest::action("refund");
    new.args = json!({"order": "1042", "amount": amount});
    new.summary = Some(format!("Refund {amount}"));
    new
}

async fn next_event(stream: &mut signoff_client::EventStream) -> Event {
    let next = tokio::time::timeout(Duration::from_secs(10), stream.next()).await.expect("an event in time");
    next.expect("the stream works").expect("the stream goes on")
}

async fn every_endpoint_answers_through_the_client(backend: Backend) {
    let (_db, app) = TestApp::on(backend).await;
    let (agent, dana, admin) = (
        Client::new(&app.url, &app.agent_key).unwrap(),
        Client::new(&app.url, &app.approver_key).unwrap(),
        Client::new(&app.url, &app.admin_key).unwrap(),
    );
    assert_eq!(agent.health().await.unwrap().status, "ok");
    assert_eq!(agent.ready().await.unwrap().status, "ready");

    // Policy: applied, read back, listed; who is on call.
    let starts = chrono::Utc::now() - chrono::Duration::minutes(10);
    let applied = admin.apply_policy(&policy(starts)).await.unwrap();
    assert_eq!((applied.version, applied.builtin), (1, false));
    assert_eq!(dana.policy().await.unwrap().content_hash, applied.content_hash);
    let versions = admin.policy_versions().await.unwrap();
    assert_eq!(versions.iter().map(|v| v.version).collect::<Vec<_>>(), [1]);
    let on_call = dana.on_call("oncall").await.unwrap();
    assert_eq!((on_call.on_call.id.as_str(), on_call.on_call.name.as_str()), ("dana", "Dana"));
    assert_eq!(on_call.until.timestamp(), (starts + chrono::Duration::hours(1)).timestamp());

    // Create (idempotently), read, list by group and status.
    let receiver = CallbackReceiver::start(0, None).await;
    let mut new = refund(120);
    new.callback_url = Some(receiver.url.clone());
    let created = agent.create_request(&new, Some("refund-1042")).await.unwrap();
    assert!(created.created && created.request.status == Status::Pending);
    let id = created.request.id;
    let again = agent.create_request(&new, Some("refund-1042")).await.unwrap();
    assert_eq!((again.created, again.request.id), (false, id), "the same idempotency key finds the original");
    assert_eq!(agent.request(id).await.unwrap().summary.as_deref(), Some("Refund 120"));
    let in_finance =
        ListQuery { group: Some("finance".into()), status: Some("pending".into()), ..ListQuery::default() };
    assert_eq!(dana.list_requests(&in_finance).await.unwrap().items.iter().map(|r| r.id).collect::<Vec<_>>(), [id]);
    let elsewhere = ListQuery { group: Some("oncall".into()), ..ListQuery::default() };
    assert!(dana.list_requests(&elsewhere).await.unwrap().items.is_empty(), "the group filter is sent");

    // Wait while a person approves with an edit; report the outcome.
    let waiting = tokio::spawn({
        let agent = agent.clone();
        async move { agent.wait(id, 30).await }
    });
    let edit = DecisionBody {
        outcome: Verdict::Approve,
        comment: Some("not the shipping".into()),
        reason: None,
        args: Some(json!({"order": "1042", "amount": 100})),
        standing_s: None,
    };
    dana.decide(id, &edit).await.unwrap();
    let approved = waiting.await.unwrap().unwrap();
    assert_eq!(approved.status, Status::Approved);
    assert_eq!(approved.decision.as_ref().unwrap().args, json!({"order": "1042", "amount": 100}));
    let reported = agent.report_outcome(id, &OutcomeBody { ok: true, detail: Some(json!({"refund": "re_1"})) }).await;
    assert!(reported.unwrap().outcome.unwrap().ok);

    // Its timeline, its callback, its notifications.
    let kinds: Vec<EventKind> = agent.events(id).await.unwrap().into_iter().map(|e| e.kind).collect();
    assert_eq!(kinds.first(), Some(&EventKind::Created), "{kinds:?}");
    assert!(kinds.contains(&EventKind::Decided) && kinds.contains(&EventKind::OutcomeReported), "{kinds:?}");
    receiver.wait_for_accepted(1, Duration::from_secs(20)).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    let deliveries = loop {
        let deliveries = agent.deliveries(id).await.unwrap();
        if deliveries.iter().any(|d| d.record.state == DeliveryState::Delivered) {
            break deliveries;
        }
        assert!(tokio::time::Instant::now() < deadline, "not delivered: {deliveries:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!((deliveries.len(), deliveries[0].record.url.as_str()), (1, receiver.url.as_str()));
    assert!(!deliveries[0].history.is_empty(), "its attempts");
    assert!(agent.notifications(id).await.unwrap().is_empty(), "no channel is configured here");

    // A question, answered; a request, cancelled.
    let mut question = NewRequest::action("ask");
    question.kind = Kind::Question;
    question.question = Some("Which region?".into());
    question.options = vec!["eu".into(), "us".into()];
    let asked = agent.create_request(&question, None).await.unwrap().request;
    let answered = dana.answer(asked.id, "eu").await.unwrap();
    assert_eq!((answered.status, answered.decision.unwrap().answer.as_deref()), (Status::Answered, Some("eu")));
    let withdrawn = agent.create_request(&refund(5), None).await.unwrap().request;
    let cancelled = agent.cancel(withdrawn.id, Some("a duplicate".into())).await.unwrap();
    assert_eq!(cancelled.status, Status::Cancelled);

    // The live stream from the start: every event so far, in order; from after one of them, the rest.
    let mut stream = agent.event_stream(0);
    let mut seen: Vec<Event> = Vec::new();
    while !seen.last().is_some_and(|e| e.request_id == Some(withdrawn.id) && e.kind == EventKind::Cancelled) {
        seen.push(next_event(&mut stream).await);
    }
    assert!(seen.windows(2).all(|pair| pair[0].seq < pair[1].seq), "in order, no repeats");
    let middle = seen.len() / 2;
    let mut resumed = agent.event_stream(seen[middle].seq);
    assert_eq!(next_event(&mut resumed).await.seq, seen[middle + 1].seq, "resumes right after the event given");

    // The audit log: verified, and its checkpoints.
    let verified = admin.verify_audit().await.unwrap();
    assert!(verified.ok && verified.events >= seen.len() as u64, "{verified:?}");
    let key = CheckpointKey::generate();
    let written = signoff_server::checkpoints::write_checkpoint(app.state.store.as_ref(), &key).await.unwrap();
    let checkpoints = admin.audit_checkpoints().await.unwrap();
    assert_eq!(checkpoints.last().map(|c| c.seq), written.map(|c| c.seq));

    // The statistics of all of the above, broken down by action.
    let query = StatsQuery { since: Some("1h".into()), by: Some(GroupBy::Action), ..StatsQuery::default() };
    let stats = dana.stats(&query).await.unwrap();
    assert_eq!((stats.by, stats.fast_under_s), (Some(GroupBy::Action), 10));
    let broken_down: u64 = stats.breakdown.iter().map(|b| b.figures.requests).sum();
    assert!(stats.totals.requests > 0 && broken_down == stats.totals.requests, "{stats:?}");

    let metrics = admin.metrics().await.unwrap();
    assert!(metrics.contains("signoff_"), "{metrics}");
}

async fn errors_come_back_with_the_apis_codes(backend: Backend) {
    let (_db, app) = TestApp::on(backend).await;
    let agent = Client::new(&app.url, &app.agent_key).unwrap();
    fn code<T>(result: Result<T, ClientError>) -> ErrorCode {
        match result {
            Err(error @ ClientError::Api { .. }) => error.code().unwrap(),
            Err(other) => panic!("not an API error: {other}"),
            Ok(_) => panic!("succeeded"),
        }
    }
    let unknown = "0196a3c4-5e2f-7a10-8b3c-4d5e6f708192".parse().unwrap();
    assert_eq!(code(agent.request(unknown).await), ErrorCode::NotFound);
    assert_eq!(code(agent.policy().await), ErrorCode::Forbidden, "agents do not read the policy");
    assert_eq!(code(agent.verify_audit().await), ErrorCode::Forbidden);
    assert_eq!(code(agent.stats(&StatsQuery::default()).await), ErrorCode::Forbidden, "agents read no statistics");
    let admin = Client::new(&app.url, &app.admin_key).unwrap();
    assert_eq!(code(admin.on_call("finance").await), ErrorCode::NotFound);
    let soon = StatsQuery { since: Some("soon".into()), ..StatsQuery::default() };
    assert_eq!(code(admin.stats(&soon).await), ErrorCode::InvalidRequest);
    match admin.apply_policy("version: 1\nrules: [ {name: x, route: nowhere} ]\n").await {
        Err(ClientError::Api { code, details, .. }) => {
            assert_eq!(code, ErrorCode::InvalidPolicy);
            assert!(!details.is_empty(), "each problem, with its position");
        }
        other => panic!("{other:?}"),
    }
    let nobody = Client::new(&app.url, "so_agent_nope").unwrap();
    assert_eq!(code(nobody.request(unknown).await), ErrorCode::Unauthorized);
    assert_eq!(code(nobody.event_stream(0).next().await), ErrorCode::Unauthorized);
    assert!(matches!(Client::new("127.0.0.1:8700", "k"), Err(ClientError::Config(_))));
}

async fn the_readme_example_runs_with_the_approved_arguments(backend: Backend) {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let example = std::fs::read_to_string(root.join("examples/approve_refund.rs")).unwrap();
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    assert!(readme.contains(&format!("```rust\n{example}```")), "README.md shows examples/approve_refund.rs as it is");

    // `cargo test` builds the examples beside the test binaries' directory.
    let binary = std::env::current_exe().unwrap().parent().unwrap().parent().unwrap().join("examples/approve_refund");
    assert!(binary.is_file(), "no example binary at {}", binary.display());
    let (_db, app) = TestApp::on(backend).await;
    let dana = Client::new(&app.url, &app.approver_key).unwrap();
    let approving = tokio::spawn(async move {
        let mut events = dana.event_stream(0);
        let id = loop {
            let event = next_event(&mut events).await;
            if event.kind == EventKind::Routed {
                break event.request_id.unwrap();
            }
        };
        let edit = DecisionBody {
            outcome: Verdict::Approve,
            comment: None,
            reason: None,
            args: Some(json!({"order": "1042", "amount": 100})),
            standing_s: None,
        };
        dana.decide(id, &edit).await.unwrap();
        id
    });
    let run =
        tokio::process::Command::new(&binary).env("SIGNOFF_URL", &app.url).env("SIGNOFF_KEY", &app.agent_key).output();
    let output = tokio::time::timeout(Duration::from_secs(60), run).await.expect("the example ends").unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    assert_eq!(String::from_utf8_lossy(&output.stdout), "refunding with {\"amount\":100,\"order\":\"1042\"}\n");
    let id = approving.await.unwrap();
    let agent = Client::new(&app.url, &app.agent_key).unwrap();
    assert!(agent.request(id).await.unwrap().outcome.is_some_and(|o| o.ok), "the example reported its outcome");
}

async fn reviews_are_confirmed_and_flagged_through_the_client(backend: Backend) {
    let (_db, app) = TestApp::on(backend).await;
    let policy = r#"
version: 1
approvers:
  - { id: dana, name: Dana, groups: [moderators] }
groups:
  moderators: { notify: [dashboard] }
defaults: { route: moderators, timeout: 1h, on_timeout: reject }
rules:
  - name: every-removal
    when: action == "remove_comment"
    review: { sample: 1, group: moderators }
"#;
    let (agent, dana, admin) = (
        Client::new(&app.url, &app.agent_key).unwrap(),
        Client::new(&app.url, &app.approver_key).unwrap(),
        Client::new(&app.url, &app.admin_key).unwrap(),
    );
    admin.apply_policy(policy).await.unwrap();
    let mut report = NewRequest::action("remove_comment");
    report.mode = Mode::Post;
    let first = agent.create_request(&report, None).await.unwrap().request;
    let confirmed = dana.confirm(first.id, Some("right call".into())).await.unwrap();
    assert_eq!(confirmed.status, Status::Approved);
    let review = confirmed.review.unwrap();
    assert_eq!((review.verdict, review.comment.as_deref()), (ReviewVerdict::Confirmed, Some("right call")));

    let second = agent.create_request(&report, None).await.unwrap().request;
    let flag = FlagBody { reason: "not_spam".into(), comment: None, undo: true };
    let flagged = dana.flag(second.id, &flag).await.unwrap();
    let review = flagged.review.unwrap();
    assert_eq!(
        (flagged.status, review.verdict, review.undo, review.miss),
        (Status::Rejected, ReviewVerdict::Flagged, true, false)
    );
    match dana.flag(second.id, &flag).await {
        Err(error) => assert_eq!(error.code(), Some(ErrorCode::AlreadyReviewed)),
        Ok(request) => panic!("a second review: {request:?}"),
    }

    // The agent follows the flag on its event stream.
    let mut stream = agent.event_stream(0);
    loop {
        let event = next_event(&mut stream).await;
        if event.kind == EventKind::Flagged {
            assert_eq!((event.request_id, event.data["reason"].as_str()), (Some(second.id), Some("not_spam")));
            break;
        }
    }
}
