//! One log line per request, handed to the embedding program's callback once the response body
//! has ended (or the client has gone): method, path, status, tokens, how it finished, time.
//!
//! A middleware puts a [`LogSlot`] into each request; the generation handlers fill in the
//! tokens and the finish as they go; the response body is wrapped so that the record is sent
//! when it is done, streaming responses included.

use std::fmt;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;
use http_body::{Frame, SizeHint};

/// Receives each request's record (the embedding program prints or stores it).
pub type LogSink = Arc<dyn Fn(&RequestLog) + Send + Sync>;

/// What happened to one request.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RequestLog {
    /// The HTTP method.
    pub method: String,
    /// The path (no query).
    pub path: String,
    /// The response's HTTP status.
    pub status: u16,
    /// The prompt's tokens (generation requests that got that far).
    pub prompt_tokens: Option<usize>,
    /// Tokens generated (generation requests that started).
    pub completion_tokens: Option<usize>,
    /// `stop`, `length`, or the error's code.
    pub finish: Option<String>,
    /// From the request's arrival to the end of its response body.
    pub duration: Duration,
    /// False when the client went away before the body ended.
    pub completed: bool,
}

impl fmt::Display for RequestLog {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {} {}", self.method, self.path, self.status)?;
        if let Some(n) = self.prompt_tokens {
            write!(f, " prompt_tokens={n}")?;
        }
        if let Some(n) = self.completion_tokens {
            write!(f, " completion_tokens={n}")?;
        }
        if let Some(finish) = &self.finish {
            write!(f, " finish={finish}")?;
        }
        if !self.completed {
            write!(f, " client_disconnected")?;
        }
        write!(f, " {:.3}s", self.duration.as_secs_f64())
    }
}

/// The handler's part of a request's record.
#[derive(Clone, Default)]
pub struct LogSlot(Arc<Mutex<RequestLog>>);

impl LogSlot {
    fn update(&self, f: impl FnOnce(&mut RequestLog)) {
        f(&mut self.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner()));
    }

    pub fn prompt_tokens(&self, n: usize) {
        self.update(|r| r.prompt_tokens = Some(n));
    }

    pub fn completion_tokens(&self, n: usize) {
        self.update(|r| r.completion_tokens = Some(n));
    }

    pub fn finish(&self, finish: &str) {
        self.update(|r| r.finish = Some(finish.to_string()));
    }

    fn take(&self) -> RequestLog {
        std::mem::take(&mut self.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner()))
    }
}

/// The middleware: gives the request its slot, then wraps the response body.
pub async fn log_requests(State(sink): State<LogSink>, mut request: Request, next: Next) -> Response {
    let start = Instant::now();
    let slot = LogSlot::default();
    let (method, path) = (request.method().to_string(), request.uri().path().to_string());
    request.extensions_mut().insert(slot.clone());
    let response = next.run(request).await;
    let status = response.status().as_u16();
    slot.update(|r| {
        r.method = method;
        r.path = path;
        r.status = status;
    });
    let (parts, body) = response.into_parts();
    let body = LoggedBody { inner: body, pending: Some(Pending { slot, sink, start }) };
    Response::from_parts(parts, Body::new(body))
}

struct Pending {
    slot: LogSlot,
    sink: LogSink,
    start: Instant,
}

impl Pending {
    fn send(self, completed: bool) {
        let mut record = self.slot.take();
        record.duration = self.start.elapsed();
        record.completed = completed;
        (self.sink)(&record);
    }
}

/// A response body that sends its request's record when it ends or is dropped.
struct LoggedBody {
    inner: Body,
    pending: Option<Pending>,
}

impl http_body::Body for LoggedBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        if let Poll::Ready(None) = polled {
            if let Some(pending) = self.pending.take() {
                pending.send(true);
            }
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

impl Drop for LoggedBody {
    fn drop(&mut self) {
        if let Some(pending) = self.pending.take() {
            // hyper may drop a body it has read to the end without polling past its end.
            let completed = http_body::Body::is_end_stream(&self.inner);
            pending.send(completed);
        }
    }
}
