//! The console adapter: a terminal chat with the bot. Buttons become numbered
//! choices; typing the number clicks the button.

use std::io::Write;
use std::sync::Mutex;

use async_trait::async_trait;
use bot_core::{Bot, Progress, Reply, Request};
use tokio::io::{AsyncBufReadExt, BufReader};

/// Prints progress updates as they change (only the lines that are new).
pub struct PrintProgress {
    last: Mutex<Vec<String>>,
}

impl PrintProgress {
    /// A printer that has printed nothing yet.
    pub fn new() -> Self {
        Self {
            last: Mutex::new(Vec::new()),
        }
    }
}

impl Default for PrintProgress {
    fn default() -> Self {
        Self::new()
    }
}

#[async_trait]
impl Progress for PrintProgress {
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

/// Runs the console on stdin/stdout as `user` until EOF or `quit`.
pub async fn run(bot: Bot, user: String) -> std::io::Result<()> {
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
        let reply = bot.handle_with(request, &PrintProgress::new()).await;
        println!("{}\n", reply.to_console_text());
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
