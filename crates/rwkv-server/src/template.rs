//! Chat messages to a prompt: the model's `tokenizer.chat_template` (a Jinja template, rendered
//! with minijinja and Python's string methods as Hugging Face templates use them), or, for a
//! model without one, the RWKV World form (`System: ...`, `User: ...`, `Assistant: ...`, each
//! turn ending in a blank line, then `Assistant:`).
//!
//! The template gets `messages` (`role` and `content`), `add_generation_prompt = true`, and empty
//! `bos_token` / `eos_token`: RWKV World prompts start with no special token (token 0 is the
//! end-of-text separator, never part of a prompt), as `rwkv-cli generate` feeds them.

use minijinja::{Environment, ErrorKind};
use serde::Serialize;

use crate::error::ServerError;

/// One message of a conversation.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ChatMessage {
    /// `system`, `user` or `assistant`.
    pub role: String,
    /// `None` for an assistant message without text.
    pub content: Option<String>,
}

impl ChatMessage {
    /// A message with text.
    pub fn new(role: &str, content: &str) -> ChatMessage {
        ChatMessage { role: role.into(), content: Some(content.into()) }
    }
}

/// How a conversation becomes a prompt.
pub enum ChatTemplate {
    /// The RWKV World form, written here.
    World,
    /// A Jinja template (from the model file).
    Jinja(Box<Environment<'static>>),
}

const TEMPLATE_NAME: &str = "chat";

/// Why a conversation could not be rendered (the request's fault: a role or content the
/// template refuses).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct RenderError(pub String);

impl ChatTemplate {
    /// Compiles a Jinja chat template.
    pub fn jinja(source: String) -> Result<ChatTemplate, ServerError> {
        let mut env = Environment::new();
        env.set_unknown_method_callback(minijinja_contrib::pycompat::unknown_method_callback);
        // Hugging Face templates refuse conversations they cannot express this way.
        env.add_function("raise_exception", |message: String| -> Result<String, minijinja::Error> {
            Err(minijinja::Error::new(ErrorKind::InvalidOperation, message))
        });
        env.add_template_owned(TEMPLATE_NAME, source).map_err(ServerError::Template)?;
        Ok(ChatTemplate::Jinja(Box::new(env)))
    }

    /// The prompt for `messages`, ending where the assistant's answer begins.
    pub fn render(&self, messages: &[ChatMessage]) -> Result<String, RenderError> {
        match self {
            ChatTemplate::World => Ok(render_world(messages)),
            ChatTemplate::Jinja(env) => {
                let template = env.get_template(TEMPLATE_NAME).map_err(|e| RenderError(format!("{e:#}")))?;
                let context = minijinja::context! {
                    messages => minijinja::Value::from(minijinja::value::Serde(messages)),
                    add_generation_prompt => true,
                    bos_token => "",
                    eos_token => "",
                };
                template
                    .render(context)
                    .map_err(|e| RenderError(format!("the chat template refused the messages: {e:#}")))
            }
        }
    }
}

/// The World form, as llama.cpp renders `rwkv-world`: every message in order, contents trimmed.
fn render_world(messages: &[ChatMessage]) -> String {
    let mut prompt = String::new();
    for message in messages {
        let label = match message.role.as_str() {
            "system" => "System",
            "assistant" => "Assistant",
            _ => "User",
        };
        let Some(content) = &message.content else { continue };
        prompt.push_str(&format!("{label}: {}\n\n", content.trim()));
    }
    prompt.push_str("Assistant:");
    prompt
}

#[cfg(test)]
mod tests {
    use rwkv_model::tokenizer::WORLD_CHAT_TEMPLATE;

    use super::*;

    fn conversation(with_system: bool) -> Vec<ChatMessage> {
        let mut messages = Vec::new();
        if with_system {
            messages.push(ChatMessage::new("system", "You are terse."));
        }
        messages.push(ChatMessage::new("user", "  Hi there \n"));
        messages.push(ChatMessage::new("assistant", "Hello! How can I help?"));
        messages.push(ChatMessage::new("user", "Name a colour."));
        messages
    }

    /// The converter's template (what RWKV-7 GGUFs store) and the built-in World form agree
    /// where both are defined (a system message first), and give the documented text.
    #[test]
    fn the_gguf_template_and_the_world_form_agree() {
        let gguf = ChatTemplate::jinja(WORLD_CHAT_TEMPLATE.to_string()).unwrap();
        for with_system in [false, true] {
            let messages = conversation(with_system);
            let from_gguf = gguf.render(&messages).unwrap();
            assert_eq!(from_gguf, ChatTemplate::World.render(&messages).unwrap());
            let system = if with_system { "System: You are terse.\n\n" } else { "" };
            let expected = format!(
                "{system}User: Hi there\n\nAssistant: Hello! How can I help?\n\nUser: Name a colour.\n\nAssistant:"
            );
            assert_eq!(from_gguf, expected);
        }
    }

    /// The converter's template drops reasoning before `</think>` (through Python's `split`).
    #[test]
    fn python_string_methods_work_in_templates() {
        let gguf = ChatTemplate::jinja(WORLD_CHAT_TEMPLATE.to_string()).unwrap();
        let messages = vec![
            ChatMessage::new("user", "a"),
            ChatMessage::new("assistant", "<think>hmm</think> b"),
            ChatMessage::new("user", "c"),
        ];
        assert_eq!(gguf.render(&messages).unwrap(), "User: a\n\nAssistant: b\n\nUser: c\n\nAssistant:");
    }

    #[test]
    fn template_errors_are_reported_not_raised() {
        assert!(matches!(ChatTemplate::jinja("{% for %}".into()), Err(ServerError::Template(_))));
        let strict = ChatTemplate::jinja(
            "{% for m in messages %}{% if m.role == 'system' %}{{ raise_exception('no system messages') }}{% endif %}\
             {{ m.content }}{% endfor %}"
                .into(),
        )
        .unwrap();
        let e = strict.render(&[ChatMessage::new("system", "x")]).unwrap_err();
        assert!(e.0.contains("no system messages"), "{e}");
        assert_eq!(strict.render(&[ChatMessage::new("user", "ok")]).unwrap(), "ok");
    }
}
