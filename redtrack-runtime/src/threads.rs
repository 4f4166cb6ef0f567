//! How many threads are worth running at once for CPU-bound work.

/// One per core, at most 4 (beyond that the loader's CPU work waits on the warehouse anyway).
pub(crate) fn cpu_threads() -> usize {
    std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .clamp(1, 4)
}
