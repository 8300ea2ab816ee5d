//! Independent load jobs (the embedding table, each layer, the head) on several threads, with
//! the errors a serial loop would give and progress reported on the calling thread.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;

/// Runs jobs `0..count` on up to `threads` scoped threads, starting them in `order` (a
/// permutation of `0..count`: the biggest first balances best). `finished(j)` is called on the
/// calling thread as each job ends. Returns the results in job order, or the error of the
/// lowest-numbered failing job, which is the one a loop over `0..count` would have met first:
/// a job is skipped only when a lower-numbered one has failed, so every lower job runs.
pub(crate) fn run_jobs<T: Send, E: Send>(
    count: usize,
    order: &[usize],
    threads: usize,
    job: impl Fn(usize) -> Result<T, E> + Sync,
    mut finished: impl FnMut(usize),
) -> Result<Vec<T>, E> {
    debug_assert_eq!(order.len(), count);
    let next = AtomicUsize::new(0);
    let first_failed = AtomicUsize::new(usize::MAX);
    let mut results: Vec<Option<Result<T, E>>> = (0..count).map(|_| None).collect();
    std::thread::scope(|s| {
        let (tx, rx) = mpsc::channel::<(usize, Option<Result<T, E>>)>();
        for _ in 0..threads.clamp(1, count.max(1)) {
            let (tx, next, first_failed, job) = (tx.clone(), &next, &first_failed, &job);
            s.spawn(move || {
                while let Some(&j) = order.get(next.fetch_add(1, Ordering::Relaxed)) {
                    let result = (j < first_failed.load(Ordering::Relaxed)).then(|| job(j));
                    if let Some(Err(_)) = result {
                        first_failed.fetch_min(j, Ordering::Relaxed);
                    }
                    if tx.send((j, result)).is_err() {
                        break;
                    }
                }
            });
        }
        drop(tx);
        // Ends when every worker has finished (or one panicked: the scope re-raises it).
        for (j, result) in rx {
            if result.is_some() {
                finished(j);
            }
            results[j] = result;
        }
    });
    let mut out = Vec::with_capacity(count);
    for result in results {
        match result {
            Some(Ok(t)) => out.push(t),
            Some(Err(e)) => return Err(e),
            // Skipped after a lower job failed: that error comes first.
            None => unreachable!("a job is skipped only after a lower-numbered job failed"),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn results_come_back_in_job_order_and_every_job_reports() {
        for threads in [1, 3, 16] {
            let order: Vec<usize> = (0..10).rev().collect();
            let mut seen = Vec::new();
            let out = run_jobs(10, &order, threads, |j| Ok::<_, ()>(j * j), |j| seen.push(j)).unwrap();
            assert_eq!(out, (0..10).map(|j| j * j).collect::<Vec<_>>());
            seen.sort();
            assert_eq!(seen, (0..10).collect::<Vec<_>>());
        }
        assert!(run_jobs(0, &[], 4, |_| Ok::<(), ()>(()), |_| {}).unwrap().is_empty());
    }

    #[test]
    fn the_lowest_failing_job_is_the_error_whatever_the_schedule() {
        for threads in [1, 2, 8] {
            // Started from the end: job 7 fails early, yet job 3 (also failing) must win.
            let order: Vec<usize> = (0..10).rev().collect();
            let err = run_jobs(10, &order, threads, |j| if j == 3 || j == 7 { Err(j) } else { Ok(j) }, |_| {});
            assert_eq!(err, Err(3), "{threads} threads");
        }
    }
}
