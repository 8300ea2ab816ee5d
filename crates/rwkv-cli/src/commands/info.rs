//! `rwkv-cli info FILE`: a GGUF file's metadata, the RWKV-7 hyperparameters, its tensors, and a table of
//! how many tensors and bytes each ggml type has (with whether this engine runs it).
//!
//! Any GGUF the reader accepts is listed, whatever its types; if it is not a valid RWKV-7 model the reason
//! is reported after the listing and the command fails. A valid model holding types the engine cannot run
//! yet is reported as such (the first such tensor is named), and the command succeeds.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::Write as _;
use std::path::PathBuf;

use anyhow::Result;
use clap::Args as ClapArgs;
use gguf_file::{GgmlType, GgufFile};
use rwkv_model::tensors::{check_types, gpu_supports, validate_tensors};
use rwkv_model::HParams;

/// `writeln!` into a `String` (which cannot fail).
macro_rules! outln {
    ($out:expr, $($arg:tt)*) => {
        let _ = writeln!($out, $($arg)*);
    };
}

#[derive(ClapArgs)]
pub struct Args {
    /// The GGUF model file.
    pub file: PathBuf,
    /// How many elements of each metadata array to show.
    #[arg(long, default_value_t = 6)]
    pub items: usize,
}

pub fn run(args: Args) -> Result<()> {
    let file = GgufFile::open(&args.file)?;
    let model = HParams::from_gguf(&file).and_then(|hp| validate_tensors(&file, &hp).map(|()| hp));
    let mut out = String::new();

    outln!(out, "file: {}", file.path().display());
    outln!(
        out,
        "GGUF v{}, {} ({} bytes), alignment {}, data section at byte {}",
        file.version(),
        human_bytes(file.file_len()),
        file.file_len(),
        file.alignment(),
        file.data_offset()
    );

    outln!(out, "\nmetadata ({} keys):", file.metadata_entries().len());
    let key_width = file.metadata_entries().map(|(k, _)| k.len()).max().unwrap_or(0);
    for (key, value) in file.metadata_entries() {
        let shown = match value.as_array() {
            Some(_) => value.summary(args.items),
            None => format!("{} {}", value.type_description(), value.summary(args.items)),
        };
        outln!(out, "  {key:<key_width$}  {shown}");
    }

    if let Ok(hp) = &model {
        print_hparams(&mut out, hp);
    }
    print_tensors(&mut out, &file);
    if let Ok(hp) = &model {
        match check_types(&file, hp) {
            Ok(()) => {
                outln!(out, "\nthis engine runs every tensor type of this model");
            }
            Err(e) => {
                outln!(out, "\nthis engine cannot run this model: {e}");
            }
        }
    }
    write_stdout(&out)?;

    model.map(|_| ()).map_err(|e| anyhow::Error::new(e).context("not a valid RWKV-7 model"))
}

/// Writes the whole listing at once; a closed pipe (`| head`) is not an error.
fn write_stdout(text: &str) -> Result<()> {
    match std::io::stdout().lock().write_all(text.as_bytes()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(e.into()),
        _ => Ok(()),
    }
}

fn print_hparams(out: &mut String, hp: &HParams) {
    outln!(out, "\nhyperparameters (RWKV-7):");
    let rows = [
        ("layers (L)", hp.n_layer.to_string()),
        ("embedding width (C)", hp.n_embd.to_string()),
        ("heads (H) x head size (N)", format!("{} x {}", hp.n_head, hp.head_size)),
        ("FFN width (F)", hp.ffn.to_string()),
        ("vocabulary (V)", hp.vocab.to_string()),
        ("LoRA ranks w / a / v / g", format!("{} / {} / {} / {}", hp.d_w, hp.d_a, hp.d_v, hp.d_g)),
        ("layer-norm eps", format!("{:e}", hp.ln_eps)),
        ("group-norm eps (fixed)", format!("{:e}", hp.group_norm_eps())),
    ];
    for (name, value) in rows {
        outln!(out, "  {name:<26}  {value}");
    }
}

fn print_tensors(out: &mut String, file: &GgufFile) {
    let infos = file.tensor_infos();
    outln!(out, "\ntensors ({}):", infos.len());
    let shape = |dims: &[u64]| format!("[{}]", dims.iter().map(u64::to_string).collect::<Vec<_>>().join(", "));
    let name_w = infos.iter().map(|t| t.name.len()).max().unwrap_or(4).max(4);
    let shape_w = infos.iter().map(|t| shape(&t.dims).len()).max().unwrap_or(5).max(5);
    outln!(out, "  {:<name_w$}  {:<shape_w$}  {:<7}  {:>12}", "name", "shape", "type", "bytes");
    let mut by_type: BTreeMap<u32, (GgmlType, usize, u64)> = BTreeMap::new();
    let (mut elements, mut bytes) = (0u64, 0u64);
    for t in infos {
        outln!(out, "  {:<name_w$}  {:<shape_w$}  {:<7}  {:>12}", t.name, shape(&t.dims), t.ggml_type.name(), t.size);
        let entry = by_type.entry(t.ggml_type.id()).or_insert((t.ggml_type, 0, 0));
        entry.1 += 1;
        entry.2 += t.size;
        elements += t.n_elements();
        bytes += t.size;
    }
    outln!(out, "total: {} tensors, {elements} elements, {bytes} bytes ({})", infos.len(), human_bytes(bytes));

    outln!(out, "\nby type:");
    outln!(out, "  {:<7}  {:>7}  {:>12}  {:>9}  {}", "type", "tensors", "bytes", "", "runs here");
    for (ty, n, b) in by_type.values() {
        let runs = if gpu_supports(*ty) { "yes" } else { "no" };
        outln!(out, "  {:<7}  {n:>7}  {b:>12}  {:>9}  {runs}", ty.name(), human_bytes(*b));
    }
}

fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut unit = 0;
    while v >= 1024.0 && unit + 1 < UNITS.len() {
        v /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[unit])
    }
}
