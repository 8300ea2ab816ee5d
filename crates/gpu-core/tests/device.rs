//! gpu-core on whatever adapter the machine has (Mesa's software Vulkan driver in CI).

mod common;

use gpu_core::{
    list_adapters, new_instance, workgroups_1d, Binding, ContextOptions, Gpu, GpuError, KernelSource, LimitsPolicy,
    Needs, Timer,
};

fn gpu(policy: LimitsPolicy) -> Gpu {
    Gpu::new(&ContextOptions { limits: policy, ..Default::default() })
        .expect("a GPU adapter (install mesa-vulkan-drivers)")
}

/// CI sets RWKV_EXPECT_BACKEND=vulkan: without Mesa's Vulkan driver wgpu silently falls back
/// to a GL adapter with fewer features, and every other test would still pass.
#[test]
fn adapter_is_the_expected_backend() {
    let g = gpu(LimitsPolicy::Max);
    let caps = g.caps();
    eprintln!(
        "adapter: {} {:?} {:?} features {:?}",
        caps.adapter_name,
        caps.backend,
        caps.device_type,
        caps.feature_names()
    );
    match std::env::var("RWKV_EXPECT_BACKEND").ok().as_deref() {
        Some("vulkan") => {
            assert_eq!(caps.backend, gpu_core::wgpu::Backend::Vulkan, "expected a Vulkan adapter, got {caps:?}");
            assert!(caps.shader_f16, "the software Vulkan driver has SHADER_F16");
            assert!(caps.subgroups.is_some(), "the software Vulkan driver has subgroups");
        }
        Some(other) => panic!("unknown RWKV_EXPECT_BACKEND {other}"),
        None => eprintln!("RWKV_EXPECT_BACKEND not set: backend not asserted"),
    }
    assert!(!list_adapters(&new_instance()).is_empty());
}

#[test]
fn limits_policies_differ_as_documented() {
    let d = gpu(LimitsPolicy::Default);
    assert_eq!(d.caps().limits.max_storage_buffers_per_shader_stage, 8);
    assert_eq!(d.caps().limits.max_storage_buffer_binding_size, 128 << 20);
    let m = gpu(LimitsPolicy::Max);
    let adapter = m.adapter().limits();
    assert_eq!(m.caps().limits.max_storage_buffers_per_shader_stage, adapter.max_storage_buffers_per_shader_stage);
    assert!(m.caps().limits.max_storage_buffers_per_shader_stage >= 8);
}

#[test]
fn upload_readback_round_trip() {
    let g = gpu(LimitsPolicy::Max);
    // Odd sizes: 1 byte, 3 bytes, and something not a multiple of 256.
    for n in [1usize, 3, 1000, 65_539] {
        let data: Vec<u8> = (0..n).map(|i| (i * 7 + 3) as u8).collect();
        let b = g.buffer_init("round-trip", &data).unwrap();
        assert_eq!(g.read(b.range(0, n as u64)).unwrap(), data);
        if n > 8 {
            assert_eq!(g.read(b.range(4, 4)).unwrap(), data[4..8]);
        }
    }
    let f: Vec<f32> = (0..1234).map(|i| i as f32 * 0.5 - 3.0).collect();
    let b = g.buffer_from("floats", &f).unwrap();
    assert_eq!(g.read_as::<f32>(&b).unwrap(), f);
    // Writes are visible to the next read.
    g.write(&b, 8, bytemuck::cast_slice(&[42.0f32]));
    assert_eq!(g.read_as::<f32>(&b).unwrap()[2], 42.0);
}

const THREE_GROUPS: KernelSource = KernelSource {
    name: "test_three_groups",
    wgsl: r#"
@group(0) @binding(0) var<storage, read> a: array<f32>;
@group(1) @binding(0) var<storage, read> b: array<f32>;
@group(1) @binding(1) var<uniform> scale: vec4<f32>;
@group(2) @binding(0) var<storage, read_write> out: array<f32>;
@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    let i = gid.x;
    if (i < arrayLength(&out)) { out[i] = a[i] * scale.x + b[i]; }
}
"#,
    entry: "main",
    bindings: &[
        Binding::read(0, 0, "a"),
        Binding::read(1, 0, "b"),
        Binding::uniform(1, 1, "scale"),
        Binding::read_write(2, 0, "out"),
    ],
    needs: Needs { shader_f16: false, subgroups: false, cooperative_matrix: false },
};

#[test]
fn pipeline_with_three_bind_groups() {
    let g = gpu(LimitsPolicy::Default);
    let n = 300;
    let a: Vec<f32> = (0..n).map(|i| i as f32).collect();
    let b: Vec<f32> = (0..n).map(|i| 1.0 - i as f32).collect();
    let (ba, bb) = (g.buffer_from("a", &a).unwrap(), g.buffer_from("b", &b).unwrap());
    let scale = g.uniform("scale", bytemuck::cast_slice(&[3.0f32, 0.0, 0.0, 0.0])).unwrap();
    let out = g.buffer("out", n as u64 * 4).unwrap();
    let p = g.pipeline(&THREE_GROUPS, &[]).unwrap();
    assert_eq!(p.group_count(), 3);
    let groups = g.bind_groups(&p, &[&[ba.all()], &[bb.all(), scale.all()], &[out.all()]]).unwrap();
    let p2 = g.pipeline(&THREE_GROUPS, &[]).unwrap();
    assert!(std::sync::Arc::ptr_eq(&p, &p2));
    let mut rec = g.recorder();
    rec.dispatch(&p, &groups, [(n as u32).div_ceil(64), 1, 1]);
    rec.submit();
    let got = g.read_as::<f32>(&out).unwrap();
    for i in 0..n {
        assert_eq!(got[i], a[i] * 3.0 + b[i], "index {i}");
    }
    // A wrong number of buffers is a typed error, not a panic.
    match g.bind_group(&p, 1, &[bb.all()]) {
        Err(GpuError::BindingCount { expected: 2, found: 1, .. }) => {}
        other => panic!("expected BindingCount, got {other:?}"),
    }
}

/// A kernel binding 12 storage buffers: out[i] = sum of the 11 inputs at i.
const TWELVE: KernelSource = KernelSource {
    name: "test_twelve_storage_buffers",
    wgsl: r#"
@group(0) @binding(0) var<storage, read> i0: array<f32>;
@group(0) @binding(1) var<storage, read> i1: array<f32>;
@group(0) @binding(2) var<storage, read> i2: array<f32>;
@group(0) @binding(3) var<storage, read> i3: array<f32>;
@group(0) @binding(4) var<storage, read> i4: array<f32>;
@group(0) @binding(5) var<storage, read> i5: array<f32>;
@group(1) @binding(0) var<storage, read> i6: array<f32>;
@group(1) @binding(1) var<storage, read> i7: array<f32>;
@group(1) @binding(2) var<storage, read> i8: array<f32>;
@group(1) @binding(3) var<storage, read> i9: array<f32>;
@group(1) @binding(4) var<storage, read> i10: array<f32>;
@group(2) @binding(0) var<storage, read_write> out: array<f32>;
@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    let i = gid.x;
    if (i >= arrayLength(&out)) { return; }
    out[i] = i0[i] + i1[i] + i2[i] + i3[i] + i4[i] + i5[i] + i6[i] + i7[i] + i8[i] + i9[i] + i10[i];
}
"#,
    entry: "main",
    bindings: &[
        Binding::read(0, 0, "i0"),
        Binding::read(0, 1, "i1"),
        Binding::read(0, 2, "i2"),
        Binding::read(0, 3, "i3"),
        Binding::read(0, 4, "i4"),
        Binding::read(0, 5, "i5"),
        Binding::read(1, 0, "i6"),
        Binding::read(1, 1, "i7"),
        Binding::read(1, 2, "i8"),
        Binding::read(1, 3, "i9"),
        Binding::read(1, 4, "i10"),
        Binding::read_write(2, 0, "out"),
    ],
    needs: Needs { shader_f16: false, subgroups: false, cooperative_matrix: false },
};

#[test]
fn twelve_storage_buffers_run_under_max_and_are_refused_under_default() {
    let max = gpu(LimitsPolicy::Max);
    if max.caps().limits.max_storage_buffers_per_shader_stage < 12 {
        eprintln!("SKIPPED part: adapter offers fewer than 12 storage buffers per stage");
    } else {
        let n = 100usize;
        let inputs: Vec<_> = (0..11)
            .map(|k| max.buffer_from("in", &(0..n).map(|i| (i * (k + 1)) as f32).collect::<Vec<_>>()).unwrap())
            .collect();
        let out = max.buffer("out", n as u64 * 4).unwrap();
        let p = max.pipeline(&TWELVE, &[]).unwrap();
        let g0: Vec<_> = inputs[..6].iter().map(|b| b.all()).collect();
        let g1: Vec<_> = inputs[6..].iter().map(|b| b.all()).collect();
        let groups = max.bind_groups(&p, &[&g0, &g1, &[out.all()]]).unwrap();
        let mut rec = max.recorder();
        rec.dispatch(&p, &groups, [2, 1, 1]);
        rec.submit();
        let got = max.read_as::<f32>(&out).unwrap();
        for (i, v) in got.iter().enumerate() {
            assert_eq!(*v, (i * 66) as f32);
        }
    }
    let def = gpu(LimitsPolicy::Default);
    match def.pipeline(&TWELVE, &[]) {
        Err(e @ GpuError::LimitExceeded { .. }) => {
            let msg = e.to_string();
            assert!(msg.contains("max_storage_buffers_per_shader_stage"), "{msg}");
            assert!(msg.contains("test_twelve_storage_buffers"), "{msg}");
            assert!(msg.contains("12") && msg.contains("8"), "{msg}");
        }
        other => panic!("expected LimitExceeded, got {other:?}"),
    }
}

#[test]
fn many_dispatches_in_one_submission_apply_in_order() {
    let g = gpu(LimitsPolicy::Default);
    let n = 1000u32;
    let x = g.buffer_from("x", &(0..n).collect::<Vec<u32>>()).unwrap();
    let p = g.pipeline(&common::TIMES_THREE_PLUS_ONE, &[]).unwrap();
    let groups = g.bind_groups(&p, &[&[x.all()]]).unwrap();
    let mut timer = Timer::new(&g, 512);
    let steps = 200u32;
    let mut rec = match timer.as_mut() {
        Some(t) => g.recorder().with_timer(t),
        None => g.recorder(),
    };
    for _ in 0..steps {
        rec.dispatch(&p, &groups, [n.div_ceil(64), 1, 1]);
    }
    let stats = rec.stats();
    assert_eq!((stats.dispatches, stats.passes), (steps, 1));
    rec.submit();
    let got = g.read_as::<u32>(&x).unwrap();
    for (i, v) in got.iter().enumerate() {
        let mut e = i as u32;
        for _ in 0..steps {
            e = common::times_three_plus_one(e);
        }
        assert_eq!(*v, e, "index {i}");
    }
    if let Some(t) = timer.as_mut() {
        let table = t.read(&g).unwrap();
        assert_eq!(table.len(), 1);
        assert_eq!(table[0].kernel, "test_times_three_plus_one");
        assert_eq!(table[0].dispatches, steps);
        assert!(table[0].total_ns > 0.0);
    } else {
        eprintln!("SKIPPED timer part: no timestamps inside passes on this adapter");
    }
}

/// The same kernel compiled with and without wgpu's runtime checks computes the same thing.
#[test]
fn shaders_with_and_without_runtime_checks_agree() {
    let mut results = Vec::new();
    for checks in [false, true] {
        let g = Gpu::new(&ContextOptions { shader_runtime_checks: checks, ..Default::default() }).unwrap();
        let n = 300u32;
        let x = g.buffer_from("x", &(0..n).collect::<Vec<u32>>()).unwrap();
        let p = g.pipeline(&common::TIMES_THREE_PLUS_ONE, &[]).unwrap();
        let groups = g.bind_groups(&p, &[&[x.all()]]).unwrap();
        let mut rec = g.recorder();
        rec.dispatch(&p, &groups, [n.div_ceil(64), 1, 1]);
        rec.submit();
        results.push(g.read_as::<u32>(&x).unwrap());
    }
    assert_eq!(results[0], results[1]);
    assert_eq!(results[0][7], 7 * 3 + 1);
}

#[test]
fn bad_shader_is_a_typed_error() {
    const BAD: KernelSource = KernelSource {
        name: "test_bad_shader",
        wgsl: "@compute @workgroup_size(1) fn main() { let x: f32 = 1u; }",
        entry: "main",
        bindings: &[],
        needs: Needs { shader_f16: false, subgroups: false, cooperative_matrix: false },
    };
    let g = gpu(LimitsPolicy::Default);
    match g.pipeline(&BAD, &[]) {
        Err(GpuError::Pipeline { kernel, .. }) => assert_eq!(kernel, "test_bad_shader"),
        other => panic!("expected Pipeline error, got {other:?}"),
    }
}

#[test]
fn oversized_buffers_are_refused_before_allocation() {
    let g = gpu(LimitsPolicy::Default);
    let max = g.caps().limits.max_buffer_size;
    match g.buffer("huge", max + 4) {
        Err(GpuError::TooLarge { limit: "max_buffer_size", .. }) => {}
        other => panic!("expected TooLarge, got {other:?}"),
    }
    // An F16 head of a 2.9B model is 320 MiB: over the default 128 MiB binding limit.
    assert!(matches!(
        g.check_binding_size("output.weight", 65536 * 2560 * 2),
        Err(GpuError::TooLarge { limit: "max_storage_buffer_binding_size", .. })
    ));
    assert_eq!(workgroups_1d(10, 65535), [10, 1, 1]);
    let [x, y, _] = workgroups_1d(200_000, 65535);
    assert!(x <= 65535 && y <= 65535 && x * y >= 200_000);
}

/// Fills buffers of sizes that are not multiples of 4 (zeroed tail) whole, in parts on several
/// threads, and (in a session) through a pool much smaller than the buffers; all read back.
fn fill_and_read_back(g: &Gpu) -> u64 {
    let mut bytes = 0;
    for n in [0usize, 5, 4096, 100_003] {
        let expected: Vec<u8> = (0..n).map(|i| (i * 13 + 1) as u8).collect();
        let fill = |offset: u64, mut data: gpu_core::WriteOnly<'_, [u8]>| {
            assert_eq!(offset % 4, 0);
            let at = offset as usize;
            data.copy_from_slice(&expected[at..at + data.len()]);
            Ok::<(), GpuError>(())
        };
        let whole = g.buffer_with("filled", n as u64, fill).unwrap();
        let parts = g.buffer_with_parts("filled in parts", n as u64, 3, fill).unwrap();
        let mut padded = expected.clone();
        padded.resize(n.max(4).next_multiple_of(4), 0);
        for b in [whole, parts] {
            assert_eq!(b.size(), padded.len() as u64);
            assert_eq!(g.read(b.all()).unwrap(), padded, "{n} bytes");
            bytes += b.size();
        }
    }
    bytes
}

#[test]
fn buffers_filled_in_place_read_back_with_and_without_a_session() {
    let g = gpu(LimitsPolicy::Max);
    let before = g.resource_stats();
    let mut bytes = fill_and_read_back(&g);
    g.flush_uploads(true).unwrap();
    {
        // Pieces of 1000 bytes through 2 staging buffers, shared by nested sessions.
        let session = g.upload_session(1000, 2).unwrap();
        let inner = g.upload_session(1 << 20, 8).unwrap();
        bytes += fill_and_read_back(&g);
        inner.finish().unwrap();
        let many: Vec<_> = std::thread::scope(|s| {
            let g = &g;
            let h: Vec<_> =
                (0..6).map(|i| s.spawn(move || g.buffer_init("t", &vec![i as u8; 10_000]).unwrap())).collect();
            h.into_iter().map(|h| h.join().unwrap()).collect()
        });
        session.finish().unwrap();
        for (i, b) in many.iter().enumerate() {
            assert_eq!(g.read(b.all()).unwrap(), vec![i as u8; 10_000]);
            bytes += b.size();
        }
    }
    let stats = g.resource_stats().since(&before);
    assert_eq!(stats.filled_buffers, 22);
    assert_eq!(stats.filled_bytes, bytes);
    assert!(stats.fill_s >= 0.0 && stats.create_s >= 0.0);
}

#[test]
fn a_failing_fill_is_returned_as_is() {
    #[derive(Debug)]
    enum E {
        Packing,
        Gpu(#[allow(dead_code)] GpuError),
    }
    impl From<GpuError> for E {
        fn from(e: GpuError) -> Self {
            E::Gpu(e)
        }
    }
    let g = gpu(LimitsPolicy::Max);
    for session in [false, true] {
        let s = session.then(|| g.upload_session(64, 1).unwrap());
        assert!(matches!(g.buffer_with("bad", 16, |_, _| Err(E::Packing)), Err(E::Packing)));
        let later = |offset: u64, _: gpu_core::WriteOnly<'_, [u8]>| if offset > 0 { Err(E::Packing) } else { Ok(()) };
        assert!(matches!(g.buffer_with("bad", 4000, later), Err(E::Packing)) == session);
        assert!(matches!(g.buffer_with_parts("bad", 4000, 4, later), Err(E::Packing)));
        match g.buffer_with("huge", g.caps().limits.max_buffer_size + 4, |_, _| Ok::<(), E>(())) {
            Err(E::Gpu(GpuError::TooLarge { limit: "max_buffer_size", .. })) => {}
            other => panic!("expected TooLarge, got {other:?}"),
        }
        // The device (and the pool) still work.
        let b = g.buffer_init("after", &[1, 2, 3, 4, 5, 6, 7, 8, 9]).unwrap();
        assert_eq!(g.read(b.all()).unwrap(), [1, 2, 3, 4, 5, 6, 7, 8, 9, 0, 0, 0]);
        if let Some(s) = s {
            s.finish().unwrap();
        }
    }
}

#[test]
fn a_pipeline_asked_for_by_many_threads_is_compiled_once() {
    const K: KernelSource = KernelSource {
        name: "test_compile_once",
        wgsl: "override N: u32 = 1u;\n@group(0) @binding(0) var<storage, read_write> out: array<u32>;\n\
               @compute @workgroup_size(1) fn main() { out[0] = N; }",
        entry: "main",
        bindings: &[Binding::read_write(0, 0, "out")],
        needs: Needs { shader_f16: false, subgroups: false, cooperative_matrix: false },
    };
    let g = gpu(LimitsPolicy::Max);
    let before = g.resource_stats();
    let pipelines: Vec<_> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..8).map(|_| s.spawn(|| g.pipeline(&K, &[("N", 7.0)]).unwrap())).collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert!(pipelines.windows(2).all(|w| std::sync::Arc::ptr_eq(&w[0], &w[1])));
    let stats = g.resource_stats().since(&before);
    assert_eq!(stats.pipelines, 1);
    assert_eq!(g.pipeline_count(), 1);
}
