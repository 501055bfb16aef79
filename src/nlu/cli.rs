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
            println!("{}", serde_json::to_string_pretty(&interpreted)?);
        }
        NluCommand::Eval {
            bot,
            cases,
            json,
            details,
        } => {
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
                println!("{}", report.to_json());
            } else {
                println!("{}", report.table());
                if let Some(confusion) = &report.confusion {
                    println!("{}", confusion.table());
                }
            }
        }
    }
    Ok(())
}
