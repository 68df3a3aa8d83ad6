//! The PostgreSQL chain: appends from several writers, each its transaction's last statement under the chain lock,
//! keep one chain whose `seq` order is commit order, so a reader tailing by `seq` never skips an event.

use serde_json::json;
use signoff_domain::{Actor, ChainVerifier, Event, NewRequest, Request, RequestId, Requester, Role};
use signoff_store::{NewRequestRecord, Store, now};
use signoff_testkit::{Backend, TestDatabase};
use sqlx::Connection;
use std::sync::Arc;
use std::time::Duration;

fn record(args: serde_json::Value) -> NewRequestRecord {
    let mut new = NewRequest::action("refund");
    new.args = args;
    let requester = Requester { key_id: "key_agent".into(), key_name: "bot".into(), responsible: None };
    let fingerprint = new.fingerprint();
    let request = Request::new(RequestId::new(), new, requester, now());
    let events = vec![request.created_event(&Actor::Key { role: Role::Agent, name: "bot".into() })];
    NewRequestRecord { request, idempotency_key: None, fingerprint, events, standing: None }
}

async fn all_events(store: &dyn Store) -> Vec<Event> {
    let (mut events, mut after) = (Vec::new(), 0);
    loop {
        let page = store.events_after(after, 1000, None).await.unwrap();
        let Some(last) = page.last() else { return events };
        after = last.seq;
        events.extend(page);
    }
}

fn assert_one_chain(events: &[Event]) {
    let mut verifier = ChainVerifier::from_genesis();
    for event in events {
        verifier.check(event).unwrap_or_else(|broken| panic!("{broken}"));
    }
}

/// Appends one event from a raw transaction, as the store's last statement does.
async fn append_one(conn: &mut sqlx::PgConnection, n: i64) -> i64 {
    let at = now();
    let data = json!({ "n": n });
    let canonical =
        signoff_domain::canonical_before_seq(None, signoff_domain::EventKind::KeyCreated, "test", &data, None, at);
    sqlx::query_scalar("SELECT signoff_append_events($1, $2, $3, $4, $5, $6, $7)")
        .bind(vec![None::<String>])
        .bind(vec!["key_created"])
        .bind(vec!["test"])
        .bind(vec![data.to_string()])
        .bind(vec![at.timestamp_micros()])
        .bind(vec![None::<String>])
        .bind(vec![canonical])
        .fetch_one(conn)
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tailing_reader_skips_nothing_when_writers_commit_out_of_order() {
    let db = TestDatabase::new(Backend::Postgres).await;
    let store = db.open().await;
    store.create_request(record(json!({}))).await.unwrap();
    let mut seen: Vec<Event> = store.events_after(0, 100, None).await.unwrap();
    assert_eq!(seen.len(), 1);

    // The first writer starts and writes first; the second starts later but reaches its end first.
    let mut first = sqlx::PgConnection::connect(&db.url).await.unwrap();
    let mut second = sqlx::PgConnection::connect(&db.url).await.unwrap();
    sqlx::query("BEGIN").execute(&mut first).await.unwrap();
    sqlx::query("INSERT INTO used_links (nonce, request_id, used_at) VALUES ('first', 'x', 0)")
        .execute(&mut first)
        .await
        .unwrap();
    sqlx::query("BEGIN").execute(&mut second).await.unwrap();
    sqlx::query("INSERT INTO used_links (nonce, request_id, used_at) VALUES ('second', 'x', 0)")
        .execute(&mut second)
        .await
        .unwrap();
    assert_eq!(append_one(&mut second, 2).await, 2, "the second writer's event takes the next place");
    let first_append = tokio::spawn(async move {
        let seq = append_one(&mut first, 1).await;
        (seq, first)
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!first_append.is_finished(), "the first writer waits for the chain lock the second holds to commit");
    assert!(store.events_after(1, 100, None).await.unwrap().is_empty(), "nothing is committed yet");

    sqlx::query("COMMIT").execute(&mut second).await.unwrap();
    let (seq, mut first) = first_append.await.unwrap();
    assert_eq!(seq, 3, "the first writer's event comes after the one committed before it");
    // The reader moves past the second writer's event while the first writer has not committed…
    let page = store.events_after(seen.last().unwrap().seq, 100, None).await.unwrap();
    assert_eq!(page.iter().map(|e| e.seq).collect::<Vec<_>>(), [2]);
    seen.extend(page);
    sqlx::query("COMMIT").execute(&mut first).await.unwrap();
    // …and still finds the first writer's event after its cursor.
    let page = store.events_after(seen.last().unwrap().seq, 100, None).await.unwrap();
    assert_eq!(page.iter().map(|e| e.seq).collect::<Vec<_>>(), [3]);
    seen.extend(page);
    assert_eq!(seen, all_events(store.as_ref()).await);
    assert_one_chain(&seen);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_writing_at_once_make_one_chain_a_tailing_reader_sees_whole() {
    const PER_REPLICA: usize = 150;
    let db = TestDatabase::new(Backend::Postgres).await;
    let replicas: Vec<Arc<dyn Store>> = vec![db.open().await, db.open().await];
    let reader = db.open().await;
    let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let tail = {
        let done = done.clone();
        tokio::spawn(async move {
            let mut seen: Vec<Event> = Vec::new();
            loop {
                let finished = done.load(std::sync::atomic::Ordering::SeqCst);
                let after = seen.last().map_or(0, |e| e.seq);
                let page = reader.events_after(after, 50, None).await.unwrap();
                let empty = page.is_empty();
                seen.extend(page);
                if finished && empty {
                    return seen;
                }
            }
        })
    };
    let writers: Vec<_> = replicas
        .iter()
        .flat_map(|store| {
            (0..PER_REPLICA).map(move |i| {
                let store = store.clone();
                tokio::spawn(async move {
                    let id = store.create_request(record(json!({ "i": i }))).await.unwrap().request.id;
                    store.update_request(id, Box::new(|r| r.cancel("key_agent", None, now()))).await.unwrap();
                })
            })
        })
        .collect();
    for writer in writers {
        writer.await.unwrap();
    }
    done.store(true, std::sync::atomic::Ordering::SeqCst);
    let seen = tail.await.unwrap();
    let stored = all_events(replicas[0].as_ref()).await;
    assert_eq!(stored.len(), 2 * 2 * PER_REPLICA, "a created and a cancelled event per request");
    assert_eq!(seen, stored, "the tailing reader saw every event once, in seq order");
    assert!(stored.iter().enumerate().all(|(i, e)| e.seq == i as i64 + 1), "seqs without gaps");
    assert_one_chain(&stored);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_hashed_in_the_database_verify_whatever_their_text() {
    let db = TestDatabase::new(Backend::Postgres).await;
    let store = db.open().await;
    let awkward = json!({
        "note": "ünïcode 𝄞 \u{0} \u{1f} \"quoted\" back\\slash </script> \u{2028}",
        "float": 0.1, "big": i64::MAX, "negative": -1.5e300, "nested": [[{}], {"z": null, "a": true}],
    });
    store.create_request(record(awkward)).await.unwrap();
    store.create_request(record(json!({ "emoji": "👩‍💻" }))).await.unwrap();
    let events = all_events(store.as_ref()).await;
    assert_eq!(events.len(), 2);
    assert_one_chain(&events);
}
