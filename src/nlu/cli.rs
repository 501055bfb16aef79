//! `lexbridge nlu try|eval`: the embedded engine from the command line.

use anyhow::Context;
use clap::Subcommand;
use std::path::{Path, PathBuf};
use std::time::Instant;

use super::local::{eval, LocalBot, Today};

#[derive(Subcommand)]
pub enum NluCommand {
    /// Interpret one utterance and print the interpretations as JSON.
    Try {
        /// A Lex V2 export (folder or .zip); the bundled demo bot by default.
        #[arg(long)]
        bot: Option<PathBuf>,
        /// A context taken as active (repeatable): intents whose
        /// `inputContexts` are all active become candidates.
        #[arg(long = "context")]
        contexts: Vec<String>,
        text: String,
    },
    /// Score the engine on JSON-lines cases ({"text", "intent", "slots"}).
    Eval {
        #[arg(long)]
        bot: Option<PathBuf>,
        #[arg(long)]
        cases: PathBuf,
        /// End with one JSON object of the scores (the last line printed).
        #[arg(long)]
        json: bool,
        /// Also print which intents were mistaken for which, and how many
        /// cases fell back (in the JSON object as `confusion`).
        #[arg(long)]
        details: bool,
    },
}

fn load(bot: Option<&Path>) -> anyhow::Result<LocalBot> {
    let loaded = match bot {
        Some(path) => LocalBot::load(path)?,
        None => LocalBot::bundled()?,
    };
    for warning in loaded.warnings() {
        eprintln!("warning: {warning}");
    }
    Ok(loaded)
}

/// Prints `text` and a newline; a reader that stopped reading (`| head`)
/// ends the output quietly rather than with a panic.
fn print(text: &str) -> anyhow::Result<()> {
    use std::io::Write;
    match writeln!(std::io::stdout().lock(), "{text}") {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        done => Ok(done?),
    }
}

pub fn run(command: NluCommand) -> anyhow::Result<()> {
    match command {
        NluCommand::Try {
            bot,
            contexts,
            text,
        } => {
            let bot = load(bot.as_deref())?;
            let active: Vec<&str> = contexts.iter().map(String::as_str).collect();
            let interpreted = bot.interpret_in(&text, Today::now(), &active);
            print(&serde_json::to_string_pretty(&interpreted)?)?;
        }
        NluCommand::Eval {
            bot,
            cases,
            json,
            details,
        } => {
            // Not a pipe or a device: reading one could wait for ever.
            let is_file = std::fs::metadata(&cases).map(|m| m.is_file());
            if !is_file.with_context(|| format!("reading {}", cases.display()))? {
                anyhow::bail!("{} is not a file", cases.display());
            }
            let text = std::fs::read_to_string(&cases)
                .with_context(|| format!("reading {}", cases.display()))?;
            let cases = eval::parse_cases(&text).map_err(anyhow::Error::msg)?;
            let started = Instant::now();
            let bot = load(bot.as_deref())?;
            let load_ms = started.elapsed().as_millis() as u64;
            let mut report = eval::evaluate(&bot, &cases, Some(load_ms));
            if !details {
                report.confusion = None;
            }
            if json {
                print(&report.to_json())?;
            } else {
                print(&report.table())?;
                if let Some(confusion) = &report.confusion {
                    print(&confusion.table())?;
                }
            }
        }
    }
    Ok(())
}
