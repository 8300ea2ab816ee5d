//! `rwkv-cli serve` as a program: its options, greedy answers through the official `openai`
//! client identical to `rwkv-cli generate --temperature 0`, one log line per request, and SIGTERM
//! ending it with exit code 0.

mod support;

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use serde_json::{json, Value};
use support::{cli, golden};
use test_data::Requirement;

/// The openai client driver of rwkv-server's tests.
const DRIVER: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../rwkv-server/tests/client/openai_driver.py");

fn python_with_openai() -> Result<(), String> {
    let out = Command::new("python3").args(["-c", "import openai"]).output().map_err(|e| format!("python3: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!("python3 cannot import openai: {}", String::from_utf8_lossy(&out.stderr).trim()))
    }
}

/// A `rwkv-cli serve` process, with its stderr lines arriving on `lines`.
struct Serving {
    child: Child,
    url: String,
    lines: mpsc::Receiver<String>,
}

fn serve(args: &[&str]) -> Serving {
    let mut child = Command::new(env!("CARGO_BIN_EXE_rwkv-cli"))
        .arg("serve")
        .args(args)
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .expect("running rwkv-cli serve");
    let stderr = BufReader::new(child.stderr.take().unwrap());
    let (send, lines) = mpsc::channel();
    std::thread::spawn(move || {
        for line in stderr.lines().map_while(Result::ok) {
            if send.send(line).is_err() {
                break;
            }
        }
    });
    loop {
        match lines.recv_timeout(Duration::from_secs(300)) {
            Ok(line) => {
                if let Some((_, rest)) = line.split_once("on http://") {
                    let address = rest.split_whitespace().next().unwrap_or_default();
                    return Serving { child, url: format!("http://{address}"), lines };
                }
            }
            Err(e) => {
                let _ = child.kill();
                let status = child.wait();
                panic!("serve printed no address ({e}); it ended with {status:?}");
            }
        }
    }
}

fn driver(url: &str, calls: &[Value]) -> Vec<Value> {
    let mut child = Command::new("python3")
        .arg(DRIVER)
        .env("RWKV_SERVER_URL", url)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3");
    let spec = json!({"mode": "sequential", "calls": calls});
    child.stdin.take().unwrap().write_all(spec.to_string().as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "the driver failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

#[test]
fn serve_help_names_the_options_of_the_issue() {
    let help = cli(&["serve", "--help"]).ok().stdout;
    for option in ["--model", "--host", "--port", "--max-batch", "--api-key", "--model-name"] {
        assert!(help.contains(option), "serve --help lacks {option}:\n{help}");
    }
    assert!(help.contains("[default: 127.0.0.1]") && help.contains("[default: 8000]"), "{help}");
}

#[test]
fn greedy_answers_equal_generate_and_sigterm_exits_zero() {
    let test = "greedy_answers_equal_generate_and_sigterm_exits_zero";
    if test_data::require(Requirement::OpenaiPy, test, python_with_openai()).is_none() {
        return;
    }
    let model = golden("model-f16.gguf");
    let prompt = std::fs::read_to_string(golden("prompt.txt")).unwrap();
    let generated =
        cli(&["generate", "--model", &model, "--prompt", &prompt, "--max-tokens", "8", "--temperature", "0"]).ok();
    let expected = generated.stdout.strip_suffix('\n').unwrap();

    let server = serve(&["--model", &model, "--port", "0", "--model-name", "golden", "--max-batch", "2"]);
    let request = json!({"model": "golden", "prompt": prompt, "max_tokens": 8, "temperature": 0});
    let mut streamed = request.clone();
    streamed["stream"] = json!(true);
    let results = driver(
        &server.url,
        &[json!({"kind": "completion", "args": request}), json!({"kind": "completion", "args": streamed})],
    );
    for result in &results {
        assert_eq!(result["ok"], true, "{result}");
        assert_eq!(result["text"], expected, "the server's greedy answer differs from generate's");
        assert_eq!(result["finish_reason"], "length");
    }

    let kill = Command::new("kill").args(["-TERM", &server.child.id().to_string()]).status().unwrap();
    assert!(kill.success());
    let (done, waited) = mpsc::channel();
    let mut child = server.child;
    std::thread::spawn(move || done.send(child.wait()).unwrap());
    let status = waited.recv_timeout(Duration::from_secs(60)).expect("serve did not stop on SIGTERM").unwrap();
    assert_eq!(status.code(), Some(0), "serve's exit status after SIGTERM");
    // All of stderr, to its end.
    let log: Vec<String> = server.lines.iter().collect();
    let requests: Vec<&String> = log.iter().filter(|l| l.starts_with("POST /v1/completions")).collect();
    assert_eq!(requests.len(), 2, "one log line per request: {log:?}");
    for line in requests {
        assert!(
            line.contains(" 200 ") && line.contains("completion_tokens=8") && line.contains("finish=length"),
            "{line}"
        );
    }
    assert!(log.iter().any(|l| l == "stopped"), "{log:?}");
}
