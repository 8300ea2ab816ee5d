//! The server in-process on the golden model, listening on 127.0.0.1 (any free port), and the
//! official `openai` Python client driving it (tests/client/openai_driver.py).
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};

use gpu_core::{ContextOptions, Gpu};
use rwkv_model::batch::{Batch, BatchOptions};
use rwkv_model::gpu::{Model, ModelOptions};
use rwkv_model::tokenizer::Tokenizer;
use rwkv_model::ModelFile;
use rwkv_server::{RequestLog, Server, ServerError, ServerOptions, TextModel};
use serde_json::{json, Value};
use test_data::Requirement;

pub const DRIVER: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/client/openai_driver.py");

/// The golden F16 model's file.
pub fn golden_model() -> PathBuf {
    test_data::golden("model-f16.gguf")
}

/// Python with the `openai` package, or why not.
pub fn python_with_openai() -> Result<(), String> {
    let out = Command::new("python3")
        .args(["-c", "import openai"])
        .output()
        .map_err(|e| format!("cannot run python3: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!("python3 cannot import openai: {}", String::from_utf8_lossy(&out.stderr).trim()))
    }
}

/// A running server and what it logged.
pub struct Harness {
    pub url: String,
    pub options: ServerOptions,
    pub logs: Arc<Mutex<Vec<RequestLog>>>,
    runtime: tokio::runtime::Runtime,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    served: Option<tokio::task::JoinHandle<Result<(), ServerError>>>,
}

/// Starts a server on the golden model with `options` and a batch of `max_batch`; `None` (a
/// visible skip, or a failure where `RWKV_REQUIRE` lists `openai-py`) without the client.
pub fn start(test: &str, options: ServerOptions, max_batch: usize) -> Option<Harness> {
    test_data::require(Requirement::OpenaiPy, test, python_with_openai())?;
    let file = ModelFile::open(golden_model()).expect("the golden model");
    let gpu = Arc::new(Gpu::new(&ContextOptions::default()).expect("a GPU adapter"));
    let model = Arc::new(Model::load(gpu, &file, &ModelOptions::default(), &mut |_| {}).expect("loading"));
    let batch =
        Batch::new(model, BatchOptions { cache_bytes: 64 << 20, ..BatchOptions::new(max_batch) }).expect("a batch");
    let tokenizer = Tokenizer::from_gguf(file.gguf()).expect("the golden model's tokenizer");
    let text = TextModel::from_model_file(&file, tokenizer).expect("the text model");
    let logs = Arc::new(Mutex::new(Vec::new()));
    let sink = logs.clone();
    let server = Server::new(
        batch,
        text,
        options.clone(),
        Arc::new(move |record: &RequestLog| sink.lock().unwrap().push(record.clone())),
    )
    .expect("the server");
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let listener = runtime.block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let served = runtime.spawn(server.serve(listener, async move {
        let _ = stopped.await;
    }));
    Some(Harness { url, options, logs, runtime, stop: Some(stop), served: Some(served) })
}

impl Harness {
    /// Runs `calls` through the driver (`mode`: sequential or concurrent); one result each.
    pub fn calls(&self, mode: &str, calls: &[Value]) -> Vec<Value> {
        let mut child = self.driver();
        let spec = json!({"mode": mode, "calls": calls});
        child.stdin.take().unwrap().write_all(spec.to_string().as_bytes()).unwrap();
        let out = child.wait_with_output().unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "the driver failed:\n{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
        let results: Vec<Value> = stdout.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        assert_eq!(results.len(), calls.len(), "{stdout}");
        results
    }

    pub fn call(&self, call: Value) -> Value {
        self.calls("sequential", &[call]).pop().unwrap()
    }

    /// The driver, started (stdin open, stdout piped).
    pub fn driver(&self) -> Child {
        let mut command = Command::new("python3");
        command.arg(DRIVER).env("RWKV_SERVER_URL", &self.url);
        if let Some(key) = &self.options.api_key {
            command.env("RWKV_API_KEY", key);
        }
        command.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("python3")
    }

    /// Starts one call without waiting; its output lines come from the returned reader.
    pub fn call_in_background(&self, call: Value) -> (Child, BufReader<std::process::ChildStdout>) {
        let mut child = self.driver();
        let spec = json!({"mode": "sequential", "calls": [call]});
        child.stdin.take().unwrap().write_all(spec.to_string().as_bytes()).unwrap();
        let stdout = BufReader::new(child.stdout.take().unwrap());
        (child, stdout)
    }

    /// The request records so far.
    pub fn logs(&self) -> Vec<RequestLog> {
        self.logs.lock().unwrap().clone()
    }

    /// Triggers shutdown and waits for `serve` to return.
    pub fn shut_down(mut self) -> Result<(), ServerError> {
        let _ = self.stop.take().unwrap().send(());
        let served = self.served.take().unwrap();
        self.runtime.block_on(served).expect("serve's task")
    }
}

/// The next JSON line of a background call.
pub fn next_line(reader: &mut BufReader<std::process::ChildStdout>) -> Value {
    let mut line = String::new();
    reader.read_line(&mut line).unwrap();
    serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line:?}"))
}

/// A completion call.
pub fn completion(args: Value) -> Value {
    json!({"kind": "completion", "args": args})
}

/// A chat call.
pub fn chat(args: Value) -> Value {
    json!({"kind": "chat", "args": args})
}

/// Asserts an OpenAI error answer: the status, the code where given, and a body with every
/// field of `{"error": {"message", "type", "param", "code"}}`.
pub fn assert_error(result: &Value, status: u16, code: Option<&str>, what: &str) {
    let got = result["status"].as_u64().unwrap_or_else(|| panic!("{what}: no HTTP error: {result}"));
    assert_eq!(got, status as u64, "{what}: {result}");
    let error = &result["body"]["error"];
    for field in ["message", "type", "param", "code"] {
        assert!(error.get(field).is_some(), "{what}: the error lacks {field}: {result}");
    }
    assert!(error["message"].as_str().is_some_and(|m| !m.is_empty()), "{what}: {result}");
    if let Some(code) = code {
        assert_eq!(error["code"], code, "{what}: {result}");
    }
}
