//! rwkv-model's [`Batch`] as the server's [`Engine`].

use rwkv_model::batch::{Batch, SeqId};
use rwkv_model::gpu::SamplerConfig;
use rwkv_model::ModelError;

use crate::engine::{CacheFigures, Engine};

impl Engine for Batch {
    type Seq = SeqId;

    fn max_batch(&self) -> usize {
        Batch::max_batch(self)
    }

    fn sequences(&self) -> usize {
        Batch::len(self)
    }

    fn add(&mut self, prompt: &[u32], config: &SamplerConfig) -> Result<SeqId, ModelError> {
        Batch::add(self, prompt, config)
    }

    fn remove(&mut self, id: SeqId) {
        Batch::remove(self, id)
    }

    fn step(&mut self) -> Result<Vec<(SeqId, u32)>, ModelError> {
        Batch::step(self)
    }

    fn cache(&self) -> CacheFigures {
        let s = self.cache_stats();
        CacheFigures {
            hits: s.hits,
            misses: s.misses,
            entries: s.entries as u64,
            bytes: s.bytes,
            tokens_reused: s.tokens_reused,
            evictions: s.evictions,
        }
    }
}
