//! `rwkv-cli chat`: an interactive conversation in the RWKV World format
//! (`User: ...\n\nAssistant: ...\n\n`). The state carries across turns, so only the new turn is
//! fed. Commands: /retry, /reset, /save FILE, /load FILE, /quit. Ctrl-C stops the current answer.

use std::io::{BufRead, Write};
use std::path::{Path as FsPath, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, Result};
use clap::Args as ClapArgs;
use rwkv_model::gpu::{Logits, SamplerConfig, State};
use rwkv_server::StopMatcher;

use crate::device::DeviceArgs;
use crate::generator::Generator;
use crate::loading::{self, Loaded, PathArgs};
use crate::sampling_args::{self, SamplingArgs};

/// The end of a turn in the chat format.
const TURN_END: &str = "\n\n";

const HELP: &str = "commands: /retry (answer the last message again), /reset (forget the conversation), \
                    /save FILE, /load FILE (the conversation state), /quit (or Ctrl-D); Ctrl-C stops an answer";

#[derive(ClapArgs)]
#[command(after_help = "Sampling defaults are ChatRWKV's chat demo: --temperature 1.0 --top-p 0.3 \
                        --presence-penalty 0.5 --frequency-penalty 0.5 --penalty-decay 0.996; token 0 is banned \
                        and an answer ends at a blank line.")]
pub struct Args {
    /// The GGUF model file.
    #[arg(long)]
    pub model: PathBuf,
    /// The most tokens of one answer.
    #[arg(long, default_value_t = 1000)]
    pub max_tokens: usize,
    #[command(flatten)]
    pub sampling: SamplingArgs,
    #[command(flatten)]
    pub path: PathArgs,
}

struct Chat {
    loaded: Loaded,
    state: State,
    cfg: SamplerConfig,
    max_tokens: usize,
    /// The state before the last user message, and that message, for /retry.
    before_last: Option<(State, String)>,
    turns: u64,
    interrupted: Arc<AtomicBool>,
}

impl Chat {
    /// Feeds `User: {msg}\n\nAssistant:` and streams the answer up to the blank line that ends it.
    fn answer(&mut self, msg: &str) -> Result<()> {
        let m = &self.loaded.model;
        self.before_last = Some((self.state.try_clone(m.gpu())?, msg.to_string()));
        let tokens = self.loaded.tokenizer.encode(&format!("User: {msg}{TURN_END}Assistant:"));
        // A fresh seed per answer so /retry gives another one.
        let cfg = SamplerConfig { seed: self.cfg.seed.wrapping_add(self.turns), ..self.cfg.clone() };
        self.turns += 1;
        let mut generator = Generator::exact(m, &self.state, &cfg)?;
        let start = Instant::now();
        generator.prefill(&tokens, &mut |_, _| {})?;
        let prefill_secs = start.elapsed().as_secs_f64();
        self.interrupted.store(false, Ordering::SeqCst);
        let mut stdout = std::io::stdout().lock();
        write!(stdout, "Assistant:")?;
        let mut decoder = self.loaded.tokenizer.stream_decoder();
        let mut stops = StopMatcher::new(&[TURN_END.to_string()]);
        let start = Instant::now();
        let mut generated = 0;
        while generated < self.max_tokens && !self.interrupted.load(Ordering::SeqCst) {
            let token = generator.next_token()?;
            generated += 1;
            stdout.write_all(stops.push(&decoder.push(token)?).as_bytes())?;
            stdout.flush()?;
            if stops.stopped() {
                break;
            }
        }
        let decode_secs = start.elapsed().as_secs_f64();
        // The state takes in the whole answer, the turn's end included when it stopped there.
        generator.finish()?;
        if !stops.stopped() {
            // Cut short (limit or Ctrl-C): close the turn so the conversation keeps its format.
            stdout.write_all(stops.push(&decoder.finish()).as_bytes())?;
            stdout.write_all(stops.finish().as_bytes())?;
            let end = self.loaded.tokenizer.encode(TURN_END);
            m.forward(&self.state, &end, &Logits::At(vec![]))?;
        }
        writeln!(stdout, "\n")?;
        drop(stdout);
        if self.interrupted.swap(false, Ordering::SeqCst) {
            eprintln!("[stopped]");
        }
        eprintln!(
            "[prefill {} tokens {:.1} tok/s, decode {generated} tokens {:.1} tok/s]",
            tokens.len(),
            tokens.len() as f64 / prefill_secs.max(1e-9),
            generated as f64 / decode_secs.max(1e-9)
        );
        Ok(())
    }

    /// Runs one input line; returns false to quit.
    fn handle(&mut self, line: &str) -> Result<bool> {
        let m = &self.loaded.model;
        let (cmd, arg) = match line.split_once(char::is_whitespace) {
            Some((c, a)) => (c, a.trim()),
            None => (line, ""),
        };
        match cmd {
            "/quit" | "/exit" => return Ok(false),
            "/help" => eprintln!("{HELP}"),
            "/reset" => {
                self.state.reset(m.gpu());
                self.before_last = None;
                eprintln!("[conversation reset]");
            }
            "/retry" => match self.before_last.take() {
                None => eprintln!("[nothing to retry]"),
                Some((state, msg)) => {
                    self.state = state;
                    self.answer(&msg)?;
                }
            },
            "/save" | "/load" if arg.is_empty() => eprintln!("[{cmd} needs a file name]"),
            "/save" => match self.state.save(m.gpu(), FsPath::new(arg)) {
                Ok(()) => eprintln!("[state saved to {arg}]"),
                Err(e) => eprintln!("[could not save: {e}]"),
            },
            "/load" => match self.state.load(m.gpu(), FsPath::new(arg)) {
                Ok(()) => {
                    self.before_last = None;
                    eprintln!("[state loaded from {arg}]");
                }
                Err(e) => eprintln!("[could not load: {e}]"),
            },
            c if c.starts_with('/') => eprintln!("[unknown command {c}; {HELP}]"),
            _ => self.answer(line)?,
        }
        Ok(true)
    }
}

pub fn run(device: &DeviceArgs, args: Args) -> Result<()> {
    let cfg = args.sampling.config(&SamplerConfig::CHATRWKV_CHAT);
    let loaded = loading::load(device, &args.model, args.path.path())?;
    sampling_args::validate(&cfg, loaded.model.hparams().vocab)?;
    let state = loaded.model.new_state()?;
    let interrupted = Arc::new(AtomicBool::new(false));
    let flag = interrupted.clone();
    ctrlc::set_handler(move || flag.store(true, Ordering::SeqCst)).context("installing the Ctrl-C handler")?;
    let mut chat = Chat { loaded, state, cfg, max_tokens: args.max_tokens, before_last: None, turns: 0, interrupted };
    eprintln!("model {} loaded in {:.2} s; {HELP}", chat.loaded.file.path().display(), chat.loaded.load_secs);
    let stdin = std::io::stdin();
    let mut lines = stdin.lock();
    loop {
        eprint!("User: ");
        std::io::stderr().flush()?;
        let mut line = String::new();
        // Ctrl-C while waiting here only sets the flag; the next answer clears it.
        if lines.read_line(&mut line).context("reading from stdin")? == 0 {
            eprintln!();
            return Ok(());
        }
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        if !chat.handle(line)? {
            return Ok(());
        }
    }
}
