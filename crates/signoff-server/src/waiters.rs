//! Long-poll waiters: each `wait` call parks here until its request changes. They are woken from the
//! decision path (the store's change notices), never by polling the database.

use signoff_domain::RequestId;
use signoff_store::Change;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tokio::sync::{broadcast, oneshot, watch};

/// The waiter hub. Cheap to clone.
#[derive(Clone)]
pub struct Waiters {
    inner: Arc<Inner>,
}

struct Inner {
    parked: Mutex<HashMap<RequestId, Vec<oneshot::Sender<()>>>>,
    shutdown: watch::Sender<bool>,
}

/// Why a parked waiter woke up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wake {
    /// The request (may have) changed: read it again.
    Changed,
    /// The server is shutting down: answer now.
    ShuttingDown,
}

impl Waiters {
    /// Starts the hub, fed by a store's change notices.
    pub fn start(mut changes: broadcast::Receiver<Change>) -> Self {
        let (shutdown, _) = watch::channel(false);
        let waiters = Waiters { inner: Arc::new(Inner { parked: Mutex::new(HashMap::new()), shutdown }) };
        let hub = waiters.clone();
        tokio::spawn(async move {
            loop {
                match changes.recv().await {
                    Ok(Change::Request(id)) => hub.wake(id),
                    Ok(Change::Unknown) | Err(broadcast::error::RecvError::Lagged(_)) => hub.wake_all(),
                    Err(broadcast::error::RecvError::Closed) => return,
                }
            }
        });
        waiters
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
                _ = rx => Wake::Changed,
                _ = shutdown.changed() => Wake::ShuttingDown,
            }
        }
    }

    /// Drops the parked entries of waiters that gave up on `id`.
    pub fn forget(&self, id: RequestId) {
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

    pub fn is_shutting_down(&self) -> bool {
        *self.inner.shutdown.borrow()
    }

    /// Answers every waiter now and every later one at once.
    pub fn shut_down(&self) {
        self.inner.shutdown.send_replace(true);
    }

    fn wake(&self, id: RequestId) {
        let senders = self.inner.parked.lock().expect("waiters").remove(&id);
        for sender in senders.into_iter().flatten() {
            let _ = sender.send(());
        }
    }

    fn wake_all(&self) {
        let all = std::mem::take(&mut *self.inner.parked.lock().expect("waiters"));
        for sender in all.into_values().flatten() {
            let _ = sender.send(());
        }
    }
}
