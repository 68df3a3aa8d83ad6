//! Long-poll waiters: each `wait` call parks here until its request changes. They are woken from the
//! decision path (the store's change notices, in the task that committed the change), never by polling the database.

use signoff_domain::{Request, RequestId};
use signoff_store::{Change, ChangeListener};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tokio::sync::{oneshot, watch};

/// The waiter hub. Cheap to clone.
#[derive(Clone)]
pub struct Waiters {
    inner: Arc<Inner>,
}

/// Wakes one parked waiter, with the request's new state when the notice carried it.
type WakeSender = oneshot::Sender<Option<Arc<Request>>>;

struct Inner {
    parked: Mutex<HashMap<RequestId, Vec<WakeSender>>>,
    shutdown: watch::Sender<bool>,
}

/// Why a parked waiter woke up.
#[derive(Debug, Clone, PartialEq)]
pub enum Wake {
    /// The request changed: here is its new state, or `None` when it must be read again.
    Changed(Option<Arc<Request>>),
    /// The server is shutting down: answer now.
    ShuttingDown,
}

impl Waiters {
    fn new() -> Self {
        let (shutdown, _) = watch::channel(false);
        Waiters { inner: Arc::new(Inner { parked: Mutex::new(HashMap::new()), shutdown }) }
    }

    /// Starts the hub as a listener of a store's changes: the task that commits a change (for SQLite, the one
    /// that wrote it) wakes its waiters before it answers its own caller, so a woken waiter is scheduled next on
    /// that worker instead of behind a hop through a hub task of its own. No notice can be missed (no
    /// broadcast to lag behind).
    /// `listen` registers the hub's listener (`|listener| store.listen(listener)`).
    pub fn listening(listen: impl FnOnce(ChangeListener)) -> Self {
        let waiters = Waiters::new();
        let hub = Arc::downgrade(&waiters.inner);
        listen(Arc::new(move |change| {
            if let Some(inner) = hub.upgrade() {
                Waiters { inner }.notice(change);
            }
        }));
        waiters
    }

    /// Wakes the waiters a change concerns.
    fn notice(&self, change: &Change) {
        match change {
            Change::Request(id) => self.wake(*id, None),
            Change::Updated(request) => self.wake(request.id, Some(request.clone())),
            Change::Unknown => self.wake_all(),
        }
    }

    /// Parks until `id` changes, the server shuts down, or the returned future is dropped.
    pub fn park(&self, id: RequestId) -> impl Future<Output = Wake> + Send + 'static {
        let (tx, rx) = oneshot::channel();
        self.inner.parked.lock().expect("waiters").entry(id).or_default().push(tx);
        let mut shutdown = self.inner.shutdown.subscribe();
        async move {
            if *shutdown.borrow_and_update() {
                return Wake::ShuttingDown;
            }
            tokio::select! {
                changed = rx => Wake::Changed(changed.unwrap_or(None)),
                _ = shutdown.changed() => Wake::ShuttingDown,
            }
        }
    }

    /// A guard that, when dropped, clears what waiters that gave up on `id` left parked.
    pub fn unpark_on_drop(&self, id: RequestId) -> Unpark {
        Unpark { waiters: self.clone(), id }
    }

    /// Drops the parked entries of waiters that gave up on `id`.
    fn forget(&self, id: RequestId) {
        let mut parked = self.inner.parked.lock().expect("waiters");
        if let Some(senders) = parked.get_mut(&id) {
            senders.retain(|sender| !sender.is_closed());
            if senders.is_empty() {
                parked.remove(&id);
            }
        }
    }

    /// How many waiters are parked (for metrics and tests).
    pub fn parked(&self) -> usize {
        self.inner.parked.lock().expect("waiters").values().map(Vec::len).sum()
    }

    /// Turns true when the server starts shutting down.
    pub fn shutdown_signal(&self) -> watch::Receiver<bool> {
        self.inner.shutdown.subscribe()
    }

    pub fn is_shutting_down(&self) -> bool {
        *self.inner.shutdown.borrow()
    }

    /// Answers every waiter now and every later one at once.
    pub fn shut_down(&self) {
        self.inner.shutdown.send_replace(true);
    }

    fn wake(&self, id: RequestId, request: Option<Arc<Request>>) {
        let senders = self.inner.parked.lock().expect("waiters").remove(&id);
        for sender in senders.into_iter().flatten() {
            let _ = sender.send(request.clone());
        }
    }

    fn wake_all(&self) {
        let all = std::mem::take(&mut *self.inner.parked.lock().expect("waiters"));
        for sender in all.into_values().flatten() {
            let _ = sender.send(None);
        }
    }
}

/// Clears a call's parked entries when the call ends, however it ends.
pub struct Unpark {
    waiters: Waiters,
    id: RequestId,
}

impl Drop for Unpark {
    fn drop(&mut self) {
        self.waiters.forget(self.id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn hub() -> (signoff_store::ChangeFeed, Waiters) {
        let changes = signoff_store::ChangeFeed::new(16);
        let waiters = Waiters::listening(|listener| changes.listen(listener));
        (changes, waiters)
    }

    async fn within<F: Future>(future: F) -> F::Output {
        tokio::time::timeout(Duration::from_secs(5), future).await.expect("woken in time")
    }

    #[tokio::test]
    async fn a_change_announced_after_registering_but_before_the_first_poll_still_wakes() {
        let (changes, waiters) = hub();
        let id = RequestId::new();
        // Registered by `park` itself: a decision committed between this and the caller's read is not lost.
        let parked = waiters.park(id);
        assert_eq!(waiters.parked(), 1);
        changes.send(Change::Request(id));
        assert_eq!(within(parked).await, Wake::Changed(None));
        assert_eq!(waiters.parked(), 0);
    }

    #[tokio::test]
    async fn every_waiter_on_one_request_gets_the_committed_state() {
        let (changes, waiters) = hub();
        let (id, other) = (RequestId::new(), RequestId::new());
        let parked: Vec<_> = (0..200).map(|_| tokio::spawn(waiters.park(id))).collect();
        let bystander = waiters.park(other);
        assert_eq!(waiters.parked(), 201);
        let state = Arc::new(Request::new(
            id,
            signoff_domain::NewRequest::action("refund"),
            signoff_domain::Requester { key_id: "k1".into(), key_name: "agent".into(), responsible: None },
            chrono::Utc::now(),
        ));
        changes.send(Change::Updated(state.clone()));
        for waiter in parked {
            match within(waiter).await.unwrap() {
                Wake::Changed(Some(woken)) => assert!(Arc::ptr_eq(&woken, &state), "handed over, not re-read"),
                other => panic!("woke with {other:?}"),
            }
        }
        assert_eq!(waiters.parked(), 1, "only the bystander is left");
        drop(bystander);
        waiters.forget(other);
        assert_eq!(waiters.parked(), 0);
    }

    #[tokio::test]
    async fn a_waiter_that_gives_up_leaves_nothing_parked() {
        let (_changes, waiters) = hub();
        let id = RequestId::new();
        let others: Vec<_> = (0..3).map(|_| waiters.park(id)).collect();
        {
            let _unpark = waiters.unpark_on_drop(id);
            let parked = waiters.park(id);
            assert!(tokio::time::timeout(Duration::from_millis(20), parked).await.is_err(), "nothing changed");
        }
        assert_eq!(waiters.parked(), 3, "the others on the same request stay parked");
        drop(others);
        waiters.forget(id);
        assert_eq!(waiters.parked(), 0);
    }

    #[tokio::test]
    async fn a_listening_hub_wakes_the_waiters_in_the_announcing_task() {
        let feed = signoff_store::ChangeFeed::new(16);
        let waiters = Waiters::listening(|listener| feed.listen(listener));
        let (id, other) = (RequestId::new(), RequestId::new());
        let parked = waiters.park(id);
        let bystander = waiters.park(other);
        let mut subscriber = feed.subscribe();
        feed.send(Change::Request(id));
        // Woken before `send` returned: ready on its first poll, with no other task run in between.
        assert_eq!(futures::FutureExt::now_or_never(parked), Some(Wake::Changed(None)));
        assert_eq!(waiters.parked(), 1, "only the bystander is left");
        assert_eq!(subscriber.try_recv().unwrap(), Change::Request(id), "subscribers still hear of it");
        feed.send(Change::Unknown);
        assert_eq!(futures::FutureExt::now_or_never(bystander), Some(Wake::Changed(None)));
        assert_eq!(waiters.parked(), 0);
        drop(waiters);
        feed.send(Change::Request(id));
    }

    #[tokio::test]
    async fn missed_notices_wake_everyone_and_shutdown_answers_now_and_later() {
        let (changes, waiters) = hub();
        let parked: Vec<_> = (0..5).map(|_| tokio::spawn(waiters.park(RequestId::new()))).collect();
        changes.send(Change::Unknown);
        for waiter in parked {
            assert_eq!(within(waiter).await.unwrap(), Wake::Changed(None));
        }
        let parked = tokio::spawn(waiters.park(RequestId::new()));
        tokio::task::yield_now().await;
        waiters.shut_down();
        assert_eq!(within(parked).await.unwrap(), Wake::ShuttingDown);
        assert_eq!(within(waiters.park(RequestId::new())).await, Wake::ShuttingDown);
    }
}
