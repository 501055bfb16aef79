//! Runs independent training jobs on the available cores, with rayon.
//!
//! The jobs run in a pool of at most 4 threads made for the call, not in
//! rayon's global pool (one thread per core): training holds a model per
//! job in memory, so more jobs at once on a many-core server would raise
//! the peak memory the benchmarks hold under 300 MB, and the global pool's
//! idle threads would stay in the service for its lifetime after the bot
//! loaded.

use rayon::prelude::*;

pub type Job<'a, T> = Box<dyn FnOnce() -> T + Send + 'a>;

/// Most jobs run at once.
const MAX_THREADS: usize = 4;

/// Runs every job and returns the results in job order.
pub fn run<T: Send>(jobs: Vec<Job<'_, T>>) -> Vec<T> {
    let threads = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
        .clamp(1, MAX_THREADS)
        .min(jobs.len().max(1));
    match rayon::ThreadPoolBuilder::new().num_threads(threads).build() {
        Ok(pool) => pool.install(|| jobs.into_par_iter().map(|job| job()).collect()),
        // No thread could be started: the jobs run here, one by one.
        Err(_) => jobs.into_iter().map(|job| job()).collect(),
    }
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
