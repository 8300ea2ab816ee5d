//! Every kind of bad request gets its 4xx status and an OpenAI error body, through the official
//! client where it can send the request and through raw HTTP (httpx) where it cannot; the server
//! answers a good request afterwards.

mod support;

use rwkv_server::ServerOptions;
use serde_json::{json, Value};
use support::{assert_error, chat, completion, start};

const MODEL: &str = "golden";
const KEY: &str = "sekret";

fn raw(method: &str, path: &str, body: &str, with_key: bool) -> Value {
    let mut headers = json!({"content-type": "application/json"});
    if with_key {
        headers["authorization"] = json!(format!("Bearer {KEY}"));
    }
    json!({"kind": "raw", "method": method, "path": path, "body": body, "headers": headers})
}

#[test]
fn malformed_requests_get_openai_errors_and_the_server_goes_on() {
    let options = ServerOptions {
        model_name: MODEL.into(),
        api_key: Some(KEY.into()),
        max_prompt_tokens: 64,
        max_output_tokens: 32,
        max_body_bytes: 64 << 10,
        ..ServerOptions::default()
    };
    let Some(server) = start("malformed_requests_get_openai_errors_and_the_server_goes_on", options, 2) else {
        return;
    };
    let text = |extra: Value| {
        let mut args = json!({"model": MODEL, "prompt": "Hello", "max_tokens": 2});
        args.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        completion(args)
    };
    let talk = |messages: Value| chat(json!({"model": MODEL, "messages": messages, "max_tokens": 2}));
    let invalid_utf8 = {
        let mut body = br#"{"model": "golden", "prompt": "caf"#.to_vec();
        body.extend([0xff, b'"', b'}']);
        let hex: String = body.iter().map(|b| format!("{b:02x}")).collect();
        json!({"kind": "raw", "method": "POST", "path": "/v1/completions", "body_hex": hex,
               "headers": {"authorization": format!("Bearer {KEY}")}})
    };
    let mut wrong_key = text(json!({}));
    wrong_key["api_key"] = json!("not-the-key");
    // (call, status, code, what)
    let cases: Vec<(Value, u16, Option<&str>, &str)> = vec![
        (
            raw("POST", "/v1/completions", r#"{"model": "golden", "prompt": "#, true),
            400,
            Some("invalid_json"),
            "truncated JSON",
        ),
        (raw("POST", "/v1/chat/completions", "", true), 400, Some("invalid_json"), "an empty body"),
        (invalid_utf8, 400, Some("invalid_utf8"), "invalid UTF-8"),
        (text(json!({"temperature": "hot"})), 422, Some("invalid_type"), "a string temperature"),
        (text(json!({"max_tokens": -3})), 422, Some("invalid_type"), "a negative max_tokens"),
        (
            raw("POST", "/v1/chat/completions", r#"{"model": "golden", "messages": "hi"}"#, true),
            422,
            Some("invalid_type"),
            "messages as a string",
        ),
        (raw("POST", "/v1/completions", r#"{"prompt": "hi"}"#, true), 422, Some("invalid_type"), "no model"),
        (talk(json!([])), 400, None, "no messages"),
        (talk(json!([{"role": "user", "content": ""}])), 400, None, "an empty message"),
        (talk(json!([{"role": "tool", "content": "x"}])), 400, None, "a tool message"),
        (
            talk(json!([{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "x"}}]}])),
            400,
            None,
            "an image part",
        ),
        (text(json!({"prompt": "word ".repeat(100)})), 400, Some("context_length_exceeded"), "a prompt over the limit"),
        (text(json!({"prompt": ""})), 400, None, "an empty prompt"),
        (text(json!({"prompt": [70000]})), 400, None, "a token outside the vocabulary"),
        (text(json!({"prompt": ["a", "b"]})), 400, Some("unsupported_value"), "two prompts"),
        (text(json!({"max_tokens": 1000})), 400, Some("max_tokens_too_large"), "max_tokens over the limit"),
        (text(json!({"max_tokens": 0})), 400, None, "max_tokens 0"),
        (text(json!({"n": 2})), 400, Some("unsupported_value"), "n = 2"),
        (text(json!({"logprobs": 2})), 400, Some("unsupported_value"), "logprobs"),
        (text(json!({"top_p": 1.5})), 400, None, "top_p 1.5"),
        (text(json!({"temperature": -1})), 400, None, "a negative temperature"),
        (text(json!({"stop": vec!["x"; 20]})), 400, None, "20 stop strings"),
        (text(json!({"logit_bias": {"5": 2.5}})), 400, Some("unsupported_value"), "a logit bias other than -100"),
        (text(json!({"logit_bias": {"70000": -100}})), 400, None, "a logit bias outside the vocabulary"),
        (text(json!({"model": "gpt-4"})), 404, Some("model_not_found"), "an unknown model"),
        (
            raw("POST", "/v1/completions", r#"{"model": "golden", "prompt": "hi"}"#, false),
            401,
            Some("invalid_api_key"),
            "no API key",
        ),
        (wrong_key, 401, Some("invalid_api_key"), "a wrong API key"),
        (
            raw(
                "POST",
                "/v1/completions",
                &format!(r#"{{"model": "golden", "prompt": "{}"}}"#, "a".repeat(100 << 10)),
                true,
            ),
            413,
            Some("request_too_large"),
            "a body over the limit",
        ),
        (raw("GET", "/v1/nothing", "", true), 404, Some("unknown_url"), "an unknown route"),
        (raw("GET", "/v1/completions", "", true), 405, Some("method_not_allowed"), "GET on a POST route"),
    ];
    let calls: Vec<Value> = cases.iter().map(|c| c.0.clone()).collect();
    let results = server.calls("sequential", &calls);
    for ((_, status, code, what), result) in cases.iter().zip(&results) {
        assert_error(result, *status, *code, what);
    }
    let named = |i: usize| results[i]["body"]["error"]["param"].clone();
    assert_eq!(named(3), "temperature");
    assert_eq!(named(7), "messages");
    assert_eq!(named(19), "top_p");

    // The server still answers, and nothing is left running.
    // (/health needs no key.)
    let idle = json!({"kind": "wait_running", "equals": 0, "timeout": 30});
    let good = server.calls("sequential", &[text(json!({})), idle]);
    assert_eq!(good[0]["ok"], true, "{}", good[0]);
    assert_eq!(good[0]["usage"]["completion_tokens"], 2);
    assert_eq!(good[1]["ok"], true, "{}", good[1]);
    let logs = server.logs();
    for status in [400, 401, 404, 405, 413, 422, 200] {
        assert!(logs.iter().any(|r| r.status == status), "no log line with status {status}: {logs:?}");
    }
    server.shut_down().unwrap();
}
