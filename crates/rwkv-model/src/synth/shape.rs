//! The shape of a synthetic RWKV-7 model: the official sizes (spec §1.3) or any explicit one.

use super::SynthError;

/// Head size of every official RWKV-7 model.
pub const HEAD_SIZE: usize = 64;

/// LoRA ranks: decay (w), in-context learning rate (a), value-residual mix (v), gate (g).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LoraRanks {
    /// D_w: rank of the decay LoRA.
    pub decay: usize,
    /// D_a: rank of the in-context learning rate LoRA.
    pub iclr: usize,
    /// D_v: rank of the value-residual mix LoRA.
    pub value: usize,
    /// D_g: rank of the gate LoRA.
    pub gate: usize,
}

impl LoraRanks {
    /// The ranks released models were trained with: `max(32, 32·round(m·C^e / 32))` with (m, e) =
    /// (1.8, 0.5) for decay and ICLR, (1.3, 0.5) for the value mix, (0.6, 0.8) for the gate.
    pub fn official(width: usize) -> LoraRanks {
        let rank = |m: f64, e: f64| 32 * ((m * (width as f64).powf(e) / 32.0).round() as usize).max(1);
        LoraRanks { decay: rank(1.8, 0.5), iclr: rank(1.8, 0.5), value: rank(1.3, 0.5), gate: rank(0.6, 0.8) }
    }
}

/// Layers, widths and ranks of a model; the vocabulary is always World's 65536 tokens.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ModelShape {
    /// L: number of layers.
    pub layers: usize,
    /// n_embd, C.
    pub width: usize,
    /// FFN width, F.
    pub ffn: usize,
    /// N: head size; must divide the width.
    pub head_size: usize,
    /// The four LoRA ranks.
    pub ranks: LoraRanks,
}

/// The official sizes by name: (name, layers, width).
pub const OFFICIAL_SIZES: [(&str, usize, usize); 5] =
    [("0.1b", 12, 768), ("0.4b", 24, 1024), ("1.5b", 24, 2048), ("2.9b", 32, 2560), ("7.2b", 32, 4096)];

impl ModelShape {
    /// A shape with the official defaults for a depth and width: F = 4C, head size 64, official ranks.
    pub fn with_defaults(layers: usize, width: usize) -> ModelShape {
        ModelShape { layers, width, ffn: 4 * width, head_size: HEAD_SIZE, ranks: LoraRanks::official(width) }
    }

    /// One of the official sizes (`0.1b`, `0.4b`, `1.5b`, `2.9b`, `7.2b`; case-insensitive).
    pub fn official(size: &str) -> Result<ModelShape, SynthError> {
        let wanted = size.trim().to_ascii_lowercase();
        OFFICIAL_SIZES
            .iter()
            .find(|(name, _, _)| *name == wanted)
            .map(|&(_, layers, width)| ModelShape::with_defaults(layers, width))
            .ok_or_else(|| SynthError::UnknownSize(size.to_owned()))
    }

    /// H = C / N, the number of heads.
    pub fn heads(&self) -> usize {
        self.width / self.head_size
    }

    /// Checks that every size is positive and the width is a whole number of heads.
    pub fn validate(&self) -> Result<(), SynthError> {
        let r = self.ranks;
        let sizes = [self.layers, self.width, self.ffn, self.head_size, r.decay, r.iclr, r.value, r.gate];
        if sizes.contains(&0) {
            return Err(SynthError::InvalidShape(format!("every size must be at least 1: {self:?}")));
        }
        if !self.width.is_multiple_of(self.head_size) {
            return Err(SynthError::InvalidShape(format!(
                "width {} is not a multiple of the head size {}",
                self.width, self.head_size
            )));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn official_ranks_match_the_spec_table() {
        // (width, decay, iclr, value, gate) from spec §1.3.
        let table = [
            (768, 64, 64, 32, 128),
            (1024, 64, 64, 32, 160),
            (2048, 96, 96, 64, 256),
            (2560, 96, 96, 64, 320),
            (4096, 128, 128, 96, 480),
        ];
        for (width, decay, iclr, value, gate) in table {
            assert_eq!(LoraRanks::official(width), LoraRanks { decay, iclr, value, gate }, "width {width}");
        }
        assert_eq!(LoraRanks::official(128), LoraRanks { decay: 32, iclr: 32, value: 32, gate: 32 });
    }

    #[test]
    fn official_sizes_and_validation() {
        let s = ModelShape::official("2.9B").unwrap();
        assert_eq!((s.layers, s.width, s.ffn, s.heads()), (32, 2560, 10240, 40));
        assert!(ModelShape::official("3b").is_err());
        assert!(ModelShape::with_defaults(2, 96).validate().is_err());
        assert!(ModelShape { layers: 0, ..ModelShape::with_defaults(2, 128) }.validate().is_err());
        assert!(ModelShape::with_defaults(1, 64).validate().is_ok());
    }
}
