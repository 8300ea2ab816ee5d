//! Feeds at least 100,000 mutated versions of a small valid file to the reader and asserts that none
//! panics and none makes the reader allocate much more than the input's size.
//!
//! Mutations: bit flips, random bytes, truncations, insertions, deletions, and edits of the structural
//! fields (counts, lengths, type ids, dimensions, offsets) to boundary values. The generator is a fixed-seed
//! SplitMix64, so a failure names a case that can be replayed (`GGUF_FUZZ_SEED`, `GGUF_FUZZ_CASES`).
//!
//! A counting global allocator records, per thread, the largest single allocation and the peak of live
//! bytes while one input is parsed. This file holds one test so that nothing else runs in its process.

mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::panic::{catch_unwind, AssertUnwindSafe};

use common::{fields, small_file, Field};
use gguf_file::GgufFile;

struct Tracking;

thread_local! {
    static LIVE: Cell<isize> = const { Cell::new(0) };
    static PEAK: Cell<isize> = const { Cell::new(0) };
    static LARGEST: Cell<usize> = const { Cell::new(0) };
}

fn note_alloc(size: usize) {
    let _ = LIVE.try_with(|live| {
        let now = live.get() + size as isize;
        live.set(now);
        let _ = PEAK.try_with(|p| p.set(p.get().max(now)));
    });
    let _ = LARGEST.try_with(|l| l.set(l.get().max(size)));
}

fn note_free(size: usize) {
    let _ = LIVE.try_with(|live| live.set(live.get() - size as isize));
}

// SAFETY: forwards to the system allocator unchanged; the bookkeeping touches only const-initialised
// thread-locals (no allocation, no destructors).
unsafe impl GlobalAlloc for Tracking {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note_alloc(layout.size());
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        note_free(layout.size());
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note_alloc(layout.size());
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note_free(layout.size());
        note_alloc(new_size);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Tracking = Tracking;

/// SplitMix64.
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

fn interesting_u64(rng: &mut Rng, len: usize, old: u64) -> u64 {
    let len = len as u64;
    let choices = [
        0,
        1,
        2,
        old.wrapping_add(1),
        old.wrapping_sub(1),
        old.wrapping_mul(2),
        len,
        len + 1,
        len / 2,
        u64::MAX,
        u64::MAX / 34 + 1,
        u64::MAX / 2 + 1,
        1 << 32,
        (1 << 32) - 1,
        1 << 62,
        i64::MAX as u64 + 1,
        rng.next(),
        rng.next() % 4096,
    ];
    choices[rng.below(choices.len())]
}

fn interesting_u32(rng: &mut Rng) -> u32 {
    let choices = [0, 1, 2, 3, 4, 5, 7, 8, 9, 12, 13, 16, 30, 31, 39, 43, 99, u32::MAX, rng.next() as u32];
    choices[rng.below(choices.len())]
}

fn mutate(base: &[u8], field_list: &[Field], rng: &mut Rng) -> Vec<u8> {
    let mut b = base.to_vec();
    let rounds = 1 + rng.below(3);
    for _ in 0..rounds {
        let len = b.len();
        match rng.below(8) {
            0 if len > 0 => {
                for _ in 0..1 + rng.below(4) {
                    let i = rng.below(len);
                    b[i] ^= 1 << rng.below(8);
                }
            }
            1 if len > 0 => {
                let i = rng.below(len);
                b[i] = rng.next() as u8;
            }
            2 => b.truncate(rng.below(len + 1)),
            3 => {
                let at = rng.below(len + 1);
                let n = 1 + rng.below(16);
                let insert: Vec<u8> = (0..n).map(|_| rng.next() as u8).collect();
                b.splice(at..at, insert);
            }
            4 if len > 0 => {
                let at = rng.below(len);
                let n = (1 + rng.below(16)).min(len - at);
                b.drain(at..at + n);
            }
            5 | 6 => match field_list[rng.below(field_list.len())] {
                Field::U64(at) if at + 8 <= len => {
                    let old = u64::from_le_bytes(b[at..at + 8].try_into().unwrap());
                    let v = interesting_u64(rng, len, old);
                    b[at..at + 8].copy_from_slice(&v.to_le_bytes());
                }
                Field::U32(at) if at + 4 <= len => {
                    let v = interesting_u32(rng);
                    b[at..at + 4].copy_from_slice(&v.to_le_bytes());
                }
                _ => {}
            },
            _ if len >= 8 => {
                // An interesting u64 at an arbitrary position.
                let at = rng.below(len - 7);
                let v = interesting_u64(rng, len, 0);
                b[at..at + 8].copy_from_slice(&v.to_le_bytes());
            }
            _ => {}
        }
    }
    b
}

/// Parses `input` and, when it parses, reads everything the file offers, as a user would.
fn exercise(input: Vec<u8>) -> Result<(), String> {
    match GgufFile::from_bytes("fuzz.gguf", input) {
        Ok(file) => {
            for (key, value) in file.metadata_entries() {
                std::hint::black_box((key, value.summary(4)));
            }
            for t in file.tensors() {
                assert_eq!(t.data.len() as u64, t.info.size);
                std::hint::black_box(t.data.iter().map(|&b| b as u64).sum::<u64>());
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
fn mutated_files_never_panic_or_over_allocate() {
    let seed: u64 = std::env::var("GGUF_FUZZ_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or(0x5eed_6775_6600);
    let cases: usize = std::env::var("GGUF_FUZZ_CASES").ok().and_then(|s| s.parse().ok()).unwrap_or(120_000);
    let base = small_file();
    let field_list = fields(&base);
    assert!(field_list.len() > 30, "the field walker found {} fields", field_list.len());
    exercise(base.clone()).expect("the base file is valid");

    let mut rng = Rng(seed);
    let (mut accepted, mut refused) = (0usize, 0usize);
    let started = std::time::Instant::now();
    for case in 0..cases {
        let input = mutate(&base, &field_list, &mut rng);
        let len = input.len();
        let replay = input.clone();
        LIVE.with(|l| l.set(0));
        PEAK.with(|p| p.set(0));
        LARGEST.with(|l| l.set(0));
        let outcome = catch_unwind(AssertUnwindSafe(|| exercise(input)));
        let (peak, largest) = (PEAK.with(Cell::get), LARGEST.with(Cell::get));
        match outcome {
            Ok(Ok(())) => accepted += 1,
            Ok(Err(_)) => refused += 1,
            Err(_) => panic!("case {case} (seed {seed}) panicked on input {replay:02x?}"),
        }
        // Parsed structures are a small multiple of the input; decoded tensors at most 4x their bytes.
        let limit = 16 * len + 16 * 1024;
        assert!(
            largest <= limit && peak as usize <= 2 * limit,
            "case {case} (seed {seed}): input of {len} bytes made the reader allocate {largest} bytes at once \
             and {peak} bytes in all; input {replay:02x?}"
        );
    }
    eprintln!("{cases} mutated files: {accepted} accepted, {refused} refused, in {:.2?}", started.elapsed());
    assert!(refused > cases / 4 && accepted > 100, "mutations should produce both outcomes");
}
