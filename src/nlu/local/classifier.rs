//! A multiclass linear SVM (Crammer–Singer hinge loss: the right intent must
//! outscore every other by a margin of 1), trained by Pegasos-style SGD with
//! iterate averaging, and a logistic map from a score to the probability that
//! the intent it ranks first is right, fitted on held-out sample utterances
//! so that confidences can be compared with `nluConfidenceThreshold`.

use super::features::Features;
use super::rng::Rng;

const EPOCHS: usize = 16;
/// Regularisation as an SVM's `C`: the weight of the summed hinge losses
/// against half the squared norm of the weights (Pegasos' λ is `1 / (C n)`).
const C: f64 = 0.5;
/// Offsets the step size `1 / (λ t)` so the first steps stay finite.
const T0: f64 = 64.0;

#[derive(Debug, Clone, Default)]
pub struct Linear {
    classes: usize,
    /// Feature-major: row `f` holds the `classes` weights of feature `f`; the
    /// last row is the bias, a feature that is always 1.
    weights: Vec<f32>,
}

impl Linear {
    pub fn train(xs: &[&Features], ys: &[usize], classes: usize, dim: usize, seed: u64) -> Self {
        let rows = dim + 1;
        let lambda = 1.0 / (C * xs.len().max(1) as f64);
        // The weights are `scale * v`, so shrinking them each step is one
        // multiplication.
        let mut v = Linear {
            classes,
            weights: vec![0.0; rows * classes],
        };
        let mut scale = 1.0f64;
        let mut sum = vec![0.0f32; rows * classes];
        let mut averaged = 0usize;
        let mut order: Vec<usize> = (0..xs.len()).collect();
        let mut rng = Rng::new(seed);
        let mut scores = vec![0.0f32; classes];
        let mut t = T0;
        for epoch in 0..EPOCHS {
            rng.shuffle(&mut order);
            for &i in &order {
                t += 1.0;
                scale *= 1.0 - 1.0 / t;
                let Some(&y) = ys.get(i).filter(|&&y| y < classes) else {
                    continue;
                };
                v.logits(xs[i], &mut scores);
                let rival = (0..classes)
                    .filter(|&c| c != y)
                    .max_by(|&a, &b| scores[a].total_cmp(&scores[b]));
                let Some(r) = rival else { continue };
                if f64::from(scores[r] - scores[y]) * scale + 1.0 <= 0.0 {
                    continue;
                }
                // Step 1 / (λ t) on the weights is this on `v`.
                let step = (1.0 / (lambda * t * scale)) as f32;
                for (f, x) in xs[i].each().chain([(dim, 1.0)]) {
                    let row = &mut v.weights[f * classes..][..classes];
                    row[y] += step * x;
                    row[r] -= step * x;
                }
            }
            if scale < 1e-6 {
                let s = scale as f32;
                v.weights.iter_mut().for_each(|w| *w *= s);
                scale = 1.0;
            }
            if epoch >= EPOCHS / 2 {
                averaged += 1;
                let s = scale as f32;
                sum.iter_mut()
                    .zip(&v.weights)
                    .for_each(|(a, w)| *a += s * w);
            }
        }
        let n = averaged.max(1) as f32;
        sum.iter_mut().for_each(|a| *a /= n);
        Linear {
            classes,
            weights: sum,
        }
    }

    pub fn classes(&self) -> usize {
        self.classes
    }

    /// One score per class (bias included).
    pub fn logits(&self, x: &Features, out: &mut [f32]) {
        if self.classes == 0 {
            return;
        }
        let bias_row = self.weights.len() / self.classes.max(1) - 1;
        let bias = &self.weights[bias_row * self.classes..][..self.classes];
        out.copy_from_slice(bias);
        for (f, v) in x.each() {
            if f < bias_row {
                let row = &self.weights[f * self.classes..][..self.classes];
                for (o, w) in out.iter_mut().zip(row) {
                    *o += v * w;
                }
            }
        }
    }

    pub fn scores(&self, x: &Features) -> Vec<f32> {
        let mut out = vec![0.0; self.classes];
        self.logits(x, &mut out);
        out
    }
}

/// `P(right | score) = 1 / (1 + e^-(slope · score + offset))`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Calibration {
    pub slope: f32,
    pub offset: f32,
}

impl Calibration {
    pub fn probability(&self, score: f32) -> f32 {
        1.0 / (1.0 + (-(self.slope * score + self.offset)).exp())
    }

    /// Fits the map on held-out examples — each the score of the intent ranked
    /// first and whether it was right — by Newton's method on the
    /// log-likelihood, pulled towards `prior` with the weight of `strength`
    /// examples so that a small bot's few held-out utterances cannot swing it.
    pub fn fit(examples: &[(f32, bool)], prior: Calibration, strength: f64) -> Calibration {
        let (p_slope, p_offset) = (f64::from(prior.slope), f64::from(prior.offset));
        let (mut a, mut b) = (p_slope, p_offset);
        for _ in 0..50 {
            // Gradient and Hessian of the negative log-likelihood plus the prior.
            let (mut ga, mut gb) = (strength * (a - p_slope), strength * (b - p_offset));
            let (mut haa, mut hab, mut hbb) = (strength, 0.0, strength);
            for &(s, right) in examples {
                let s = f64::from(s);
                let p = 1.0 / (1.0 + (-(a * s + b)).exp());
                let e = p - if right { 1.0 } else { 0.0 };
                let w = (p * (1.0 - p)).max(1e-9);
                ga += e * s;
                gb += e;
                haa += w * s * s;
                hab += w * s;
                hbb += w;
            }
            let det = haa * hbb - hab * hab;
            if det.abs() < 1e-12 {
                break;
            }
            let (da, db) = ((hbb * ga - hab * gb) / det, (haa * gb - hab * ga) / det);
            a -= da;
            b -= db;
            if da.abs() + db.abs() < 1e-7 {
                break;
            }
        }
        // A higher score must never mean a lower confidence: evidence that it
        // does says the held-out utterances are no guide.
        if a < 0.1 || !a.is_finite() || !b.is_finite() {
            return prior;
        }
        Calibration {
            slope: a as f32,
            offset: b as f32,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nlu::local::features::Sparse;

    #[test]
    fn separates_three_classes_with_a_margin() {
        let sparse = |s: Sparse| Features {
            sparse: s,
            ..Features::default()
        };
        let xs: Vec<Features> = (0..60)
            .map(|i| sparse(vec![((i % 3) as u32, 1.0), (3, 0.5)]))
            .collect();
        let ys: Vec<usize> = (0..60).map(|i| i % 3).collect();
        let refs: Vec<&Features> = xs.iter().collect();
        let m = Linear::train(&refs, &ys, 3, 4, 7);
        for class in 0..3u32 {
            let s = m.scores(&sparse(vec![(class, 1.0), (3, 0.5)]));
            let best = s[class as usize];
            // The hinge asks for a margin of 1, and the regularisation keeps
            // the weights from growing past what that needs.
            let margin = s
                .iter()
                .enumerate()
                .filter(|&(c, _)| c != class as usize)
                .map(|(_, &o)| best - o)
                .fold(f32::INFINITY, f32::min);
            assert!(margin > 0.5 && margin < 1.5, "{s:?}");
        }
    }

    #[test]
    fn calibration_follows_the_evidence_and_a_small_sample_stays_near_the_prior() {
        let prior = Calibration {
            slope: 4.0,
            offset: -1.0,
        };
        // Right whenever the score is above 0.5, wrong below.
        let examples: Vec<(f32, bool)> = (0..400)
            .map(|i| {
                let s = i as f32 / 400.0;
                (s, s > 0.5)
            })
            .collect();
        let fitted = Calibration::fit(&examples, prior, 1.0);
        assert!(fitted.probability(0.9) > 0.95 && fitted.probability(0.1) < 0.05);
        assert!((fitted.probability(0.5) - 0.5).abs() < 0.1);
        let few = Calibration::fit(&examples[..3], prior, 50.0);
        assert!((few.slope - prior.slope).abs() < 0.5 && (few.offset - prior.offset).abs() < 0.5);
        // Evidence that higher scores are worse cannot invert the map.
        let inverted: Vec<(f32, bool)> = examples.iter().map(|&(s, r)| (s, !r)).collect();
        assert_eq!(Calibration::fit(&inverted, prior, 1.0), prior);
    }
}
