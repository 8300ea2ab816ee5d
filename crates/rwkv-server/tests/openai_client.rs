//! The server in-process on the golden model, driven by the official `openai` Python client:
//! completions and chat, streaming and not; stop strings; a continued conversation reusing the
//! cached state; 16 concurrent streams each getting exactly its single-stream tokens; every kind
//! of malformed request answered with its status and an OpenAI error body, the server answering
//! afterwards; a disconnected stream freeing its slot; shutdown ending a stream in flight.
//! (Greedy output equal to `rwkv-cli generate` is checked in rwkv-cli's tests/serve.rs.)

mod support;

use rwkv_model::tokenizer::Tokenizer;
use rwkv_server::ServerOptions;
use serde_json::{json, Value};
use support::{chat, completion, start};

const MODEL: &str = "golden";

fn options() -> ServerOptions {
    ServerOptions { model_name: MODEL.into(), ..ServerOptions::default() }
}

fn golden_tokenizer() -> Tokenizer {
    let file = rwkv_model::ModelFile::open(support::golden_model()).unwrap();
    Tokenizer::from_gguf(file.gguf()).unwrap()
}

fn ok(result: &Value, what: &str) -> (String, String, Value) {
    assert_eq!(result["ok"], true, "{what}: {result}");
    let text = result["text"].as_str().unwrap_or_else(|| panic!("{what}: no text: {result}")).to_string();
    let u = &result["usage"];
    let usage = json!([u["prompt_tokens"], u["completion_tokens"], u["total_tokens"]]);
    (text, result["finish_reason"].as_str().unwrap_or_default().to_string(), usage)
}

/// `usage` as [`ok`] gives it.
fn usage(prompt: usize, completion: usize) -> Value {
    json!([prompt, completion, prompt + completion])
}

#[test]
fn completions_and_chat_stream_and_not() {
    let Some(server) = start("completions_and_chat_stream_and_not", options(), 4) else { return };
    let tokenizer = golden_tokenizer();
    assert_eq!(server.call(json!({"kind": "models"})), json!({"ok": true, "ids": [MODEL]}));

    let prompt = "The capital of France is";
    let greedy = json!({"model": MODEL, "prompt": prompt, "max_tokens": 6, "temperature": 0});
    let mut streamed = greedy.clone();
    streamed["stream"] = json!(true);
    streamed["stream_options"] = json!({"include_usage": true});
    let results = server.calls("sequential", &[completion(greedy.clone()), completion(streamed.clone())]);
    let (text, finish, used) = ok(&results[0], "greedy completion");
    assert_eq!(results[0]["object"], "text_completion");
    assert_eq!(results[0]["model"], MODEL);
    assert_eq!((finish.as_str(), used), ("length", usage(tokenizer.encode(prompt).len(), 6)));
    let (stream_text, stream_finish, stream_usage) = ok(&results[1], "streamed completion");
    assert_eq!((&stream_text, &stream_finish), (&text, &finish), "the stream and the whole answer differ");
    assert_eq!(stream_usage, usage(tokenizer.encode(prompt).len(), 6));
    assert!(results[1]["chunks"].as_u64().unwrap() >= 1);

    // A stop string inside that text: the answer ends right before it, in both forms.
    let chars: Vec<(usize, char)> = text.char_indices().collect();
    let (at, _) = chars[chars.len() / 2];
    let stop: String = text[at..].chars().take(2).collect();
    let expected = &text[..text.find(&stop).unwrap()];
    let mut stopped = greedy.clone();
    stopped["stop"] = json!(["never appears", stop]);
    let mut stopped_stream = stopped.clone();
    stopped_stream["stream"] = json!(true);
    for result in server.calls("sequential", &[completion(stopped), completion(stopped_stream)]) {
        let (cut, finish, _) = ok(&result, "completion with a stop string");
        assert_eq!((cut.as_str(), finish.as_str()), (expected, "stop"), "stop {stop:?} in {text:?}");
    }

    // Chat through the model's template; the streamed answer equals the whole one.
    let messages = json!([{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hello"}]);
    let ask = json!({"model": MODEL, "messages": messages, "max_tokens": 5, "temperature": 0});
    let mut ask_stream = ask.clone();
    ask_stream["stream"] = json!(true);
    let results = server.calls("sequential", &[chat(ask.clone()), chat(ask_stream)]);
    let (answer, finish, used) = ok(&results[0], "chat");
    assert_eq!(results[0]["object"], "chat.completion");
    let chat_prompt = tokenizer.encode("System: Be brief.\n\nUser: Hello\n\nAssistant:");
    assert_eq!(used[0], chat_prompt.len());
    assert!(!answer.contains("\n\n"), "the answer runs past the turn's end: {answer:?}");
    let (stream_answer, stream_finish, _) = ok(&results[1], "streamed chat");
    assert_eq!((stream_answer, stream_finish), (answer.clone(), finish));
    assert_eq!(results[1]["roles"], json!(["assistant"]));
    assert_eq!(results[1]["object"], "chat.completion.chunk");

    // The conversation continued: its earlier part comes from the prefix cache.
    let before =
        server.call(json!({"kind": "raw", "method": "GET", "path": "/health"}))["body"]["engine"]["cache"].clone();
    let mut more = ask.clone();
    more["messages"] = json!([
        {"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hello"},
        {"role": "assistant", "content": answer}, {"role": "user", "content": "And then?"}
    ]);
    ok(&server.call(chat(more)), "the continued chat");
    let after =
        server.call(json!({"kind": "raw", "method": "GET", "path": "/health"}))["body"]["engine"]["cache"].clone();
    let reused = after["tokens_reused"].as_u64().unwrap() - before["tokens_reused"].as_u64().unwrap();
    assert_eq!(after["hits"].as_u64().unwrap(), before["hits"].as_u64().unwrap() + 1, "{before} → {after}");
    assert!(
        reused >= chat_prompt.len() as u64,
        "only {reused} tokens reused; the first turn had {}",
        chat_prompt.len()
    );

    // Sampling with a seed is reproducible.
    let seeded = json!({"model": MODEL, "prompt": "Once upon a time", "max_tokens": 4, "temperature": 1.0, "seed": 7});
    let twice = server.calls("sequential", &[completion(seeded.clone()), completion(seeded)]);
    assert_eq!(ok(&twice[0], "seeded").0, ok(&twice[1], "seeded again").0);

    // One log line per request, with its tokens.
    let logs = server.logs();
    let first = logs.iter().find(|r| r.path == "/v1/completions").unwrap();
    assert_eq!((first.method.as_str(), first.status), ("POST", 200));
    assert_eq!((first.prompt_tokens, first.completion_tokens), (Some(tokenizer.encode(prompt).len()), Some(6)));
    assert_eq!(first.finish.as_deref(), Some("length"));
    assert!(logs.iter().all(|r| r.completed), "{logs:?}");
    server.shut_down().unwrap();
}

#[test]
fn sixteen_concurrent_streams_each_get_their_single_stream_tokens() {
    let Some(server) = start("sixteen_concurrent_streams_each_get_their_single_stream_tokens", options(), 16) else {
        return;
    };
    let calls: Vec<Value> = (0..16)
        .map(|i| {
            completion(json!({
                "model": MODEL, "prompt": format!("Story number {i}:"), "max_tokens": 12,
                "temperature": 1.0, "top_p": 0.9, "seed": 1000 + i, "stream": true,
                "stream_options": {"include_usage": true},
            }))
        })
        .collect();
    let alone = server.calls("sequential", &calls);
    let together = server.calls("concurrent", &calls);
    for (i, (a, t)) in alone.iter().zip(&together).enumerate() {
        let (a, t) = (ok(a, "alone"), ok(t, "together"));
        assert_eq!(a, t, "client {i}: alone {a:?}, together {t:?}");
    }
    let health = server.call(json!({"kind": "raw", "method": "GET", "path": "/health"}));
    let peak = health["body"]["engine"]["peak_running"].as_u64().unwrap();
    assert!(peak >= 8, "the 16 clients never ran together (at most {peak} at once)");
    server.shut_down().unwrap();
}
