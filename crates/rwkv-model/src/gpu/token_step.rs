//! [`TokenStep`]: the commands of one decode step, built once per generator.
//!
//! Capturing runs the usual recording code (every layer for one token, then the caller's tail:
//! the head and the sampler) against a capturing recorder, once for each state parity; a step
//! replays the list for the state's current parity. The list owns its pipelines, bind groups
//! and workgroup counts, so nothing on the per-token path creates a bind group, takes a lock or
//! looks anything up, and everything it binds is released when the generator is dropped.

use gpu_core::{BufferRange, DispatchList, Recorder};

use crate::gpu::forward::{Ctx, Rows};
use crate::gpu::state::State;
use crate::ModelError;

pub(crate) struct TokenStep {
    /// The step's commands for a state whose current half is 0, and 1.
    by_parity: [DispatchList; 2],
    /// Whether a step flips the state's parity (the fused one-token prologues).
    flips: bool,
}

impl TokenStep {
    /// Captures one token (read from `token`) through every layer followed by `tail`, for both
    /// state parities. `state` is left as it was.
    pub(crate) fn capture(
        ctx: &Ctx<'_>,
        state: &State,
        token: BufferRange<'_>,
        tail: impl Fn(&mut Recorder<'_>) -> Result<(), ModelError>,
    ) -> Result<TokenStep, ModelError> {
        let current = state.parity();
        let lists = [0, 1].map(|parity| {
            state.set_parity(parity);
            DispatchList::capture(ctx.gpu, |rec| {
                ctx.record_layers(rec, 1, token, Rows::Sequence(state))?;
                tail(rec)
            })
        });
        state.set_parity(current);
        let [even, odd] = lists;
        Ok(TokenStep { by_parity: [even?, odd?], flips: ctx.one_token_prologue(1) })
    }

    /// Records one step of `state` (whose token is in the captured token input). Takes the
    /// context as proof that the caller holds the scratch the step uses.
    pub(crate) fn record(&self, _ctx: &Ctx<'_>, rec: &mut Recorder<'_>, state: &State) {
        rec.replay(&self.by_parity[state.parity() as usize]);
        if self.flips {
            state.flip();
        }
    }
}
