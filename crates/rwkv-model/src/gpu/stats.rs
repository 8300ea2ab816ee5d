//! Counters of the GPU work the model has recorded, and the CPU time of a generator's decode
//! steps, for benchmarks.

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

/// Where a [`crate::gpu::Generator`]'s decode steps spent CPU time, summed over every
/// [`crate::gpu::Generator::next_token`] call (the prefill's step is not counted): recording and
/// submitting steps, and waiting for the tokens. A step is recorded up to `lookahead` tokens
/// before it is read, so `steps` may exceed `tokens`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DecodeTimes {
    /// Decode steps recorded and submitted.
    pub steps: u64,
    /// Time spent taking the model's scratch lock, replaying each step's commands, adding the
    /// token's copy to a staging buffer, submitting and asking for the staging map.
    pub record_submit: std::time::Duration,
    /// Tokens returned.
    pub tokens: u64,
    /// Time spent waiting for those tokens: until the GPU finished their steps and their
    /// staging buffers were mapped and read.
    pub wait: std::time::Duration,
}
