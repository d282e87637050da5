//! Request coalescing for hot paths: callers queue a request and wait for its answer while one
//! task takes everything queued and handles it together (one transaction for status pushes, one
//! query for token lookups). Under load a batch holds what arrived while the previous one was
//! handled; at rest a request waits for nobody.
//!
//! Without a running batcher (tools, tests of one module, shutdown) [`Batcher::submit`] gives the
//! request back and the caller handles it alone.

use std::future::Future;
use std::sync::Mutex;

use tokio::sync::{mpsc, oneshot, watch};

/// A queued request and where its answer goes.
pub type Pending<Req, Resp> = (Req, oneshot::Sender<Resp>);

/// Requests waiting at most; beyond that a request is handled by its caller.
const QUEUE: usize = 8_192;

/// The queue of one hot path.
pub struct Batcher<Req, Resp> {
    queue: Mutex<Option<mpsc::Sender<Pending<Req, Resp>>>>,
}

impl<Req, Resp> Default for Batcher<Req, Resp> {
    fn default() -> Self {
        Self { queue: Mutex::new(None) }
    }
}

impl<Req: Clone, Resp> Batcher<Req, Resp> {
    /// Whether a batcher runs (requests are queued).
    pub fn running(&self) -> bool {
        self.queue.lock().unwrap_or_else(std::sync::PoisonError::into_inner).is_some()
    }

    /// Queues `request` and waits for its answer. `Err(request)` when it could not be queued or
    /// the batcher stopped before answering (shutdown): the caller handles it alone, which must be
    /// harmless if the batcher did handle it (requests are idempotent).
    pub async fn submit(&self, request: Req) -> Result<Resp, Req> {
        let queue = self.queue.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone();
        let Some(queue) = queue else { return Err(request) };
        let (reply, answer) = oneshot::channel();
        if queue.try_send((request.clone(), reply)).is_err() {
            return Err(request);
        }
        answer.await.map_err(|_| request)
    }

    /// Hands queued requests to `handle`, at most `max` at a time, until `shutdown`. `handle`
    /// answers each request through its sender; it may spawn the work and return early to let the
    /// next batch start (and then bounds its own concurrency).
    pub async fn run<F, Fut>(&self, max: usize, mut shutdown: watch::Receiver<bool>, mut handle: F)
    where
        F: FnMut(Vec<Pending<Req, Resp>>) -> Fut,
        Fut: Future<Output = ()>,
    {
        let (queue, mut queued) = mpsc::channel(QUEUE);
        *self.queue.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = Some(queue);
        let mut batch = Vec::with_capacity(max);
        loop {
            tokio::select! {
                count = queued.recv_many(&mut batch, max) => if count == 0 { break },
                _ = shutdown.changed() => break,
            }
            handle(std::mem::take(&mut batch)).await;
        }
        // Callers still queued get their request back (their reply sender is dropped here).
        self.queue.lock().unwrap_or_else(std::sync::PoisonError::into_inner).take();
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn requests_are_answered_in_batches_and_given_back_without_a_batcher() {
        let batcher: Arc<Batcher<u32, u32>> = Arc::default();
        assert_eq!(batcher.submit(7).await, Err(7), "no batcher: the caller handles it");

        let (stop, stopped) = watch::channel(false);
        let batches = Arc::new(AtomicUsize::new(0));
        let runner = {
            let (batcher, batches) = (batcher.clone(), batches.clone());
            tokio::spawn(async move {
                batcher
                    .run(64, stopped, |pending| {
                        batches.fetch_add(1, Ordering::SeqCst);
                        async move {
                            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                            for (n, reply) in pending {
                                let _ = reply.send(n * 2);
                            }
                        }
                    })
                    .await;
            })
        };
        while !batcher.running() {
            tokio::task::yield_now().await;
        }
        let asked: Vec<_> = (0..100u32)
            .map(|n| {
                let batcher = batcher.clone();
                tokio::spawn(async move { (n, batcher.submit(n).await) })
            })
            .collect();
        for ask in asked {
            let (n, answer) = ask.await.unwrap();
            assert_eq!(answer, Ok(n * 2));
        }
        let count = batches.load(Ordering::SeqCst);
        assert!((2..100).contains(&count), "100 requests, 64 at most per batch, queued while one runs: {count}");

        stop.send(true).unwrap();
        runner.await.unwrap();
        assert!(!batcher.running());
        assert_eq!(batcher.submit(9).await, Err(9), "after shutdown the caller handles it again");
    }
}
