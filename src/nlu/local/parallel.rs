//! Runs independent training jobs on the available cores (std threads only).

use std::sync::Mutex;

pub type Job<'a, T> = Box<dyn FnOnce() -> T + Send + 'a>;

/// Runs every job and returns the results in job order.
pub fn run<'a, T: Send>(jobs: Vec<Job<'a, T>>) -> Vec<T> {
    let workers = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
        .clamp(1, 4)
        .min(jobs.len().max(1));
    let count = jobs.len();
    let queue: Mutex<Vec<(usize, Job<'a, T>)>> =
        Mutex::new(jobs.into_iter().enumerate().rev().collect());
    let results: Mutex<Vec<Option<T>>> = Mutex::new((0..count).map(|_| None).collect());
    let work = || loop {
        let next = match queue.lock() {
            Ok(mut q) => q.pop(),
            Err(poisoned) => poisoned.into_inner().pop(),
        };
        let Some((i, job)) = next else { break };
        let out = job();
        match results.lock() {
            Ok(mut r) => r[i] = Some(out),
            Err(poisoned) => poisoned.into_inner()[i] = Some(out),
        }
    };
    std::thread::scope(|s| {
        for _ in 1..workers {
            s.spawn(work);
        }
        work();
    });
    let results = match results.into_inner() {
        Ok(r) => r,
        Err(poisoned) => poisoned.into_inner(),
    };
    results.into_iter().flatten().collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn keeps_job_order() {
        let jobs: Vec<super::Job<'_, usize>> = (0..5usize)
            .map(|i| Box::new(move || i * 10) as super::Job<'_, usize>)
            .collect();
        assert_eq!(super::run(jobs), [0, 10, 20, 30, 40]);
    }
}
