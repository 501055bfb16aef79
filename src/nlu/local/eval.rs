//! `nlu eval`: intent accuracy, out-of-scope recall, slot micro-F1 and
//! latency over JSON-lines cases, scored as `nlu-bench/README.md` defines.

use super::confusion::Confusion;
use super::{LocalBot, Today};
use serde::{Deserialize, Serialize};
use std::time::Instant;

#[derive(Debug, Clone, Deserialize)]
pub struct Case {
    pub text: String,
    pub intent: String,
    #[serde(default)]
    pub slots: Vec<CaseSlot>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct CaseSlot {
    pub name: String,
    pub value: String,
}

/// The `--json` object; `None` fields print as null.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct EvalReport {
    pub cases: usize,
    pub intent_accuracy: Option<f64>,
    pub in_scope_accuracy: Option<f64>,
    pub oos_recall: Option<f64>,
    pub slot_precision: Option<f64>,
    pub slot_recall: Option<f64>,
    pub slot_f1: Option<f64>,
    pub p50_us: Option<u64>,
    pub p99_us: Option<u64>,
    pub load_ms: Option<u64>,
    pub rss_mb: Option<f64>,
    /// Which intents were mistaken for which (`--details`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub confusion: Option<Confusion>,
}

/// Parses JSON lines, naming the line of a bad case.
pub fn parse_cases(text: &str) -> Result<Vec<Case>, String> {
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| serde_json::from_str(l).map_err(|e| format!("line {}: {e}", i + 1)))
        .collect()
}

fn norm(v: &str) -> String {
    super::text::clean_value(v).to_lowercase()
}

fn ratio(num: usize, den: usize) -> Option<f64> {
    (den > 0).then(|| num as f64 / den as f64)
}

/// Scores `bot` on `cases`; `load_ms` is the caller's measured load time.
pub fn evaluate(bot: &LocalBot, cases: &[Case], load_ms: Option<u64>) -> EvalReport {
    let fallback = bot.fallback_name().to_string();
    let today = Today::now();
    let (mut correct, mut in_total, mut in_correct, mut oos_total, mut oos_hit) = (0, 0, 0, 0, 0);
    let (mut tp, mut gold_n, mut pred_n) = (0usize, 0usize, 0usize);
    let mut latencies = Vec::with_capacity(cases.len());
    let mut confusion = Confusion::default();
    for case in cases {
        let start = Instant::now();
        let result = bot.interpret_at(&case.text, today);
        latencies.push(start.elapsed().as_micros() as u64);
        let Some(top) = result.first() else { continue };
        let hit = top.interpretation.intent == case.intent;
        confusion.add(&case.intent, &top.interpretation.intent, &fallback);
        correct += usize::from(hit);
        if case.intent == fallback {
            oos_total += 1;
            oos_hit += usize::from(hit);
        } else {
            in_total += 1;
            in_correct += usize::from(hit);
        }
        let mut gold: Vec<(String, String)> = case
            .slots
            .iter()
            .map(|s| (s.name.clone(), norm(&s.value)))
            .collect();
        let pred: Vec<(String, String)> = top
            .slots
            .iter()
            .filter_map(|(k, v)| v.as_ref().map(|v| (k.clone(), norm(&v.interpreted_value))))
            .collect();
        gold_n += gold.len();
        pred_n += pred.len();
        for p in &pred {
            if let Some(i) = gold.iter().position(|g| g == p) {
                gold.swap_remove(i);
                tp += 1;
            }
        }
    }
    latencies.sort_unstable();
    let pct = |q: f64| -> Option<u64> {
        let n = latencies.len();
        (n > 0).then(|| latencies[((n as f64 * q).ceil() as usize).clamp(1, n) - 1])
    };
    let (precision, recall) = if gold_n > 0 {
        (Some(ratio(tp, pred_n).unwrap_or(0.0)), ratio(tp, gold_n))
    } else {
        (None, None)
    };
    let f1 = match (precision, recall) {
        (Some(p), Some(r)) if p + r > 0.0 => Some(2.0 * p * r / (p + r)),
        (Some(_), Some(_)) => Some(0.0),
        _ => None,
    };
    EvalReport {
        cases: cases.len(),
        intent_accuracy: ratio(correct, cases.len()),
        in_scope_accuracy: if oos_total > 0 {
            ratio(in_correct, in_total)
        } else {
            None
        },
        oos_recall: ratio(oos_hit, oos_total),
        slot_precision: precision,
        slot_recall: recall,
        slot_f1: f1,
        p50_us: pct(0.5),
        p99_us: pct(0.99),
        load_ms,
        rss_mb: rss_mb(),
        confusion: Some(confusion),
    }
}

/// Peak resident memory (VmHWM, else VmRSS) in MB, on Linux.
pub fn rss_mb() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|kb| kb.parse::<f64>().ok())
    };
    let kb = field("VmHWM:").or_else(|| field("VmRSS:"))?;
    Some((kb / 1024.0 * 10.0).round() / 10.0)
}

impl EvalReport {
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|_| "{}".to_string())
    }

    /// A two-column table for people.
    pub fn table(&self) -> String {
        let f = |v: Option<f64>| v.map_or("n/a".to_string(), |v| format!("{v:.4}"));
        let u = |v: Option<u64>| v.map_or("n/a".to_string(), |v| v.to_string());
        let rows = [
            ("cases", self.cases.to_string()),
            ("intent accuracy", f(self.intent_accuracy)),
            ("in-scope accuracy", f(self.in_scope_accuracy)),
            ("out-of-scope recall", f(self.oos_recall)),
            ("slot precision", f(self.slot_precision)),
            ("slot recall", f(self.slot_recall)),
            ("slot F1", f(self.slot_f1)),
            ("latency p50 (µs)", u(self.p50_us)),
            ("latency p99 (µs)", u(self.p99_us)),
            ("load + training (ms)", u(self.load_ms)),
            (
                "peak RSS (MB)",
                self.rss_mb.map_or("n/a".into(), |v| format!("{v:.1}")),
            ),
        ];
        let mut out = String::new();
        for (k, v) in rows {
            out.push_str(&format!("{k:<22} {v:>10}\n"));
        }
        out
    }
}
