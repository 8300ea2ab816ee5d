//! Mutated tiny RWKV-7 models through the whole model-file validation: no panic, errors that name the
//! file, and no allocation far beyond the input's size (hyperparameters must never size anything before
//! they are checked against the tensors). One test per process: a counting allocator watches it.

mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::panic::{catch_unwind, AssertUnwindSafe};

use common::{build, small_hparams};
use gguf_file::{GgmlType, GgufFile};
use rwkv_model::ModelFile;

struct Tracking;

thread_local! {
    static LARGEST: Cell<usize> = const { Cell::new(0) };
}

// SAFETY: forwards to the system allocator; the bookkeeping touches one const-initialised thread-local.
unsafe impl GlobalAlloc for Tracking {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let _ = LARGEST.try_with(|l| l.set(l.get().max(layout.size())));
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let _ = LARGEST.try_with(|l| l.set(l.get().max(new_size)));
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Tracking = Tracking;

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

fn exercise(bytes: Vec<u8>) -> Result<(), String> {
    let file = GgufFile::from_bytes("fuzz.gguf", bytes).map_err(|e| e.to_string())?;
    match ModelFile::from_gguf(file) {
        Ok(model) => {
            for info in model.gguf().tensor_infos() {
                std::hint::black_box(model.tensor_f32(&info.name).ok());
            }
            Ok(())
        }
        Err(e) => {
            let msg = e.to_string();
            assert!(msg.starts_with("fuzz.gguf: "), "error without the file name: {msg}");
            Err(msg)
        }
    }
}

#[test]
fn mutated_models_never_panic_or_over_allocate() {
    let hp = small_hparams();
    let base = build(&hp, GgmlType::Q8_0, GgmlType::F32).to_bytes().unwrap();
    let header_len = GgufFile::from_bytes("base", base.clone()).unwrap().data_offset() as usize;
    exercise(base.clone()).expect("the base model is valid");
    let cases: usize = std::env::var("MODEL_FUZZ_CASES").ok().and_then(|s| s.parse().ok()).unwrap_or(20_000);
    let mut rng = Rng(0x006d_6f64_656c);
    let (mut accepted, mut refused) = (0, 0);
    for case in 0..cases {
        let mut b = base.clone();
        for _ in 0..1 + rng.below(2) {
            // Mostly the header (metadata values, tensor infos), where the model checks live.
            let at = rng.below(header_len - 8);
            match rng.below(4) {
                0 => b[at] ^= 1 << rng.below(8),
                1 => {
                    b[at..at + 4].copy_from_slice(&[0u32, 1, 2, 3, 16, 31, 64, 0xffff_ffff][rng.below(8)].to_le_bytes())
                }
                2 => b[at..at + 8].copy_from_slice(&[0u64, 1, 32, 1 << 32, u64::MAX][rng.below(5)].to_le_bytes()),
                _ => b.truncate(header_len + rng.below(b.len() - header_len)),
            }
        }
        let len = b.len();
        let replay = b.clone();
        LARGEST.with(|l| l.set(0));
        match catch_unwind(AssertUnwindSafe(|| exercise(b))) {
            Ok(Ok(())) => accepted += 1,
            Ok(Err(_)) => refused += 1,
            Err(_) => panic!("case {case} panicked; input header {:02x?}", &replay[..header_len.min(replay.len())]),
        }
        let largest = LARGEST.with(Cell::get);
        // Decoded tensors are at most 4x their bytes; parsed structures a small multiple of the header.
        assert!(
            largest <= 4 * len + 64 * 1024,
            "case {case}: {largest} bytes allocated at once for a {len}-byte input"
        );
    }
    eprintln!("{cases} mutated models: {accepted} accepted, {refused} refused");
    assert!(refused > cases / 4 && accepted > 10);
}
