//! Counters of the GPU work the model has recorded, and the bytes it holds, for benchmarks.

use std::sync::atomic::{AtomicU64, Ordering};

/// Totals over every [`crate::gpu::Model::forward`] call since load (or the last reset).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ForwardCounters {
    /// Forward calls.
    pub calls: u64,
    /// Tokens fed.
    pub tokens: u64,
    /// Queue submissions.
    pub submissions: u64,
    /// Compute dispatches.
    pub dispatches: u64,
    /// Compute passes.
    pub passes: u64,
    /// Buffer copies recorded.
    pub copies: u64,
}

/// The atomic accumulator behind [`ForwardCounters`] (the model is shared by reference).
#[derive(Debug, Default)]
pub(crate) struct Counters {
    calls: AtomicU64,
    tokens: AtomicU64,
    submissions: AtomicU64,
    dispatches: AtomicU64,
    passes: AtomicU64,
    copies: AtomicU64,
}

impl Counters {
    pub(crate) fn call(&self, tokens: usize) {
        self.calls.fetch_add(1, Ordering::Relaxed);
        self.tokens.fetch_add(tokens as u64, Ordering::Relaxed);
    }

    /// Counts one submission with what its recorder put in it.
    pub(crate) fn submission(&self, s: gpu_core::RecorderStats) {
        self.submissions.fetch_add(1, Ordering::Relaxed);
        self.dispatches.fetch_add(s.dispatches as u64, Ordering::Relaxed);
        self.passes.fetch_add(s.passes as u64, Ordering::Relaxed);
        self.copies.fetch_add(s.copies as u64, Ordering::Relaxed);
    }

    pub(crate) fn get(&self) -> ForwardCounters {
        ForwardCounters {
            calls: self.calls.load(Ordering::Relaxed),
            tokens: self.tokens.load(Ordering::Relaxed),
            submissions: self.submissions.load(Ordering::Relaxed),
            dispatches: self.dispatches.load(Ordering::Relaxed),
            passes: self.passes.load(Ordering::Relaxed),
            copies: self.copies.load(Ordering::Relaxed),
        }
    }

    pub(crate) fn reset(&self) {
        for c in [&self.calls, &self.tokens, &self.submissions, &self.dispatches, &self.passes, &self.copies] {
            c.store(0, Ordering::Relaxed);
        }
    }
}
