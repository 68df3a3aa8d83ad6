//! One contract, every backend: each scenario runs against SQLite and PostgreSQL on a fresh database.

use serde_json::json;
use signoff_domain::{
    Actor, Channel, DomainError, EventKind, GENESIS_HASH, HumanVerdict, NewRequest, Request, RequestId, Requester,
    Role, Status,
};
use signoff_store::{
    Change, DashboardSession, NewKey, NewRequestRecord, RequestFilter, RequestQuery, Store, StoreError, now,
};
use signoff_testkit::{Backend, TestDatabase, on_every_backend};
use std::sync::Arc;

on_every_backend!(
    create_then_read_with_its_event,
    idempotent_retry_returns_the_original,
    concurrent_duplicate_creates_make_one_request,
    concurrent_decisions_have_one_winner,
    a_refused_change_writes_nothing,
    listing_filters_and_pages_newest_first,
    keys_are_found_by_secret_and_revoked,
    updates_are_announced,
    events_form_a_hash_chain,
    a_passed_deadline_wins_over_a_late_decision,
    a_due_escalation_moves_the_request_before_a_decision,
    keys_keep_the_person_they_act_for,
    only_the_lease_holder_records_a_delivery_attempt,
    notifications_are_written_with_the_change_and_updated_after_it,
    reminders_follow_up_on_asks_once_and_never_hold_back_an_update,
    sessions_live_until_they_expire_end_or_lose_their_key,
    dashboard_lists_filter_on_decisions_rules_and_sampling,
    reply_codes_are_unique_among_a_persons_open_requests,
    a_digest_time_is_taken_once_and_asks_are_added_once,
);

fn record(new: NewRequest, key: Option<&str>) -> NewRequestRecord {
    let requester = Requester { key_id: "key_agent".into(), key_name: "bot".into(), responsible: None };
    let fingerprint = new.fingerprint();
    let request = Request::new(RequestId::new(), new, requester, now());
    let events = vec![request.created_event(&Actor::Key { role: Role::Agent, name: "bot".into() })];
    NewRequestRecord { request, idempotency_key: key.map(String::from), fingerprint, events, standing: None }
}

fn refund(amount: i64) -> NewRequest {
    let mut new = NewRequest::action("refund");
    new.args = json!({ "amount": amount });
    new
}

fn approve(approver: &str) -> HumanVerdict {
    HumanVerdict {
        approve: true,
        approver_id: signoff_testkit::person(approver),
        key_id: Some(format!("key_{approver}")),
        channel: Channel::Api,
        comment: None,
        reason: None,
        args: None,
    }
}

async fn create_then_read_with_its_event(backend: Backend) {
    let db = TestDatabase::new(backend).await;
    let store = db.open().await;
    let created = store.create_request(record(refund(10), None)).await.unwrap();
    assert!(created.created);
    let read = store.request(created.request.id).await.unwrap();
    assert_eq!(read, created.request);
    let events = store.request_events(read.id).await.unwrap();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].kind, EventKind::Created);
    assert_eq!(store.request(RequestId::new()).await, Err(StoreError::NotFound));
}

async fn idempotent_retry_returns_the_original(backend: Backend) {
    let db = TestDatabase::new(backend).await;
    let store = db.open().await;
    let first = store.create_request(record(refund(10), Some("k1"))).await.unwrap();
    let retry = store.create_request(record(refund(10), Some("k1"))).await.unwrap();
    assert!(!retry.created);
    assert_eq!(retry.request.id, first.request.id);
    let conflict = store.create_request(record(refund(11), Some("k1"))).await;
    assert_eq!(conflict.unwrap_err(), StoreError::IdempotencyConflict);
    let all = store.list_requests(RequestFilter { limit: 100, ..Default::default() }).await.unwrap();
    assert_eq!(all.len(), 1);
}

async fn concurrent_duplicate_creates_make_one_request(backend: Backend) {
    let db = TestDatabase::new(backend).await;
    let store = db.open().await;
    let tasks: Vec<_> = (0..50)
        .map(|_| {
            let store = store.clone();
            tokio::spawn(async move { store.create_request(record(refund(7), Some("same"))).await.unwrap() })
        })
        .collect();
    let mut ids = Vec::new();
    let mut created = 0;
    for task in tasks {
        let outcome = task.await.unwrap();
        created += usize::from(outcome.created);
        ids.push(outcome.request.id);
    }
    assert_eq!(created, 1);
    ids.dedup();
    assert_eq!(ids.len(), 1);
    let all = store.list_requests(RequestFilter { limit: 100, ..Default::default() }).await.unwrap();
    assert_eq!(all.len(), 1);
}

async fn concurrent_decisions_have_one_winner(backend: Backend) {
    let db = TestDatabase::new(backend).await;
    let store = db.open().await;
    let id = store.create_request(record(refund(10), None)).await.unwrap().request.id;
    let tasks: Vec<_> = (0..50)
        .map(|i| {
            let store = store.clone();
            tokio::spawn(async move {
                let verdict = approve(&format!("approver{i}"));
                store.update_request(id, Box::new(move |r| r.apply_human_verdict(verdict, now()))).await
            })
        })
        .collect();
    let mut winners = 0;
    for task in tasks {
        match task.await.unwrap() {
            Ok(_) => winners += 1,
            Err(error) => assert_eq!(error, StoreError::Domain(DomainError::AlreadyDecided("approved"))),
        }
    }
    assert_eq!(winners, 1);
    let events = store.request_events(id).await.unwrap();
    assert_eq!(events.iter().filter(|e| e.kind == EventKind::Decided).count(), 1);
}

async fn a_refused_change_writes_nothing(backend: Backend) {
    let db = TestDatabase::new(backend).await;
    let store = db.open().await;
    let id = store.create_request(record(refund(10), None)).await.unwrap().request.id;
    let mut reject = approve("dana");
    reject.approve = false;
    let refused = store.update_request(id, Box::new(move |r| r.apply_human_verdict(reject, now()))).await;
    assert_eq!(refused.unwrap_err(), StoreError::Domain(DomainError::CommentRequired));
    assert_eq!(store.request(id).await.unwrap().status, Status::Pending);
    assert_eq!(store.request_events(id).await.unwrap().len(), 1);
}

async fn listing_filters_and_pages_newest_first(backend: Backend) {
    let db = TestDatabase::new(backend).await;
    let store = db.open().await;
    let mut ids = Vec::new();
    for amount in 0..7 {
        ids.push(store.create_request(record(refund(amount), None)).await.unwrap().request.id);
    }
    store.create_request(record(NewRequest::action("delete_rows"), None)).await.unwrap();
    let decided = ids[0];
    store.update_request(decided, Box::new(|r| r.apply_human_verdict(approve("dana"), now()))).await.unwrap();

    let filter = |before| RequestFilter {
        action: Some("refund".into()),
        status: Some(Status::Pending),
        before,
        limit: 4,
        ..Default::default()
    };
    let first = store.list_requests(filter(None)).await.unwrap();
    let second = store.list_requests(filter(Some(first[3].id))).await.unwrap();
    let seen: Vec<_> = first.iter().chain(&second).map(|r| r.id).collect();
    let expected: Vec<_> = ids[1..].iter().rev().copied().collect();
    assert_eq!(seen, expected);
    let mine = RequestFilter { requested_by: Some("someone_else".into()), limit: 10, ..Default::default() };
    assert!(store.list_requests(mine).await.unwrap().is_empty());
}

async fn keys_are_found_by_secret_and_revoked(backend: Backend) {
    let db = TestDatabase::new(backend).await;
    let store = db.open().await;
    let created = store.create_key(NewKey::new("bot", Role::Agent), "test").await;
    let created = created.unwrap();
    assert!(created.webhook_secret.as_deref().unwrap().starts_with("whsec_"));
    let found = store.key_by_secret(&created.secret).await.unwrap().unwrap();
    assert_eq!(found, created.key);
    assert_eq!(store.key_by_secret("so_agent_nope").await.unwrap(), None);
    let revoked = store.revoke_key(&created.key.id, "test").await.unwrap();
    assert!(revoked.is_revoked());
    assert!(store.key_by_secret(&created.secret).await.unwrap().unwrap().is_revoked());
    assert_eq!(store.revoke_key("key_missing", "test").await.unwrap_err(), StoreError::NotFound);
    let approver_without_id = NewKey::new("x", Role::Approver);
    assert!(matches!(store.create_key(approver_without_id, "test").await, Err(StoreError::Invalid(_))));
}

async fn updates_are_announced(backend: Backend) {
    let db = TestDatabase::new(backend).await;
    let store = db.open().await;
    let other_replica: Arc<dyn Store> = db.open().await;
    let mut changes = other_replica.changes();
    let id = store.create_request(record(refund(10), None)).await.unwrap().request.id;
    store.update_request(id, Box::new(|r| r.apply_human_verdict(approve("dana"), now()))).await.unwrap();
    if backend == Backend::Sqlite {
        // SQLite is one process: the store that made the change announces it.
        changes = store.changes();
        let id2 = store.create_request(record(refund(11), None)).await.unwrap().request.id;
        store.update_request(id2, Box::new(|r| r.apply_human_verdict(approve("dana"), now()))).await.unwrap();
        for status in [Status::Pending, Status::Approved] {
            match changes.recv().await.unwrap() {
                Change::Updated(request) => assert_eq!((request.id, request.status), (id2, status)),
                other => panic!("expected the request as created, then as updated; got {other:?}"),
            }
        }
        return;
    }
    let change = tokio::time::timeout(std::time::Duration::from_secs(5), changes.recv()).await.unwrap().unwrap();
    assert_eq!(change, Change::Request(id));
}

async fn events_form_a_hash_chain(backend: Backend) {
    let db = TestDatabase::new(backend).await;
    let store = db.open().await;
    let replica = db.open().await;
    let tasks: Vec<_> = (0..20)
        .map(|i| {
            let store = if i % 2 == 0 { store.clone() } else { replica.clone() };
            tokio::spawn(async move {
                let id = store.create_request(record(refund(i), None)).await.unwrap().request.id;
                store.update_request(id, Box::new(|r| r.apply_human_verdict(approve("dana"), now()))).await.unwrap();
                id
            })
        })
        .collect();
    let mut events = Vec::new();
    for task in tasks {
        events.extend(store.request_events(task.await.unwrap()).await.unwrap());
    }
    events.sort_by_key(|e| e.seq);
    assert_eq!(events.len(), 40);
    let seqs: Vec<i64> = events.iter().map(|e| e.seq).collect();
    assert_eq!(seqs, (1..=40).collect::<Vec<_>>());
    let mut prev = GENESIS_HASH.to_string();
    for event in &events {
        assert!(event.verifies_after(&prev), "event {} breaks the chain", event.seq);
        prev = event.hash.clone();
    }
}

/// A routed request whose deadline (and, with `escalate_to`, an escalation) passed a second ago.
fn overdue(escalate_to: Option<&str>) -> NewRequestRecord {
    let mut record = record(refund(10), None);
    let past = now() - chrono::Duration::seconds(1);
    record.request.group = Some("finance".into());
    match escalate_to {
        Some(group) => {
            record.request.deadline_at = Some(now() + chrono::Duration::hours(1));
            record.request.escalations =
                vec![signoff_domain::Escalation { due_at: past, to: group.into(), fired_at: None, remind: vec![] }];
        }
        None => {
            record.request.deadline_at = Some(past);
            record.request.on_timeout = Some(signoff_domain::OnTimeout::Reject);
        }
    }
    record
}

async fn a_passed_deadline_wins_over_a_late_decision(backend: Backend) {
    let db = TestDatabase::new(backend).await;
    let store = db.open().await;
    // No timer loop runs here: the decision itself must see that the deadline passed.
    let id = store.create_request(overdue(None)).await.unwrap().request.id;
    let late = store.update_request(id, Box::new(|r| r.apply_human_verdict(approve("dana"), now()))).await;
    assert_eq!(late.unwrap_err(), StoreError::Domain(DomainError::AlreadyDecided("rejected")));
    let stored = store.request(id).await.unwrap();
    assert_eq!(stored.status, Status::Rejected, "the deadline's outcome stands");
    assert_eq!(stored.decision.unwrap().by, signoff_domain::DecidedBy::Timeout);
    let kinds: Vec<_> = store.request_events(id).await.unwrap().iter().map(|e| e.kind).collect();
    assert_eq!(kinds, [EventKind::Created, EventKind::Decided]);
}

async fn a_due_escalation_moves_the_request_before_a_decision(backend: Backend) {
    let db = TestDatabase::new(backend).await;
    let store = db.open().await;
    let id = store.create_request(overdue(Some("cfo"))).await.unwrap().request.id;
    let seen_group = store
        .update_request(
            id,
            Box::new(|r| {
                // What a decider's membership check sees: the group after the due escalation.
                let group = r.group.clone().unwrap_or_default();
                if group != "finance" {
                    return Err(DomainError::NotInGroup(group));
                }
                r.apply_human_verdict(approve("dana"), now())
            }),
        )
        .await;
    assert_eq!(seen_group.unwrap_err(), StoreError::Domain(DomainError::NotInGroup("cfo".into())));
    let stored = store.request(id).await.unwrap();
    assert_eq!((stored.status, stored.group.as_deref()), (Status::Pending, Some("cfo")), "the escalation stands");
}

async fn keys_keep_the_person_they_act_for(backend: Backend) {
    let db = TestDatabase::new(backend).await;
    let store = db.open().await;
    let person = signoff_testkit::person;
    let admin = NewKey { approver_id: Some(person("ada")), ..NewKey::new("ada-laptop", Role::Admin) };
    let admin = store.create_key(admin, "test").await.unwrap();
    assert_eq!(store.key_by_secret(&admin.secret).await.unwrap().unwrap().approver_id, Some(person("ada")));
    let agent = NewKey { owner_id: Some(person("carl")), ..NewKey::new("refund-bot", Role::Agent) };
    let agent = store.create_key(agent, "test").await.unwrap();
    let found = store.key_by_secret(&agent.secret).await.unwrap().unwrap();
    assert_eq!((found.owner_id, found.approver_id), (Some(person("carl")), None));
    for refused in [
        NewKey { approver_id: Some(person("carl")), ..NewKey::new("bot", Role::Agent) },
        NewKey { owner_id: Some(person("carl")), ..NewKey::new("ada", Role::Admin) },
        NewKey { owner_id: Some(person("carl")), ..NewKey::approver(&person("dana")) },
    ] {
        assert!(matches!(store.create_key(refused, "test").await, Err(StoreError::Invalid(_))));
    }
    // The key events carry the role and the bound person.
    let events = store.events_after(0, 100, None).await.unwrap();
    let created: Vec<_> = events.iter().filter(|e| e.kind == EventKind::KeyCreated).map(|e| &e.data).collect();
    assert_eq!((created[0]["role"].as_str(), created[0]["approver_id"].as_str()), (Some("admin"), Some("ada")));
    assert_eq!((created[1]["role"].as_str(), created[1]["owner_id"].as_str()), (Some("agent"), Some("carl")));
}

async fn only_the_lease_holder_records_a_delivery_attempt(backend: Backend) {
    let db = TestDatabase::new(backend).await;
    let store = db.open().await;
    let mut new = refund(10);
    new.callback_url = Some("https://agent.example.com/hook".into());
    let id = store.create_request(record(new, None)).await.unwrap().request.id;
    store.update_request(id, Box::new(|r| r.apply_human_verdict(approve("dana"), now()))).await.unwrap();
    let lease = std::time::Duration::from_millis(1);
    let first = store.claim_deliveries(now(), lease, 10).await.unwrap().remove(0);
    // The first worker's lease runs out; a second worker claims the same delivery.
    let later = now() + chrono::Duration::seconds(1);
    let second = store.claim_deliveries(later, lease, 10).await.unwrap().remove(0);
    assert_eq!(first.id, second.id);
    let attempt = |at| signoff_store::DeliveryAttempt {
        at,
        state: signoff_store::DeliveryState::Delivered,
        status: Some(200),
        error: None,
        elapsed_ms: 1,
        next_attempt_at: None,
    };
    assert!(!store.record_delivery_attempt(&first, attempt(later)).await.unwrap(), "the stale claim records nothing");
    assert!(store.record_delivery_attempt(&second, attempt(later)).await.unwrap());
    let attempts = store.request_events(id).await.unwrap();
    assert_eq!(attempts.iter().filter(|e| e.kind == EventKind::CallbackAttempted).count(), 1);
}

/// Asks `dana` by email whenever a request lands in a group; updates every message once it moves on; reminds when a
/// reminder fires.
struct AskDana;

impl signoff_store::NotificationPlanner for AskDana {
    fn plan(&self, before: Option<&Request>, after: &Request) -> signoff_domain::NotificationPlan {
        let routed = after.group.is_some() && before.is_none_or(|b| b.group != after.group);
        let asks = routed
            .then(|| signoff_domain::NewAsk {
                approver_id: Some(signoff_testkit::person("dana")),
                channel: Channel::Email,
                address: "dana@example.com".into(),
                group: after.group.clone().unwrap_or_default(),
            })
            .into_iter()
            .collect();
        let fired = |r: &Request| r.reminders.iter().filter(|r| r.fired_at.is_some()).count();
        let remind = before.filter(|b| fired(after) > fired(b)).and_then(|_| after.group.clone());
        signoff_domain::NotificationPlan {
            asks,
            update_sent: before.is_some_and(|b| b.status != after.status),
            remind: remind.map(|group| signoff_domain::RemindPlan { group, except: Vec::new() }),
        }
    }
}

async fn notifications_are_written_with_the_change_and_updated_after_it(backend: Backend) {
    use signoff_domain::{NotificationState, Purpose};
    use signoff_store::{NotificationAttempt, NotificationOutcome};
    let db = TestDatabase::new(backend).await;
    let store = db.open().await;
    store.set_notification_planner(Arc::new(AskDana));
    let mut routed = record(refund(10), None);
    routed.request.group = Some("finance".into());
    let id = store.create_request(routed).await.unwrap().request.id;
    let written = store.notifications(id).await.unwrap();
    assert_eq!(written.len(), 1, "the ask is written with the create");
    assert_eq!((written[0].purpose, written[0].state), (Purpose::Ask, NotificationState::Pending));

    let lease = std::time::Duration::from_secs(60);
    let ask = store.claim_notifications(now(), lease, 10).await.unwrap().remove(0);
    assert!(store.claim_notifications(now(), lease, 10).await.unwrap().is_empty(), "claimed once");
    let sent = |provider_ref: &str| NotificationAttempt {
        at: now(),
        outcome: NotificationOutcome::Sent { provider_ref: Some(provider_ref.into()) },
        elapsed_ms: 3,
    };
    assert!(store.record_notification_attempt(&ask, sent("<m1@example.com>")).await.unwrap());

    // The decision writes one update for the ask, which knows where the ask's message lives.
    store.update_request(id, Box::new(|r| r.apply_human_verdict(approve("carl"), now()))).await.unwrap();
    let update = store.claim_notifications(now(), lease, 10).await.unwrap().remove(0);
    assert_eq!(update.notification.purpose, Purpose::Update);
    assert_eq!(update.notification.updates_id.as_deref(), Some(ask.notification.id.as_str()));
    assert_eq!(update.ask, Some((NotificationState::Sent, Some("<m1@example.com>".to_string()))));
    // Not yet: looked at again later, and that is no attempt.
    let later = now() + chrono::Duration::seconds(1);
    let deferred = NotificationAttempt {
        at: now(),
        outcome: NotificationOutcome::Deferred { next_attempt_at: later },
        elapsed_ms: 0,
    };
    assert!(store.record_notification_attempt(&update, deferred).await.unwrap());
    let update = store.claim_notifications(later, lease, 10).await.unwrap().remove(0);
    let retry = NotificationAttempt {
        at: now(),
        outcome: NotificationOutcome::Retry { error: "rate limited".into(), next_attempt_at: later },
        elapsed_ms: 1,
    };
    assert!(store.record_notification_attempt(&update, retry).await.unwrap());
    assert!(!store.record_notification_attempt(&update, sent("stale")).await.unwrap(), "the lease was used up");
    let update = store.claim_notifications(later, lease, 10).await.unwrap().remove(0);
    assert!(store.record_notification_attempt(&update, sent("<m2@example.com>")).await.unwrap());

    let all = store.notifications(id).await.unwrap();
    assert_eq!(
        all.iter().map(|n| (n.purpose, n.state)).collect::<Vec<_>>(),
        [(Purpose::Ask, NotificationState::Sent), (Purpose::Update, NotificationState::Sent)]
    );
    assert_eq!((all[1].attempts, all[1].last_error.as_deref()), (2, Some("rate limited")));
    let attempts: Vec<_> = store
        .request_events(id)
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.kind == EventKind::NotificationAttempted)
        .map(|e| e.data["state"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(attempts, ["sent", "pending", "sent"], "every attempt is an event; a deferral is not");
}

async fn reminders_follow_up_on_asks_once_and_never_hold_back_an_update(backend: Backend) {
    use signoff_domain::{NotificationState, Purpose, Reminder};
    let db = TestDatabase::new(backend).await;
    let store = db.open().await;
    store.set_notification_planner(Arc::new(AskDana));
    let mut routed = record(refund(10), None);
    routed.request.group = Some("finance".into());
    routed.request.deadline_at = Some(now() + chrono::Duration::hours(1));
    let past = now() - chrono::Duration::seconds(1);
    routed.request.reminders = vec![Reminder { due_at: past, fired_at: None }; 2];
    routed.request.reminders[1].due_at = now() + chrono::Duration::milliseconds(300);
    let id = store.create_request(routed).await.unwrap().request.id;
    let ask = store.notifications(id).await.unwrap().remove(0);

    // The first reminder fires with the next change (no timer loop runs here), the second with a later one; the
    // ask is never sent (its provider is down), so only one reminder waits for it.
    store.fire_due_timers(now(), 10).await.unwrap();
    let reminders = |all: Vec<signoff_domain::Notification>| {
        all.into_iter().filter(|n| n.purpose == Purpose::Reminder).collect::<Vec<_>>()
    };
    let first = reminders(store.notifications(id).await.unwrap());
    assert_eq!(first.len(), 1, "{first:#?}");
    assert_eq!((first[0].updates_id.as_deref(), first[0].state), (Some(ask.id.as_str()), NotificationState::Pending));
    tokio::time::sleep(std::time::Duration::from_millis(400)).await;
    store.fire_due_timers(now(), 10).await.unwrap();
    let request = store.request(id).await.unwrap();
    assert!(request.reminders.iter().all(|r| r.fired_at.is_some()), "both fired: {:?}", request.reminders);
    assert_eq!(reminders(store.notifications(id).await.unwrap()).len(), 1, "one reminder waiting, not two");

    // A waiting reminder does not count as a waiting update: the decision still writes one.
    store.update_request(id, Box::new(|r| r.apply_human_verdict(approve("carl"), now()))).await.unwrap();
    let all = store.notifications(id).await.unwrap();
    assert_eq!(all.iter().filter(|n| n.purpose == Purpose::Update).count(), 1, "{all:#?}");
}

fn session(token_hash: &str, key_id: Option<&str>, ttl: chrono::Duration) -> DashboardSession {
    let created_at = now();
    DashboardSession {
        token_hash: token_hash.into(),
        person: signoff_testkit::person("dana"),
        key_id: key_id.map(String::from),
        csrf_token: format!("csrf-{token_hash}"),
        created_at,
        expires_at: created_at + ttl,
    }
}

async fn sessions_live_until_they_expire_end_or_lose_their_key(backend: Backend) {
    let db = TestDatabase::new(backend).await;
    let store = db.open().await;
    let key = store.create_key(NewKey::approver(&signoff_testkit::person("dana")), "test").await.unwrap().key;
    let hour = chrono::Duration::hours(1);
    let by_key = session("by-key", Some(&key.id), hour);
    store.create_session(&by_key).await.unwrap();
    let by_link = session("by-link", None, hour);
    store.create_session(&by_link).await.unwrap();

    assert_eq!(store.live_session("by-key", now()).await.unwrap(), Some(by_key.clone()));
    assert_eq!(store.live_session("unknown", now()).await.unwrap(), None);
    assert_eq!(store.live_session("by-key", by_key.expires_at).await.unwrap(), None, "expired at its expiry time");

    store.revoke_key(&key.id, "test").await.unwrap();
    assert_eq!(store.live_session("by-key", now()).await.unwrap(), None, "a revoked key ends its sessions");
    assert_eq!(store.live_session("by-link", now()).await.unwrap(), Some(by_link), "a keyless session stays");

    store.end_session("by-link").await.unwrap();
    assert_eq!(store.live_session("by-link", now()).await.unwrap(), None, "signed out");
    store.end_session("by-link").await.unwrap();

    let stale = session("stale", None, chrono::Duration::microseconds(1));
    store.create_session(&stale).await.unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(2)).await;
    store.create_session(&session("fresh", None, hour)).await.unwrap();
    let far_past = stale.created_at - hour;
    assert_eq!(store.live_session("stale", far_past).await.unwrap(), None, "expired sessions are dropped");
    assert!(store.live_session("fresh", now()).await.unwrap().is_some());
}

/// A request routed to `group` by the policy rule `rule`.
fn placed(group: &str, rule: &str) -> NewRequestRecord {
    let mut record = record(refund(10), None);
    record.request.group = Some(group.into());
    record.request.policy = Some(signoff_domain::PolicyMatch {
        version: 1,
        content_hash: "hash".into(),
        rule: Some(rule.into()),
        error: None,
        verdict: signoff_domain::Verdict::Approve { rule: rule.into() },
    });
    record
}

async fn dashboard_lists_filter_on_decisions_rules_and_sampling(backend: Backend) {
    let db = TestDatabase::new(backend).await;
    let store = db.open().await;
    let create = |record: NewRequestRecord| {
        let store = store.clone();
        async move { store.create_request(record).await.unwrap().request.id }
    };
    let decide = |id: RequestId, verdict: HumanVerdict| {
        let store = store.clone();
        async move { store.update_request(id, Box::new(move |r| r.apply_human_verdict(verdict, now()))).await.unwrap() }
    };
    let (lunch, taxi, ads) = (
        create(placed("finance", "expenses")).await,
        create(placed("finance", "expenses")).await,
        create(placed("marketing", "spend")).await,
    );
    decide(lunch, approve("dana")).await;
    decide(ads, HumanVerdict { approve: false, comment: Some("off brand".into()), ..approve("mo") }).await;
    let taxi_decided = decide(taxi, approve("carl")).await.decision.unwrap().at;
    let mut overdue = placed("finance", "expenses");
    overdue.request.deadline_at = Some(now() - chrono::Duration::seconds(1));
    overdue.request.on_timeout = Some(signoff_domain::OnTimeout::Fail);
    let expired = create(overdue).await;
    store.fire_due_timers(now(), 10).await.unwrap();
    let mut report = placed("moderators", "comment-removal");
    report.request.sampled = Some(true);
    let report = create(report).await;
    create(placed("moderators", "comment-removal")).await;

    let find = |query: RequestQuery| {
        let store = store.clone();
        async move {
            let found = store.find_requests(RequestQuery { limit: 10, ..query }).await.unwrap();
            found.iter().map(|r| r.id).collect::<Vec<_>>()
        }
    };
    let finished = || RequestQuery {
        statuses: vec![Status::Approved, Status::Rejected, Status::Expired, Status::Cancelled],
        ..Default::default()
    };
    assert_eq!(find(finished()).await, [expired, taxi, ads, lunch], "newest decision first");
    let second_page = store.find_requests(RequestQuery { offset: 2, limit: 2, ..finished() }).await.unwrap();
    assert_eq!(second_page.iter().map(|r| r.id).collect::<Vec<_>>(), [ads, lunch]);
    let expired_in = |group: &str| RequestQuery {
        statuses: vec![Status::Expired],
        groups: Some(vec![group.into(), "hr".into()]),
        ..Default::default()
    };
    assert_eq!(find(expired_in("finance")).await, [expired]);
    assert!(find(expired_in("marketing")).await.is_empty());
    assert_eq!(find(RequestQuery { decided_by: Some("dana".into()), ..finished() }).await, [lunch]);
    assert_eq!(find(RequestQuery { rule: Some("spend".into()), ..finished() }).await, [ads]);
    assert_eq!(find(RequestQuery { decided_from: Some(taxi_decided), ..finished() }).await, [expired, taxi]);
    assert_eq!(find(RequestQuery { decided_before: Some(taxi_decided), ..finished() }).await, [ads, lunch]);
    let sampled = RequestQuery { statuses: vec![Status::Pending], sampled: Some(true), ..Default::default() };
    assert_eq!(find(sampled).await, [report], "the unsampled report and the decided requests are not listed");
}

async fn reply_codes_are_unique_among_a_persons_open_requests(backend: Backend) {
    let db = TestDatabase::new(backend).await;
    let store = db.open().await;
    let (dana, carl) = (signoff_testkit::person("dana"), signoff_testkit::person("carl"));
    let mut ids = Vec::new();
    for amount in 0..40 {
        ids.push(store.create_request(record(refund(amount), None)).await.unwrap().request.id);
    }
    // Concurrent assignments (the notification worker sends several asks at once) never hand out one code twice.
    let tasks: Vec<_> = ids
        .iter()
        .map(|&id| {
            let (store, dana) = (store.clone(), dana.clone());
            tokio::spawn(async move { store.reply_code(&dana, id).await.unwrap() })
        })
        .collect();
    let mut codes = Vec::new();
    for task in tasks {
        codes.push(task.await.unwrap());
    }
    let distinct: std::collections::HashSet<_> = codes.iter().map(|c| c.code.clone()).collect();
    assert_eq!(distinct.len(), ids.len(), "{codes:?}");
    for (id, code) in ids.iter().zip(&codes) {
        assert_eq!(code.code.len(), 4, "{code:?}");
        assert_eq!(store.reply_code(&dana, *id).await.unwrap(), *code, "a request keeps its code");
        assert_eq!(store.reply_code_request(&dana, &code.code).await.unwrap(), Some(*id));
        assert_eq!(store.reply_link(&code.link_id).await.unwrap(), Some((dana.clone(), *id)));
        assert_eq!(store.reply_code_request(&carl, &code.code).await.unwrap(), None, "codes are per person");
    }
    assert_eq!(store.reply_link("nosuchid").await.unwrap(), None);
    // Once a request is decided, its code is released the next time the person is given one.
    let decided = ids[0];
    store.update_request(decided, Box::new(|r| r.apply_human_verdict(approve("carl"), now()))).await.unwrap();
    let fresh = store.create_request(record(refund(99), None)).await.unwrap().request.id;
    store.reply_code(&dana, fresh).await.unwrap();
    assert_eq!(store.reply_code_request(&dana, &codes[0].code).await.unwrap(), None);
    assert_eq!(store.reply_code_request(&dana, &codes[1].code).await.unwrap(), Some(ids[1]));
}

async fn a_digest_time_is_taken_once_and_asks_are_added_once(backend: Backend) {
    use signoff_domain::{NewAsk, Purpose};
    use signoff_store::NewDigest;
    let db = TestDatabase::new(backend).await;
    let (store, replica) = (db.open().await, db.open().await);
    let first = store.create_request(record(refund(10), None)).await.unwrap().request.id;
    let second = store.create_request(record(refund(20), None)).await.unwrap().request.id;
    let due = now();
    let next = due + chrono::Duration::hours(1);
    assert_eq!(store.digest_due_at("finance").await.unwrap(), None);
    store.schedule_digest("finance", due).await.unwrap();
    store.schedule_digest("finance", next).await.unwrap();
    assert_eq!(store.digest_due_at("finance").await.unwrap(), Some(due), "the first schedule stands");

    let ask = NewAsk {
        approver_id: Some(signoff_testkit::person("dana")),
        channel: Channel::Email,
        address: "dana@example.com".into(),
        group: "finance".into(),
    };
    let digest = NewDigest { ask: ask.clone(), requests: vec![first, second] };
    // Two replicas take the same digest time at once: one wins and writes it.
    let (a, b) = tokio::join!(
        store.claim_digest("finance", due, next, vec![digest.clone()]),
        replica.claim_digest("finance", due, next, vec![digest.clone()]),
    );
    assert_eq!([a.unwrap(), b.unwrap()].iter().filter(|won| **won).count(), 1, "taken once");
    assert_eq!(store.digest_due_at("finance").await.unwrap(), Some(next));
    assert!(!store.claim_digest("finance", due, next, vec![digest]).await.unwrap(), "not again after a restart");
    let filed = store.notifications(first).await.unwrap();
    assert_eq!(filed.iter().map(|n| n.purpose).collect::<Vec<_>>(), [Purpose::Digest]);
    let claimed = store.claim_notifications(now(), std::time::Duration::from_secs(60), 10).await.unwrap();
    assert_eq!(claimed.len(), 1);
    assert_eq!(claimed[0].digest_of, [first, second], "the digest lists both, oldest first");

    // Asks added outside a change are written once per addressee, channel and group, and only while pending.
    assert_eq!(store.add_asks(second, vec![ask.clone()]).await.unwrap(), 1);
    let (a, b) = tokio::join!(store.add_asks(second, vec![ask.clone()]), replica.add_asks(second, vec![ask.clone()]));
    assert_eq!((a.unwrap(), b.unwrap()), (0, 0));
    let asks = store.notifications(second).await.unwrap();
    assert_eq!(asks.iter().filter(|n| n.purpose == Purpose::Ask).count(), 1, "{asks:#?}");
    store.update_request(first, Box::new(|r| r.cancel("key_agent", None, now()))).await.unwrap();
    assert_eq!(store.add_asks(first, vec![ask]).await.unwrap(), 0, "no ask for a request no longer pending");
}
