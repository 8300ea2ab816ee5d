use std::collections::HashMap;
use std::sync::Mutex;

use gpu_core::{Gpu, GpuBuffer};

/// Uniform buffers holding a token count (`struct { tokens: u32, pad: 3 × u32 }`), one per
/// distinct count, created once and never rewritten: a recording may dispatch the same kernel
/// with several counts before it is submitted, which one rewritten buffer could not express.
#[derive(Default)]
pub(crate) struct TokenCounts {
    buffers: Mutex<HashMap<u32, GpuBuffer>>,
}

impl TokenCounts {
    pub fn get(&self, gpu: &Gpu, tokens: u32) -> crate::Result<GpuBuffer> {
        let mut map = self.buffers.lock().unwrap();
        if let Some(b) = map.get(&tokens) {
            return Ok(b.clone());
        }
        let b = gpu.uniform("token count", bytemuck::bytes_of(&[tokens, 0, 0, 0]))?;
        map.insert(tokens, b.clone());
        Ok(b)
    }
}
