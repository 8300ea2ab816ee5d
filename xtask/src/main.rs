//! Project chores: `cargo xtask validate-shaders`.

mod shaders;

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("validate-shaders") => shaders::validate_all(true),
        _ => {
            eprintln!("usage: cargo xtask validate-shaders");
            std::process::exit(2);
        }
    }
}
