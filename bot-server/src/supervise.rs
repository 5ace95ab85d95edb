//! Background tasks that come back: a task that panics or ends before shutdown is
//! logged, counted and started again, so one bad answer from outside cannot switch
//! off the courier, paging or the monitor for good.

use std::future::Future;
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::metrics::Metrics;

/// The first wait before a restart; doubled on each quick failure up to [`MAX_WAIT`].
const FIRST_WAIT: Duration = Duration::from_millis(200);
/// The longest wait before a restart.
const MAX_WAIT: Duration = Duration::from_secs(30);
/// A task that ran this long before failing starts again after [`FIRST_WAIT`].
const STABLE: Duration = Duration::from_secs(60);

/// A task that ends with whoever holds it: aborting the supervisor aborts the task.
struct Owned(JoinHandle<()>);

impl Drop for Owned {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Runs `make()`'s task as `name` until `stop` turns true, starting it again whenever
/// it panics or returns before then.
pub fn supervised<F, Fut>(
    name: &'static str,
    metrics: Metrics,
    stop: watch::Receiver<bool>,
    make: F,
) -> JoinHandle<()>
where
    F: Fn() -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    tokio::spawn(async move {
        let mut stop = stop;
        let mut wait = FIRST_WAIT;
        loop {
            let started = tokio::time::Instant::now();
            let mut task = Owned(tokio::spawn(make()));
            let ended = tokio::select! {
                ended = &mut task.0 => Some(ended),
                _ = stop.wait_for(|s| *s) => None,
            };
            let Some(ended) = ended else {
                // Stopping: the task sees `stop` itself; give it its own end.
                let _ = (&mut task.0).await;
                return;
            };
            if *stop.borrow() {
                return;
            }
            match ended {
                Ok(()) => tracing::error!(
                    task = name,
                    "a background task ended on its own; starting it again"
                ),
                Err(e) if e.is_panic() => {
                    tracing::error!(task = name, "a background task panicked; starting it again")
                }
                Err(_) => tracing::error!(
                    task = name,
                    "a background task was cancelled; starting it again"
                ),
            }
            metrics.task_restarted(name);
            if started.elapsed() >= STABLE {
                wait = FIRST_WAIT;
            }
            let stopping = tokio::select! {
                () = tokio::time::sleep(wait) => false,
                _ = stop.wait_for(|s| *s) => true,
            };
            if stopping {
                return;
            }
            wait = (wait * 2).min(MAX_WAIT);
        }
    })
}

/// Runs `work`, then waits `period()`, over and over until `stop` turns true;
/// supervised as `name`.
pub fn every<W, Fut, P>(
    name: &'static str,
    metrics: Metrics,
    stop: &watch::Sender<bool>,
    period: P,
    work: W,
) -> JoinHandle<()>
where
    W: Fn() -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = ()> + Send + 'static,
    P: Fn() -> Duration + Clone + Send + Sync + 'static,
{
    let stopped = stop.subscribe();
    supervised(name, metrics, stop.subscribe(), move || {
        let (work, period, mut stopped) = (work.clone(), period.clone(), stopped.clone());
        async move {
            loop {
                work().await;
                tokio::select! {
                    _ = stopped.wait_for(|s| *s) => return,
                    () = tokio::time::sleep(period()) => {}
                }
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::sync::Arc;

    #[tokio::test]
    async fn a_panicking_task_is_started_again_and_counted() {
        let metrics = Metrics::new();
        let (stop, stopped) = watch::channel(false);
        let runs = Arc::new(AtomicU32::new(0));
        let handle = supervised("flaky", metrics.clone(), stopped, {
            let runs = runs.clone();
            move || {
                let runs = runs.clone();
                async move {
                    if runs.fetch_add(1, Ordering::SeqCst) < 2 {
                        panic!("a hostile answer");
                    }
                    std::future::pending::<()>().await;
                }
            }
        });
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        while runs.load(Ordering::SeqCst) < 3 {
            assert!(tokio::time::Instant::now() < deadline, "started again");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert!(
            metrics.render().contains("task=\"flaky\"} 2"),
            "{}",
            metrics.render()
        );
        let _ = stop.send(true);
        handle.abort();
    }
}
