//! `rwkv-cli loadtest`: N concurrent streaming clients against an OpenAI-compatible server for a
//! while, then aggregate tok/s, time to first token and time between tokens (p50/p99), requests
//! completed and lost.
//!
//! Each client sends streaming `/v1/completions` requests one after another (each prompt its own:
//! the client's and the request's number are appended, so the prefix cache cannot answer it whole)
//! until the duration is over; requests then in flight finish and count. Time to first token runs
//! from sending the request to the first chunk with text; time between tokens is the gap between
//! consecutive text chunks (one chunk per token, except where a UTF-8 character or a possible stop
//! string spans tokens). Tokens are the servers' `usage.completion_tokens`
//! (`stream_options.include_usage`). A request is lost when it gets no 200, its stream carries an
//! error or ends without `[DONE]`, or it exceeds `--request-timeout`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use clap::Args as ClapArgs;
use futures_util::StreamExt;
use serde::Serialize;
use serde_json::{json, Value};

#[derive(ClapArgs)]
pub struct Args {
    /// The server's base URL (http).
    #[arg(long, default_value = "http://127.0.0.1:8000")]
    pub url: String,
    /// Concurrent streaming clients.
    #[arg(long, default_value_t = 64)]
    pub clients: usize,
    /// Seconds during which clients start new requests.
    #[arg(long, default_value_t = 120.0)]
    pub duration: f64,
    /// `max_tokens` of each request.
    #[arg(long, default_value_t = 128)]
    pub max_tokens: u32,
    /// The text each prompt starts with.
    #[arg(long, default_value = "The history of the printing press begins")]
    pub prompt: String,
    /// `temperature` of each request (seeds are fixed per client and request).
    #[arg(long, default_value_t = 1.0)]
    pub temperature: f32,
    /// The model name to ask for (default: the first of the server's /v1/models).
    #[arg(long)]
    pub model: Option<String>,
    /// Sent as `Authorization: Bearer KEY`.
    #[arg(long)]
    pub api_key: Option<String>,
    /// Seconds after which a request counts as lost.
    #[arg(long, default_value_t = 600.0)]
    pub request_timeout: f64,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
}

/// What one request measured.
#[derive(Default)]
struct RequestFigures {
    /// Seconds to the first text chunk.
    first_token: Option<f64>,
    /// Seconds between consecutive text chunks.
    gaps: Vec<f64>,
    completion_tokens: u64,
}

#[derive(Serialize)]
struct Report {
    url: String,
    model: String,
    clients: usize,
    duration_s: f64,
    wall_s: f64,
    max_tokens: u32,
    requests_completed: u64,
    requests_lost: u64,
    completion_tokens: u64,
    aggregate_tok_s: f64,
    ttft_p50_s: f64,
    ttft_p99_s: f64,
    between_tokens_p50_s: f64,
    between_tokens_p99_s: f64,
    /// The first few reasons requests were lost.
    errors: Vec<String>,
}

pub fn run(args: Args) -> Result<()> {
    if args.clients == 0 || args.duration <= 0.0 {
        bail!("--clients and --duration must be positive");
    }
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().context("starting tokio")?;
    let report = runtime.block_on(load(&args))?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        println!(
            "{} clients for {:.0} s against {} ({}), max_tokens {}: {} requests completed, {} lost in {:.1} s",
            report.clients,
            report.duration_s,
            report.url,
            report.model,
            report.max_tokens,
            report.requests_completed,
            report.requests_lost,
            report.wall_s
        );
        println!("{} completion tokens: {:.1} tok/s aggregate", report.completion_tokens, report.aggregate_tok_s);
        println!("time to first token: p50 {:.3} s, p99 {:.3} s", report.ttft_p50_s, report.ttft_p99_s);
        println!(
            "time between tokens: p50 {:.1} ms, p99 {:.1} ms",
            report.between_tokens_p50_s * 1e3,
            report.between_tokens_p99_s * 1e3
        );
        for e in &report.errors {
            println!("lost: {e}");
        }
    }
    Ok(())
}

async fn load(args: &Args) -> Result<Report> {
    let base = args.url.trim_end_matches('/').to_string();
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(args.clients)
        .timeout(Duration::from_secs_f64(args.request_timeout))
        .build()?;
    let model = match &args.model {
        Some(m) => m.clone(),
        None => first_model(&client, &base, args.api_key.as_deref()).await?,
    };
    let start = Instant::now();
    let deadline = start + Duration::from_secs_f64(args.duration);
    let shared = Arc::new((client, base.clone(), model.clone(), args.api_key.clone()));
    let mut tasks = Vec::new();
    for c in 0..args.clients {
        let shared = shared.clone();
        let (prompt, max_tokens, temperature) = (args.prompt.clone(), args.max_tokens, args.temperature);
        tasks.push(tokio::spawn(async move {
            let (client, base, model, key) = &*shared;
            let mut done: Vec<Result<RequestFigures, String>> = Vec::new();
            let mut n = 0u64;
            while Instant::now() < deadline {
                let body = json!({
                    "model": model,
                    "prompt": format!("{prompt} (client {c}, request {n})"),
                    "max_tokens": max_tokens,
                    "temperature": temperature,
                    "seed": (c as u64) << 32 | n,
                    "stream": true,
                    "stream_options": {"include_usage": true},
                });
                done.push(one_request(client, base, key.as_deref(), &body).await);
                n += 1;
            }
            done
        }));
    }
    let mut results = Vec::new();
    for task in tasks {
        results.extend(task.await.context("a client task")?);
    }
    let wall = start.elapsed().as_secs_f64();
    let (mut ttft, mut gaps, mut tokens, mut completed, mut errors) = (Vec::new(), Vec::new(), 0, 0, Vec::new());
    let mut lost = 0;
    for r in results {
        match r {
            Ok(f) => {
                completed += 1;
                tokens += f.completion_tokens;
                ttft.extend(f.first_token);
                gaps.extend(f.gaps);
            }
            Err(e) => {
                lost += 1;
                if errors.len() < 10 {
                    errors.push(e);
                }
            }
        }
    }
    Ok(Report {
        url: base,
        model,
        clients: args.clients,
        duration_s: args.duration,
        wall_s: wall,
        max_tokens: args.max_tokens,
        requests_completed: completed,
        requests_lost: lost,
        completion_tokens: tokens,
        aggregate_tok_s: tokens as f64 / wall,
        ttft_p50_s: percentile(&mut ttft, 50.0),
        ttft_p99_s: percentile(&mut ttft, 99.0),
        between_tokens_p50_s: percentile(&mut gaps, 50.0),
        between_tokens_p99_s: percentile(&mut gaps, 99.0),
        errors,
    })
}

async fn first_model(client: &reqwest::Client, base: &str, key: Option<&str>) -> Result<String> {
    let mut request = client.get(format!("{base}/v1/models"));
    if let Some(key) = key {
        request = request.bearer_auth(key);
    }
    let response = request.send().await.with_context(|| format!("GET {base}/v1/models"))?;
    let status = response.status();
    let text = response.text().await?;
    if !status.is_success() {
        bail!("GET {base}/v1/models: {status}: {text}");
    }
    let list: Value = serde_json::from_str(&text).context("the model list is not JSON")?;
    list["data"][0]["id"].as_str().map(str::to_string).context("the server lists no model")
}

/// One streaming request, measured; `Err` says why it was lost.
async fn one_request(
    client: &reqwest::Client,
    base: &str,
    key: Option<&str>,
    body: &Value,
) -> Result<RequestFigures, String> {
    let sent = Instant::now();
    let mut request = client.post(format!("{base}/v1/completions")).json(body);
    if let Some(key) = key {
        request = request.bearer_auth(key);
    }
    let response = request.send().await.map_err(|e| format!("request: {e}"))?;
    let status = response.status();
    if !status.is_success() {
        let text = response.text().await.unwrap_or_default();
        return Err(format!("HTTP {status}: {text}"));
    }
    let mut figures = RequestFigures::default();
    let mut last_text: Option<Instant> = None;
    let mut buffer = Vec::new();
    let mut stream = response.bytes_stream();
    while let Some(bytes) = stream.next().await {
        buffer.extend_from_slice(&bytes.map_err(|e| format!("reading the stream: {e}"))?);
        // Events end with a blank line.
        while let Some(end) = buffer.windows(2).position(|w| w == b"\n\n") {
            let event: Vec<u8> = buffer.drain(..end + 2).collect();
            let event = String::from_utf8(event).map_err(|_| "an event that is not UTF-8".to_string())?;
            for line in event.lines() {
                let Some(data) = line.strip_prefix("data: ") else { continue };
                if data == "[DONE]" {
                    return Ok(figures);
                }
                let chunk: Value = serde_json::from_str(data).map_err(|e| format!("a chunk that is not JSON: {e}"))?;
                if !chunk["error"].is_null() {
                    return Err(format!("error event: {}", chunk["error"]));
                }
                if let Some(n) = chunk["usage"]["completion_tokens"].as_u64() {
                    figures.completion_tokens = n;
                }
                if chunk["choices"][0]["text"].as_str().is_some_and(|t| !t.is_empty()) {
                    let now = Instant::now();
                    match last_text {
                        None => figures.first_token = Some((now - sent).as_secs_f64()),
                        Some(last) => figures.gaps.push((now - last).as_secs_f64()),
                    }
                    last_text = Some(now);
                }
            }
        }
    }
    Err("the stream ended without [DONE]".into())
}

/// The nearest-rank percentile (0 for no values).
fn percentile(values: &mut [f64], p: f64) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    values.sort_by(f64::total_cmp);
    let rank = ((p / 100.0) * values.len() as f64).ceil() as usize;
    values[rank.clamp(1, values.len()) - 1]
}

#[cfg(test)]
mod tests {
    use super::percentile;

    #[test]
    fn nearest_rank_percentiles() {
        let mut v: Vec<f64> = (1..=100).rev().map(f64::from).collect();
        assert_eq!(
            (percentile(&mut v, 50.0), percentile(&mut v, 99.0), percentile(&mut v, 100.0)),
            (50.0, 99.0, 100.0)
        );
        assert_eq!(percentile(&mut [3.0], 99.0), 3.0);
        assert_eq!(percentile(&mut [], 50.0), 0.0);
    }
}
