//! A client that disconnects mid-stream frees its slot (seen through /health), and shutdown ends
//! a stream in flight with an error event, then `serve` returns and the port is closed.

mod support;

use rwkv_server::ServerOptions;
use serde_json::json;
use support::{completion, next_line, start};

const MODEL: &str = "golden";

#[test]
fn a_disconnected_stream_frees_its_slot_and_shutdown_ends_the_streams_in_flight() {
    let options = ServerOptions { model_name: MODEL.into(), ..ServerOptions::default() };
    let test = "a_disconnected_stream_frees_its_slot_and_shutdown_ends_the_streams_in_flight";
    let Some(server) = start(test, options, 2) else { return };
    // Token 0 (end of text) banned: these streams end only when the client or the server ends them.
    let long = json!({"model": MODEL, "prompt": "Once", "max_tokens": 5000, "temperature": 1.0, "seed": 3,
                      "logit_bias": {"0": -100}});

    let results = server.calls(
        "sequential",
        &[
            json!({"kind": "disconnect", "args": long, "chunks": 2}),
            json!({"kind": "wait_running", "equals": 0, "timeout": 60}),
        ],
    );
    assert_eq!(results[0]["texts"].as_array().unwrap().len(), 2, "{}", results[0]);
    assert_eq!(results[0]["health_during"]["engine"]["running"], 1, "{}", results[0]);
    assert_eq!(results[1]["ok"], true, "the slot was not freed: {}", results[1]);
    let dropped = server.logs().into_iter().find(|r| r.path == "/v1/completions").expect("the request's log line");
    assert!(!dropped.completed, "{dropped:?}");
    assert!(dropped.completion_tokens.is_some_and(|n| (2..5000).contains(&n)), "{dropped:?}");

    // The freed slot serves the next request.
    let next = server.call(completion(json!({"model": MODEL, "prompt": "Hi", "max_tokens": 3, "temperature": 0})));
    assert_eq!(next["usage"]["completion_tokens"], 3, "{next}");

    // Shutdown while a stream runs: it ends with the server's error, then `serve` returns.
    let (mut child, mut lines) = server.call_in_background(json!({"kind": "long_stream", "args": long}));
    assert_eq!(next_line(&mut lines), json!({"progress": "first_chunk"}));
    let address = server.url.trim_start_matches("http://").to_string();
    server.shut_down().expect("serve returns Ok after shutdown");
    let ended = next_line(&mut lines);
    assert_eq!(ended["ok"], false, "{ended}");
    assert_eq!(ended["stream_error"]["code"], "shutting_down", "{ended}");
    assert!(child.wait().unwrap().success());
    assert!(std::net::TcpStream::connect(&address).is_err(), "{address} still accepts connections");
}
