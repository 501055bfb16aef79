//! Multinomial logistic regression trained by averaged SGD, with a softmax
//! temperature fitted on held-out sample utterances so that confidences mean
//! something when compared with `nluConfidenceThreshold`.

use super::features::Sparse;
use super::rng::Rng;

const EPOCHS: usize = 18;
const LEARNING_RATE: f32 = 0.8;
const L2: f32 = 2e-6;

#[derive(Debug, Clone, Default)]
pub struct Linear {
    classes: usize,
    /// Feature-major: row `f` holds the `classes` weights of feature `f`.
    weights: Vec<f32>,
    bias: Vec<f32>,
    /// Logits are divided by this before the softmax.
    pub temperature: f32,
}

impl Linear {
    pub fn train(xs: &[Sparse], ys: &[usize], classes: usize, dim: usize, seed: u64) -> Self {
        let mut m = Linear {
            classes,
            weights: vec![0.0; dim * classes],
            bias: vec![0.0; classes],
            temperature: 1.0,
        };
        let mut avg_w = vec![0.0f32; dim * classes];
        let mut avg_b = vec![0.0f32; classes];
        let mut averaged = 0.0f32;
        let mut order: Vec<usize> = (0..xs.len()).collect();
        let mut rng = Rng::new(seed);
        let mut grad = vec![0.0f32; classes];
        for epoch in 0..EPOCHS {
            rng.shuffle(&mut order);
            let lr = LEARNING_RATE / (1.0 + 0.3 * epoch as f32);
            for &i in &order {
                m.logits(&xs[i], &mut grad);
                softmax(&mut grad, 1.0);
                if let Some(g) = grad.get_mut(ys[i]) {
                    *g -= 1.0;
                }
                for (f, v) in &xs[i] {
                    let row = &mut m.weights[*f as usize * classes..][..classes];
                    let step = lr * v;
                    for (w, g) in row.iter_mut().zip(&grad) {
                        *w -= step * g;
                    }
                }
                for (b, g) in m.bias.iter_mut().zip(&grad) {
                    *b -= lr * g;
                }
            }
            let decay = 1.0 - (lr * L2 * xs.len() as f32).min(0.5);
            m.weights.iter_mut().for_each(|w| *w *= decay);
            if epoch >= EPOCHS / 2 {
                averaged += 1.0;
                avg_w.iter_mut().zip(&m.weights).for_each(|(a, w)| *a += w);
                avg_b.iter_mut().zip(&m.bias).for_each(|(a, b)| *a += b);
            }
        }
        if averaged > 0.0 {
            avg_w.iter_mut().for_each(|a| *a /= averaged);
            avg_b.iter_mut().for_each(|a| *a /= averaged);
            m.weights = avg_w;
            m.bias = avg_b;
        }
        m
    }

    pub fn logits(&self, x: &Sparse, out: &mut [f32]) {
        out.copy_from_slice(&self.bias);
        for (f, v) in x {
            if let Some(row) = self.weights.get(*f as usize * self.classes..) {
                for (o, w) in out.iter_mut().zip(&row[..self.classes]) {
                    *o += v * w;
                }
            }
        }
    }

    pub fn probabilities(&self, x: &Sparse) -> Vec<f32> {
        let mut out = vec![0.0; self.classes];
        self.logits(x, &mut out);
        softmax(&mut out, self.temperature);
        out
    }
}

pub fn softmax(v: &mut [f32], temperature: f32) {
    let max = v.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let mut sum = 0.0;
    for x in v.iter_mut() {
        *x = ((*x - max) / temperature).exp();
        sum += *x;
    }
    v.iter_mut().for_each(|x| *x /= sum.max(f32::MIN_POSITIVE));
}

/// The temperature minimising the negative log-likelihood of held-out
/// examples (golden-section search on log T).
pub fn fit_temperature(model: &Linear, xs: &[Sparse], ys: &[usize]) -> f32 {
    if xs.is_empty() {
        return 1.0;
    }
    let logits: Vec<Vec<f32>> = xs
        .iter()
        .map(|x| {
            let mut l = vec![0.0; model.classes];
            model.logits(x, &mut l);
            l
        })
        .collect();
    let nll = |t: f32| -> f32 {
        let mut total = 0.0;
        let mut buf = vec![0.0; model.classes];
        for (l, &y) in logits.iter().zip(ys) {
            buf.copy_from_slice(l);
            softmax(&mut buf, t);
            total -= buf.get(y).copied().unwrap_or(0.0).max(1e-9).ln();
        }
        total
    };
    let (mut lo, mut hi) = (-3.0f32, 3.0f32);
    let ratio = 0.618_034f32;
    for _ in 0..40 {
        let a = hi - ratio * (hi - lo);
        let b = lo + ratio * (hi - lo);
        if nll(a.exp()) < nll(b.exp()) {
            hi = b;
        } else {
            lo = a;
        }
    }
    ((lo + hi) / 2.0).exp()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn separates_two_classes() {
        let xs: Vec<Sparse> = (0..40)
            .map(|i| vec![((i % 2) as u32, 1.0), (2, 0.5)])
            .collect();
        let ys: Vec<usize> = (0..40).map(|i| i % 2).collect();
        let m = Linear::train(&xs, &ys, 2, 3, 7);
        assert!(m.probabilities(&vec![(0, 1.0)])[0] > 0.8);
        assert!(m.probabilities(&vec![(1, 1.0)])[1] > 0.8);
        let t = fit_temperature(&m, &xs, &ys);
        assert!(t > 0.0);
    }
}
