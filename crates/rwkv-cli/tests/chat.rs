//! `rwkv-cli chat` driven through stdin: turns, /retry, /save, /reset, /load, bad commands, /quit.

mod support;

use support::{cli_with_input, golden, tmp};

#[test]
fn a_scripted_conversation() {
    let state = tmp("chat.state");
    let s = state.to_str().unwrap();
    let script = format!(
        "Hello there\n/retry\n/save {s}\n/reset\n/retry\n/load {s}\n/load {}\n/bogus\nHow are you?\n/quit\nnever read\n",
        golden("prompt.txt")
    );
    let run =
        cli_with_input(&["chat", "--model", &golden("model-f16.gguf"), "--max-tokens", "5", "--seed", "1"], &script)
            .ok();
    // Three answers: the first, its retry, and the last turn.
    assert_eq!(run.stdout.matches("Assistant:").count(), 3, "stdout:\n{}\nstderr:\n{}", run.stdout, run.stderr);
    for needle in [
        &format!("[state saved to {s}]"),
        "[conversation reset]",
        "[nothing to retry]",
        &format!("[state loaded from {s}]"),
        "[could not load: ",
        "[unknown command /bogus",
        "[prefill ",
    ] {
        assert!(run.stderr.contains(needle), "stderr lacks {needle:?}:\n{}", run.stderr);
    }
    // The saved state: header plus f32 data of 2 layers, C = 128, head size 64.
    let bytes = std::fs::metadata(&state).unwrap().len();
    assert_eq!(bytes, 24 + 4 * (2 * 2 * 128 + 2 * 128 * 64));
    std::fs::remove_file(&state).unwrap();
}

#[test]
fn end_of_input_ends_the_chat() {
    let run = cli_with_input(&["chat", "--model", &golden("model-q8_0.gguf"), "--max-tokens", "3"], "Hi\n").ok();
    assert_eq!(run.stdout.matches("Assistant:").count(), 1, "{}", run.stdout);
}

/// SIGINT (Ctrl-C) during an answer stops that answer; the chat goes on and quits normally.
#[cfg(unix)]
#[test]
fn ctrl_c_stops_the_answer_not_the_program() {
    use std::io::{Read, Write};
    use std::process::{Command, Stdio};

    let mut child = Command::new(env!("CARGO_BIN_EXE_rwkv-cli"))
        .args(["chat", "--model", &golden("model-f16.gguf"), "--max-tokens", "100000", "--seed", "3"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(b"Tell me a long story\n").unwrap();
    stdin.flush().unwrap();
    // Wait until the answer is streaming.
    let mut stdout = child.stdout.take().unwrap();
    let mut seen = Vec::new();
    let mut buf = [0u8; 256];
    while !String::from_utf8_lossy(&seen).contains("Assistant:") {
        let n = stdout.read(&mut buf).unwrap();
        assert!(n > 0, "chat ended before answering");
        seen.extend_from_slice(&buf[..n]);
    }
    std::thread::sleep(std::time::Duration::from_millis(500));
    let kill = Command::new("kill").args(["-INT", &child.id().to_string()]).status().unwrap();
    assert!(kill.success());
    stdin.write_all(b"/quit\n").unwrap();
    drop(stdin);
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("[stopped]"), "{stderr}");
}
