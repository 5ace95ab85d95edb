//! The console transport: a terminal chat with the bot through the same intake as
//! Slack. Progress prints as it changes; buttons become numbered choices and typing
//! the number clicks the button.

use std::io::Write;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use bot_core::{Bot, Reply, Request};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::sync::oneshot;

use crate::chat::ReplySink;
use crate::intake::{excerpt, Accepted, Delivery, Intake, ReplyTo};
use crate::metrics::Metrics;

/// Prints one request's progress (only the lines that are new) and its final reply
/// to stdout, and hands the final reply back to whoever waits for it.
pub struct ConsoleSink {
    last: Mutex<Vec<String>>,
    done: Mutex<Option<oneshot::Sender<Reply>>>,
}

impl ConsoleSink {
    /// A sink and the receiver of its final reply.
    pub fn new() -> (Arc<Self>, oneshot::Receiver<Reply>) {
        let (tx, rx) = oneshot::channel();
        let sink = Arc::new(Self {
            last: Mutex::new(Vec::new()),
            done: Mutex::new(Some(tx)),
        });
        (sink, rx)
    }
}

#[async_trait]
impl ReplySink for ConsoleSink {
    async fn update(&self, reply: &Reply) {
        let text = reply.to_console_text();
        let lines: Vec<String> = text.lines().map(str::to_owned).collect();
        let Ok(mut last) = self.last.lock() else {
            return;
        };
        let mut out = std::io::stdout().lock();
        for line in &lines {
            if !last.contains(line) {
                let _ = writeln!(out, "  … {line}");
            }
        }
        *last = lines;
    }

    async fn finish(&self, reply: &Reply) {
        println!("{}\n", reply.to_console_text());
        let done = self.done.lock().ok().and_then(|mut d| d.take());
        if let Some(done) = done {
            let _ = done.send(reply.clone());
        }
    }
}

/// What the console does with one line of input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConsoleInput {
    /// Leave.
    Quit,
    /// Nothing typed.
    Nothing,
    /// A number that picks a button of the last reply.
    Choice(usize),
    /// Anything else: a message to the bot.
    Text(String),
}

/// Classifies a typed line.
pub fn classify(line: &str) -> ConsoleInput {
    let line = line.trim();
    match line {
        "" => ConsoleInput::Nothing,
        "quit" | "exit" | "/quit" | "\\q" => ConsoleInput::Quit,
        n if n.len() <= 3 && n.chars().all(|c| c.is_ascii_digit()) => match n.parse() {
            Ok(n) if n > 0 => ConsoleInput::Choice(n),
            _ => ConsoleInput::Text(line.to_owned()),
        },
        _ => ConsoleInput::Text(line.to_owned()),
    }
}

/// An intake for a terminal: one person, a few requests at a time.
pub fn intake(bot: Bot) -> Intake {
    Intake::new(bot, Metrics::new(), 16)
}

/// Runs `request` through `intake`, printing progress and the reply; returns the
/// reply (`None` when the intake refused it).
pub async fn ask(intake: &Intake, request: Request) -> Option<Reply> {
    let what = match &request.input {
        bot_core::Input::Text(t) => format!("console: `{}`", excerpt(t)),
        bot_core::Input::Button(_) => "console: a choice".to_owned(),
    };
    let (sink, done) = ConsoleSink::new();
    let accepted = intake
        .submit(Delivery {
            key: None,
            request,
            reply_to: ReplyTo::Direct(sink),
            what,
        })
        .await;
    if accepted != Accepted::Scheduled {
        println!("I cannot take that right now ({accepted:?}).");
        return None;
    }
    done.await.ok()
}

/// Runs the console on stdin/stdout as `user` until EOF or `quit`.
pub async fn run(bot: Bot, user: String) -> std::io::Result<()> {
    let intake = intake(bot);
    let mut lines = BufReader::new(tokio::io::stdin()).lines();
    let mut buttons: Vec<String> = Vec::new();
    println!("Crossroads console — you are {user}. Type `help`, `status`, `health rh blue`, `deploy staging`, `toy` … (`quit` to leave).");
    loop {
        print!("{user}> ");
        std::io::stdout().flush()?;
        let Some(line) = lines.next_line().await? else {
            println!();
            return Ok(());
        };
        let request = match classify(&line) {
            ConsoleInput::Quit => return Ok(()),
            ConsoleInput::Nothing => continue,
            ConsoleInput::Choice(n) => match buttons.get(n - 1) {
                Some(value) => Request::button(user.clone(), value.clone()),
                None => {
                    println!("There is no choice [{n}] in the last reply.");
                    continue;
                }
            },
            ConsoleInput::Text(text) => Request::text(user.clone(), text),
        };
        let Some(reply) = ask(&intake, request).await else {
            continue;
        };
        let fresh: Vec<String> = reply.all_buttons().map(|b| b.value.clone()).collect();
        if !fresh.is_empty() || !reply.ephemeral {
            buttons = fresh;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_pick_choices_and_words_are_messages() {
        assert_eq!(classify(" 2 "), ConsoleInput::Choice(2));
        assert_eq!(classify("0"), ConsoleInput::Text("0".into()));
        assert_eq!(classify("status"), ConsoleInput::Text("status".into()));
        assert_eq!(classify("12345"), ConsoleInput::Text("12345".into()));
        assert_eq!(classify(""), ConsoleInput::Nothing);
        assert_eq!(classify("quit"), ConsoleInput::Quit);
    }
}
