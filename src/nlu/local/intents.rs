//! The intent classifier: TF-IDF features, a softmax model and a held-out
//! temperature, trained at load time from the sample utterances.

use super::classifier::{fit_temperature, Linear};
use super::features::{Sparse, Vectorizer};
use super::parallel::{self, Job};
use super::text::tokenize;

#[derive(Debug)]
pub struct IntentModel {
    vectorizer: Vectorizer,
    linear: Linear,
    /// How hard unseen words pull the confidence down (see `rank`).
    coverage_power: f32,
}

/// Every `HOLDOUT`-th example of each intent calibrates the temperature.
const HOLDOUT: usize = 8;
const MIN_CALIBRATION: usize = 200;

impl IntentModel {
    /// `docs`: (utterance, intent index, sample utterance it came from);
    /// `classes` intents in all.
    /// `extra` jobs (e.g. slot taggers) share the worker threads.
    pub fn train<'a, T: Send + 'a>(
        docs: &[(String, usize, usize)],
        classes: usize,
        extra: Vec<Job<'a, T>>,
    ) -> (Self, Vec<T>) {
        let tokens: Vec<Vec<String>> = docs
            .iter()
            .map(|(t, _, _)| tokenize(t).into_iter().map(|t| t.norm).collect())
            .collect();
        let refs: Vec<Vec<&str>> = tokens
            .iter()
            .map(|d| d.iter().map(String::as_str).collect())
            .collect();
        let vectorizer = Vectorizer::fit(&refs);
        let xs: Vec<Sparse> = refs.iter().map(|d| vectorizer.transform(d)).collect();
        let ys: Vec<usize> = docs.iter().map(|(_, y, _)| *y).collect();
        let dim = vectorizer.dim();

        // Whole sample utterances are held out, so expansions of one template
        // never sit on both sides.
        let held: Vec<bool> = docs
            .iter()
            .map(|(_, _, source)| source % HOLDOUT == HOLDOUT - 1)
            .collect();
        let (mut fit_x, mut fit_y, mut cal_x, mut cal_y) = (vec![], vec![], vec![], vec![]);
        for ((x, &y), &h) in xs.iter().zip(&ys).zip(&held) {
            if h {
                cal_x.push(x.clone());
                cal_y.push(y);
            } else {
                fit_x.push(x.clone());
                fit_y.push(y);
            }
        }

        let held_out = cal_y.len();
        enum Out<T> {
            Model(Linear),
            Temperature(f32),
            Extra(T),
        }
        let (xs_ref, ys_ref) = (&xs, &ys);
        let mut jobs: Vec<Job<'_, Out<T>>> = vec![
            Box::new(move || Out::Model(Linear::train(xs_ref, ys_ref, classes, dim, 17))),
            Box::new(move || {
                let m = Linear::train(&fit_x, &fit_y, classes, dim, 23);
                Out::Temperature(fit_temperature(&m, &cal_x, &cal_y))
            }),
        ];
        for job in extra {
            jobs.push(Box::new(move || Out::Extra(job())));
        }
        let mut linear = Linear::default();
        let mut temperature = 1.0;
        let mut rest = Vec::new();
        for out in parallel::run(jobs) {
            match out {
                Out::Model(m) => linear = m,
                Out::Temperature(t) => temperature = t,
                Out::Extra(e) => rest.push(e),
            }
        }
        // A fit on a handful of held-out utterances is noise: a small bot
        // keeps its raw confidences and leans on word coverage instead.
        let small = held_out < MIN_CALIBRATION;
        linear.temperature = if small {
            temperature.max(1.0)
        } else {
            temperature
        };
        let coverage_power = if small { 1.0 } else { 0.5 };
        let model = IntentModel {
            vectorizer,
            linear,
            coverage_power,
        };
        (model, rest)
    }

    /// (intent index, probability), best first.
    pub fn rank(&self, folded: &[&str]) -> Vec<(usize, f32)> {
        let x = self.vectorizer.transform(folded);
        let scale = self.vectorizer.coverage(folded).powf(self.coverage_power);
        let probs = self.linear.probabilities(&x);
        let mut ranked: Vec<(usize, f32)> =
            probs.into_iter().map(|p| p * scale).enumerate().collect();
        ranked.sort_by(|a, b| b.1.total_cmp(&a.1));
        ranked
    }
}
