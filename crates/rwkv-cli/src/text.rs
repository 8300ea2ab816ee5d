//! Prompt input.

use std::path::Path;

use anyhow::{bail, Context, Result};

/// The prompt from `--prompt` or `--prompt-file`: non-empty, valid UTF-8 (a bad file is named with the
/// byte offset of the first invalid sequence).
pub fn read_prompt(text: Option<&str>, file: Option<&Path>) -> Result<String> {
    let prompt = match (text, file) {
        (Some(t), None) => t.to_string(),
        (None, Some(path)) => {
            let bytes = std::fs::read(path).with_context(|| format!("reading the prompt file {}", path.display()))?;
            match String::from_utf8(bytes) {
                Ok(s) => s,
                Err(e) => {
                    let at = e.utf8_error().valid_up_to();
                    bail!(
                        "the prompt file {} is not valid UTF-8: invalid byte sequence at byte offset {at} (0x{:02x})",
                        path.display(),
                        e.as_bytes()[at]
                    )
                }
            }
        }
        (Some(_), Some(_)) => bail!("give --prompt or --prompt-file, not both"),
        (None, None) => bail!("give a prompt with --prompt TEXT or --prompt-file FILE"),
    };
    if prompt.is_empty() {
        bail!("the prompt is empty; RWKV needs at least one token to start from");
    }
    Ok(prompt)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prompt_errors() {
        assert!(read_prompt(Some(""), None).unwrap_err().to_string().contains("empty"));
        assert!(read_prompt(None, None).is_err());
        let path = std::env::temp_dir().join(format!("rwkv-cli-bad-utf8-{}.txt", std::process::id()));
        std::fs::write(&path, b"ok \xff rest").unwrap();
        let e = read_prompt(None, Some(&path)).unwrap_err().to_string();
        assert!(e.contains("byte offset 3") && e.contains(&path.display().to_string()), "{e}");
        std::fs::remove_file(&path).unwrap();
    }
}
