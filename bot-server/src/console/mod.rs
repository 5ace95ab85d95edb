//! The console transport: a terminal chat with the bot through the same intake as Slack, with line editing, history and work running side by side.
//!
//! Lines are read with rustyline (editing, history in `~/.crossroads_history`); each
//! command goes to the [`Intake`] and runs in the background, so a deploy's progress
//! keeps printing above the prompt (rustyline's external printer) while you type
//! `status`. Replies are rendered for the terminal ([`render`]); buttons become
//! `[1] … [2] …`, and `1`, `[1]` or `1.` clicks the first, `yes` / `no` answer a
//! pending confirmation. Ctrl-C clears the line and never stops running work; Ctrl-D
//! or `quit` leaves, saying what was still running. When input is not a terminal
//! (a script, a pipe), lines run one after another instead.

pub mod chart_file;
pub mod render;

use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use bot_core::{Bot, Input, Reply, Request};
use rustyline::error::ReadlineError;
use rustyline::ExternalPrinter;
use tokio::sync::{mpsc, oneshot};

use crate::chat::ReplySink;
use crate::intake::{excerpt, Accepted, Delivery, Intake, ReplyTo};
use crate::metrics::Metrics;
use render::{Choices, Style};

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Where the console prints: above rustyline's prompt when it has one, else stdout.
#[derive(Clone, Default)]
pub struct Screen {
    printer: Option<Arc<Mutex<Box<dyn ExternalPrinter + Send>>>>,
}

impl Screen {
    /// Plain stdout.
    pub fn stdout() -> Self {
        Self::default()
    }

    fn with_printer(printer: Box<dyn ExternalPrinter + Send>) -> Self {
        Self {
            printer: Some(Arc::new(Mutex::new(printer))),
        }
    }

    /// Prints `text` and a newline.
    pub fn print(&self, text: &str) {
        if let Some(printer) = &self.printer {
            if lock(printer).print(format!("{text}\n")).is_ok() {
                return;
            }
        }
        println!("{text}");
    }
}

/// The buttons of the latest reply that had some, shared by the sinks and the prompt.
type Offered = Arc<Mutex<Choices>>;

/// Prints one request's progress (only the lines that are new) and its final reply,
/// offers the reply's buttons to the prompt, and hands the final reply back to
/// whoever waits for it.
pub struct ConsoleSink {
    screen: Screen,
    style: Style,
    offered: Option<Offered>,
    last: Mutex<Vec<String>>,
    done: Mutex<Option<oneshot::Sender<Reply>>>,
}

impl ConsoleSink {
    /// A sink printing to stdout and the receiver of its final reply.
    pub fn new() -> (Arc<Self>, oneshot::Receiver<Reply>) {
        Self::on(Screen::stdout(), Style::detect(), None)
    }

    fn on(
        screen: Screen,
        style: Style,
        offered: Option<Offered>,
    ) -> (Arc<Self>, oneshot::Receiver<Reply>) {
        let (tx, rx) = oneshot::channel();
        let sink = Arc::new(Self {
            screen,
            style,
            offered,
            last: Mutex::new(Vec::new()),
            done: Mutex::new(Some(tx)),
        });
        (sink, rx)
    }
}

#[async_trait]
impl ReplySink for ConsoleSink {
    async fn update(&self, reply: &Reply) {
        let text = render::progress(reply, self.style);
        let lines: Vec<String> = text.lines().map(str::to_owned).collect();
        let fresh: Vec<String> = {
            let mut last = lock(&self.last);
            let fresh = lines
                .iter()
                .filter(|l| !last.contains(l))
                .map(|l| format!("  … {l}"))
                .collect();
            *last = lines;
            fresh
        };
        if !fresh.is_empty() {
            self.screen.print(&fresh.join("\n"));
        }
    }

    async fn finish(&self, reply: &Reply) {
        // Offered before it is shown: whoever answers what they see finds it.
        if let Some(offered) = &self.offered {
            let choices = Choices::of(reply);
            if !choices.values.is_empty() {
                *lock(offered) = choices;
            }
        }
        let shown = if reply.charts().next().is_some() {
            chart_file::saved(reply, &chart_file::chart_dir())
        } else {
            reply.clone()
        };
        self.screen
            .print(&format!("{}\n", render::reply(&shown, self.style)));
        let done = lock(&self.done).take();
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
    /// A number that picks a button of the last reply with buttons (`1`, `[1]`, `1.`).
    Choice(usize),
    /// `yes` (or `y`).
    Yes,
    /// `no` (or `n`).
    No,
    /// Anything else: a message to the bot.
    Text(String),
}

/// Classifies a typed line.
pub fn classify(line: &str) -> ConsoleInput {
    let line = line.trim();
    let number = line
        .strip_prefix('[')
        .and_then(|l| l.strip_suffix(']'))
        .or_else(|| line.strip_suffix('.'))
        .or_else(|| line.strip_suffix(')'))
        .unwrap_or(line)
        .trim();
    match line.to_lowercase().as_str() {
        "" => return ConsoleInput::Nothing,
        "quit" | "exit" | "/quit" | "\\q" | ":q" => return ConsoleInput::Quit,
        "yes" | "y" => return ConsoleInput::Yes,
        "no" | "n" => return ConsoleInput::No,
        _ => {}
    }
    if !number.is_empty() && number.len() <= 3 && number.chars().all(|c| c.is_ascii_digit()) {
        if let Ok(n @ 1..) = number.parse::<usize>() {
            return ConsoleInput::Choice(n);
        }
    }
    ConsoleInput::Text(line.to_owned())
}

/// Commands the console answers itself, before the bot sees the line (the demo's
/// `break`, `heal`, `fail job …`).
#[async_trait]
pub trait LocalCommands: Send + Sync {
    /// Handles `line` when it is one of these commands; returns what to print.
    async fn handle(&self, line: &str) -> Option<String>;
}

/// An intake for a terminal: one person, a few requests at a time.
pub fn intake(bot: Bot) -> Intake {
    Intake::new(bot, Metrics::new(), 16)
}

fn describe(request: &Request) -> String {
    match &request.input {
        Input::Text(t) => excerpt(t),
        Input::Button(_) => "a choice".to_owned(),
    }
}

/// Runs `request` through `intake`, printing progress and the reply to stdout;
/// returns the reply (`None` when the intake refused it).
pub async fn ask(intake: &Intake, request: Request) -> Option<Reply> {
    let (sink, done) = ConsoleSink::new();
    let what = format!("`{}`", describe(&request));
    submit(intake, request, what, sink, &Screen::stdout()).await?;
    done.await.ok()
}

/// Hands a request to the intake (`what` it is, for the list of running work);
/// `None` (after saying so) when it was refused.
async fn submit(
    intake: &Intake,
    request: Request,
    what: String,
    sink: Arc<ConsoleSink>,
    screen: &Screen,
) -> Option<()> {
    let accepted = intake
        .submit(Delivery {
            key: None,
            request,
            reply_to: ReplyTo::Direct(sink),
            what,
        })
        .await;
    if accepted != Accepted::Scheduled {
        screen.print(&format!("I cannot take that right now ({accepted:?})."));
        return None;
    }
    Some(())
}

/// A line from the terminal.
enum Typed {
    Line(String),
    Interrupted,
    Eof,
}

/// Where history is kept: `~/.crossroads_history`.
fn history_file() -> Option<PathBuf> {
    std::env::var_os("HOME")
        .filter(|h| !h.is_empty())
        .map(|h| PathBuf::from(h).join(".crossroads_history"))
}

/// Reads lines on a thread of its own (rustyline blocks), handing each over; ends
/// after `quit` or end of input, so the terminal is never left in raw mode.
fn read_lines(prompt: String) -> (mpsc::Receiver<Typed>, Option<Screen>) {
    let (lines, rx) = mpsc::channel(8);
    let (printer_tx, printer_rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut editor = match rustyline::DefaultEditor::new() {
            Ok(e) => e,
            Err(e) => {
                eprintln!("cannot read the terminal: {e}");
                let _ = printer_tx.send(None);
                return;
            }
        };
        let history = history_file();
        if let Some(path) = &history {
            let _ = editor.load_history(path);
        }
        let printer = editor
            .create_external_printer()
            .ok()
            .map(|p| Screen::with_printer(Box::new(p)));
        let _ = printer_tx.send(printer);
        loop {
            let typed = match editor.readline(&prompt) {
                Ok(line) => {
                    if !line.trim().is_empty() {
                        let _ = editor.add_history_entry(line.as_str());
                    }
                    Typed::Line(line)
                }
                Err(ReadlineError::Interrupted) => Typed::Interrupted,
                Err(ReadlineError::Eof) => Typed::Eof,
                Err(e) => {
                    eprintln!("cannot read the terminal: {e}");
                    Typed::Eof
                }
            };
            let last = match &typed {
                Typed::Eof => true,
                Typed::Line(l) => classify(l) == ConsoleInput::Quit,
                Typed::Interrupted => false,
            };
            if lines.blocking_send(typed).is_err() || last {
                break;
            }
        }
        if let Some(path) = &history {
            let _ = editor.save_history(path);
        }
    });
    let screen = printer_rx.recv().ok().flatten();
    (rx, screen)
}

/// Who is typing, for the audit: the operating-system user and host
/// (`alice@build-01`). Requests from a shell carry it.
pub fn shell_identity() -> String {
    let user = std::env::var("USER")
        .or_else(|_| std::env::var("LOGNAME"))
        .unwrap_or_else(|_| "unknown".into());
    let host = std::env::var("HOSTNAME")
        .ok()
        .or_else(|| std::fs::read_to_string("/etc/hostname").ok())
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".into());
    format!("{user}@{host}")
}

/// Runs the console on the terminal as `user` until end of input or `quit`.
pub async fn run(bot: Bot, user: String) -> std::io::Result<()> {
    run_with(bot, user, None, Vec::new()).await
}

/// [`run`] with console-side commands (the demo's) and extra banner lines.
pub async fn run_with(
    bot: Bot,
    user: String,
    local: Option<Arc<dyn LocalCommands>>,
    banner: Vec<String>,
) -> std::io::Result<()> {
    let intake = intake(bot);
    let shell = shell_identity();
    let interactive = std::io::stdin().is_terminal();
    let style = Style::detect();
    // Ctrl-C between two reads (or with no line editor) must not kill running work:
    // listening for SIGINT replaces its default action.
    let mut interrupts = tokio::spawn(async { while tokio::signal::ctrl_c().await.is_ok() {} });
    let (mut lines, printer) = read_lines(format!("{user}> "));
    let screen = printer.unwrap_or_default();
    let offered: Offered = Arc::default();
    let mut told_about_ctrl_c = false;

    screen.print(&format!(
        "Crossroads console — you are {user}. Type `help`, `status`, `health rh blue`, `deploy staging`, `toy` …\n\
         Commands run side by side; Ctrl-C clears the line, `quit` or Ctrl-D leaves."
    ));
    for line in banner {
        screen.print(&line);
    }
    let announcements = tokio::spawn(print_announcements(
        intake.bot().clone(),
        screen.clone(),
        style,
    ));
    while let Some(typed) = lines.recv().await {
        let line = match typed {
            Typed::Eof => break,
            Typed::Interrupted => {
                if !told_about_ctrl_c {
                    screen.print("(Ctrl-C clears the line; work already running goes on. `quit` or Ctrl-D leaves.)");
                    told_about_ctrl_c = true;
                }
                continue;
            }
            Typed::Line(line) => line,
        };
        let click = |chosen: Option<(String, String)>, missing: String| match chosen {
            Some((value, label)) => Some((
                Request::button(user.clone(), value).from_shell(shell.clone()),
                format!("`{}`", excerpt(&label)),
            )),
            None => {
                screen.print(&missing);
                None
            }
        };
        let request = match classify(&line) {
            ConsoleInput::Quit => break,
            ConsoleInput::Nothing => continue,
            ConsoleInput::Choice(n) => {
                let chosen = {
                    let offered = lock(&offered);
                    offered
                        .values
                        .get(n - 1)
                        .cloned()
                        .zip(offered.labels.get(n - 1).cloned())
                };
                click(
                    chosen,
                    format!("There is no choice [{n}] in the last reply with buttons."),
                )
            }
            ConsoleInput::Yes | ConsoleInput::No => {
                let yes = classify(&line) == ConsoleInput::Yes;
                let chosen = {
                    let offered = lock(&offered);
                    let pick = if yes {
                        0
                    } else {
                        offered.labels.len().saturating_sub(1)
                    };
                    offered
                        .question
                        .clone()
                        .map(|(y, n)| if yes { y } else { n })
                        .zip(offered.labels.get(pick).cloned())
                };
                click(chosen, "No question is waiting for a yes or no.".to_owned())
            }
            ConsoleInput::Text(text) => {
                if let Some(local) = &local {
                    if let Some(answer) = local.handle(&text).await {
                        screen.print(&format!("{answer}\n"));
                        continue;
                    }
                }
                let what = format!("`{}`", excerpt(&text));
                Some((
                    Request::text(user.clone(), text).from_shell(shell.clone()),
                    what,
                ))
            }
        };
        let Some((request, what)) = request else {
            continue;
        };
        let (sink, done) = ConsoleSink::on(screen.clone(), style, Some(offered.clone()));
        if submit(&intake, request, what, sink, &screen)
            .await
            .is_some()
            && !interactive
        {
            // A script's lines run one after another.
            let _ = done.await;
        }
    }
    // Work whose reply was just printed is ending: give it a moment to.
    intake.drain(std::time::Duration::from_millis(300)).await;
    let running = intake.in_flight();
    if !running.is_empty() {
        let list: Vec<String> = running
            .iter()
            .map(|t| format!("  • {} (running for {}s)", t.what, t.running_for.as_secs()))
            .collect();
        screen.print(&format!(
            "Leaving while this still runs; it stops with the console:\n{}",
            list.join("\n")
        ));
    }
    interrupts.abort();
    let _ = (&mut interrupts).await;
    announcements.abort();
    Ok(())
}

/// The outbox transport of announcements printed on the console (the monitor's, in
/// a demo without Slack).
pub const ANNOUNCEMENTS: &str = "console";

/// Prints the monitor's announcements (and their recovery edits) as they are written.
async fn print_announcements(bot: Bot, screen: Screen, style: Style) {
    use bot_core::ports::store::Attempt;
    let store = bot.store();
    loop {
        let now = bot.now();
        let lease = now + std::time::Duration::from_secs(60);
        if let Ok(due) = store
            .lease_messages(ANNOUNCEMENTS, bot.owner(), now, lease, 16)
            .await
        {
            for m in due {
                if let Ok(reply) = serde_json::from_value::<Reply>(m.body.clone()) {
                    screen.print(&format!("{}\n", render::reply(&reply, style)));
                }
                let attempt = Attempt::Delivered {
                    version: m.version,
                    state: serde_json::Value::Null,
                    next_at: now,
                };
                let _ = store.record_attempt(&m.id, bot.owner(), &attempt).await;
            }
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_pick_choices_and_words_are_messages() {
        for one in ["1", " 1 ", "[1]", "1.", "[ 1 ]", "1)"] {
            assert_eq!(classify(one), ConsoleInput::Choice(1), "{one}");
        }
        assert_eq!(classify("12"), ConsoleInput::Choice(12));
        assert_eq!(classify("0"), ConsoleInput::Text("0".into()));
        assert_eq!(classify("status"), ConsoleInput::Text("status".into()));
        assert_eq!(classify("12345"), ConsoleInput::Text("12345".into()));
        assert_eq!(classify(""), ConsoleInput::Nothing);
        assert_eq!(classify("quit"), ConsoleInput::Quit);
        for yes in ["yes", "Y", "YES "] {
            assert_eq!(classify(yes), ConsoleInput::Yes, "{yes}");
        }
        assert_eq!(classify("no"), ConsoleInput::No);
        assert_eq!(classify("nope"), ConsoleInput::Text("nope".into()));
    }
}
