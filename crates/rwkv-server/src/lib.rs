//! An OpenAI-compatible HTTP server on rwkv-model's batched engine: `GET /v1/models`,
//! `POST /v1/completions`, `POST /v1/chat/completions` (streaming as server-sent events or not)
//! and `GET /health`, on tokio and axum.
//!
//! A program embeds it in three steps: make the [`Engine`] (`rwkv_model::batch::Batch`) and the
//! [`TextModel`] (tokenizer, chat template), build a [`Server`] with [`ServerOptions`] and a
//! [`LogSink`] (one [`RequestLog`] per request; this library prints nothing), and
//! [`Server::serve`] a listener until a shutdown future (e.g. [`shutdown_signal`]) completes.
//!
//! One engine thread owns the batch (modules `engine`, `scheduler`): concurrent requests decode
//! together, up to the batch's size; more wait in a bounded queue; beyond it a request gets 503.
//! A client that disconnects frees its sequence at the next step. On shutdown the server stops
//! accepting, ends every stream in flight (an error event, then `[DONE]`) and returns.

#![deny(missing_docs)]

mod app;
mod batch_engine;
mod endpoints;
mod engine;
mod error;
mod generation;
mod json_body;
mod openai;
mod request_log;
mod respond;
mod routes;
mod scheduler;
mod stop;
mod template;
mod text_model;
mod token_memory;

use std::future::Future;
use std::sync::Arc;

pub use app::ServerOptions;
pub use engine::{CacheFigures, Engine, EngineHandle, EngineStats};
pub use error::{ApiError, ServerError};
pub use request_log::{LogSink, RequestLog};
pub use stop::StopMatcher;
pub use template::{ChatMessage, ChatTemplate};
pub use text_model::TextModel;

use app::App;
use engine::EngineThread;

/// A server ready to serve: its engine thread runs already.
pub struct Server {
    app: Arc<App>,
    thread: EngineThread,
    log: LogSink,
}

impl Server {
    /// Starts the engine thread on `engine`.
    pub fn new<E: Engine>(
        engine: E,
        text: TextModel,
        options: ServerOptions,
        log: LogSink,
    ) -> Result<Server, ServerError> {
        if options.model_name.is_empty() {
            return Err(ServerError::Options("the model name is empty".into()));
        }
        if options.max_prompt_tokens == 0 || options.max_output_tokens == 0 {
            return Err(ServerError::Options("the prompt and output token limits must be at least 1".into()));
        }
        let (handle, thread) = EngineHandle::spawn(engine, options.max_queue)?;
        Ok(Server { app: Arc::new(App::new(handle, text, options)), thread, log })
    }

    /// The engine's handle (figures, shutdown).
    pub fn engine(&self) -> &EngineHandle {
        &self.app.engine
    }

    /// The routes, for a program that serves them itself.
    pub fn router(&self) -> axum::Router {
        routes::router(self.app.clone(), self.log.clone())
    }

    /// Serves until `shutdown` completes; then refuses new requests, ends the streams in flight,
    /// waits for the open connections to finish and for the engine thread to end.
    pub async fn serve(
        self,
        listener: tokio::net::TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), ServerError> {
        let engine = self.app.engine.clone();
        let stop = async move {
            shutdown.await;
            engine.shutdown();
        };
        let served = axum::serve(listener, self.router()).with_graceful_shutdown(stop).await;
        self.app.engine.shutdown();
        let thread = self.thread;
        let joined =
            tokio::task::spawn_blocking(move || thread.join()).await.map_err(|_| ServerError::EngineCrashed)?;
        served?;
        joined
    }
}

/// Completes on SIGINT (Ctrl-C) or, on Unix, SIGTERM.
pub async fn shutdown_signal() {
    let interrupt = async {
        // Without a signal handler there is nothing to wait for: never complete.
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = interrupt => {}
        () = terminate => {}
    }
}
