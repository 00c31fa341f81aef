//! Binary classification metrics (labels 0/1, scores = P(positive class)), matching scikit-learn's
//! definitions: zero division gives 0, ROC AUC by the trapezoid rule over distinct thresholds,
//! average precision as the step-wise sum.

use serde::{Deserialize, Serialize};

use crate::params::Metric;

/// `[[tn, fp], [fn, tp]]`: rows are the true class, columns the predicted class.
pub type Confusion = [[usize; 2]; 2];

pub fn confusion(y_true: &[u8], y_pred: &[u8]) -> Confusion {
    let mut c = [[0usize; 2]; 2];
    for (&t, &p) in y_true.iter().zip(y_pred) {
        c[(t == 1) as usize][(p == 1) as usize] += 1;
    }
    c
}

pub fn threshold(proba: &[f64], t: f64) -> Vec<u8> {
    proba.iter().map(|&p| u8::from(p >= t)).collect()
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ClassScores {
    pub precision: f64,
    pub recall: f64,
    pub f1: f64,
    pub support: usize,
}

/// scikit-learn's `classification_report` as data.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClassificationReport {
    #[serde(rename = "0")]
    pub class0: ClassScores,
    #[serde(rename = "1")]
    pub class1: ClassScores,
    pub accuracy: f64,
    #[serde(rename = "macro avg")]
    pub macro_avg: ClassScores,
    #[serde(rename = "weighted avg")]
    pub weighted_avg: ClassScores,
}

fn div(a: f64, b: f64) -> f64 {
    if b == 0.0 {
        0.0
    } else {
        a / b
    }
}

fn class_scores(c: &Confusion, class: usize) -> ClassScores {
    let tp = c[class][class] as f64;
    let predicted = (c[0][class] + c[1][class]) as f64;
    let support = c[class][0] + c[class][1];
    let precision = div(tp, predicted);
    let recall = div(tp, support as f64);
    ClassScores { precision, recall, f1: div(2.0 * precision * recall, precision + recall), support }
}

impl ClassificationReport {
    pub fn from_confusion(c: &Confusion) -> ClassificationReport {
        let c0 = class_scores(c, 0);
        let c1 = class_scores(c, 1);
        let n = (c0.support + c1.support) as f64;
        let avg = |f: fn(&ClassScores) -> f64| (f(&c0) + f(&c1)) / 2.0;
        let wavg = |f: fn(&ClassScores) -> f64| div(f(&c0) * c0.support as f64 + f(&c1) * c1.support as f64, n);
        let support = c0.support + c1.support;
        ClassificationReport {
            class0: c0,
            class1: c1,
            accuracy: div((c[0][0] + c[1][1]) as f64, n),
            macro_avg: ClassScores { precision: avg(|s| s.precision), recall: avg(|s| s.recall), f1: avg(|s| s.f1), support },
            weighted_avg: ClassScores { precision: wavg(|s| s.precision), recall: wavg(|s| s.recall), f1: wavg(|s| s.f1), support },
        }
    }

    pub fn new(y_true: &[u8], y_pred: &[u8]) -> ClassificationReport {
        Self::from_confusion(&confusion(y_true, y_pred))
    }

    /// The familiar text layout of scikit-learn.
    pub fn to_text(&self) -> String {
        let mut s = format!("{:>14} {:>9} {:>9} {:>9} {:>9}\n\n", "", "precision", "recall", "f1-score", "support");
        for (name, c) in [("0", &self.class0), ("1", &self.class1)] {
            s.push_str(&format!("{:>14} {:>9.2} {:>9.2} {:>9.2} {:>9}\n", name, c.precision, c.recall, c.f1, c.support));
        }
        s.push_str(&format!("\n{:>14} {:>9} {:>9} {:>9.2} {:>9}\n", "accuracy", "", "", self.accuracy, self.macro_avg.support));
        for (name, c) in [("macro avg", &self.macro_avg), ("weighted avg", &self.weighted_avg)] {
            s.push_str(&format!("{:>14} {:>9.2} {:>9.2} {:>9.2} {:>9}\n", name, c.precision, c.recall, c.f1, c.support));
        }
        s
    }
}

pub fn confusion_text(c: &Confusion) -> String {
    format!(
        "{:>12} {:>8} {:>8}\n{:>12} {:>8} {:>8}\n{:>12} {:>8} {:>8}\n",
        "true\\pred", "0", "1", "0", c[0][0], c[0][1], "1", c[1][0], c[1][1]
    )
}

/// Points of the ROC curve `(fpr, tpr)`, from (0,0) to (1,1), one per distinct score.
pub fn roc_curve(y: &[u8], scores: &[f64]) -> Vec<(f64, f64)> {
    let (pos, neg) = counts(y);
    let mut pts = vec![(0.0, 0.0)];
    let (mut tp, mut fp) = (0usize, 0usize);
    for group in sorted_groups(y, scores) {
        tp += group.0;
        fp += group.1;
        pts.push((div(fp as f64, neg as f64), div(tp as f64, pos as f64)));
    }
    pts
}

/// Points of the precision-recall curve `(recall, precision)`, by decreasing threshold.
pub fn pr_curve(y: &[u8], scores: &[f64]) -> Vec<(f64, f64)> {
    let (pos, _) = counts(y);
    let mut pts = vec![(0.0, 1.0)];
    let (mut tp, mut fp) = (0usize, 0usize);
    for group in sorted_groups(y, scores) {
        tp += group.0;
        fp += group.1;
        pts.push((div(tp as f64, pos as f64), div(tp as f64, (tp + fp) as f64)));
    }
    pts
}

fn counts(y: &[u8]) -> (usize, usize) {
    let pos = y.iter().filter(|&&v| v == 1).count();
    (pos, y.len() - pos)
}

/// (positives, negatives) per distinct score, highest score first.
fn sorted_groups(y: &[u8], scores: &[f64]) -> Vec<(usize, usize)> {
    let mut idx: Vec<usize> = (0..y.len()).collect();
    idx.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]));
    let mut groups: Vec<(usize, usize)> = Vec::new();
    let mut last: Option<f64> = None;
    for i in idx {
        if last != Some(scores[i]) {
            groups.push((0, 0));
            last = Some(scores[i]);
        }
        let g = groups.last_mut().expect("pushed above");
        if y[i] == 1 {
            g.0 += 1;
        } else {
            g.1 += 1;
        }
    }
    groups
}

pub fn roc_auc(y: &[u8], scores: &[f64]) -> f64 {
    let pts = roc_curve(y, scores);
    pts.windows(2).map(|w| (w[1].0 - w[0].0) * (w[1].1 + w[0].1) / 2.0).sum()
}

/// Average precision: Σ (R_n − R_{n−1}) · P_n.
pub fn average_precision(y: &[u8], scores: &[f64]) -> f64 {
    let pts = pr_curve(y, scores);
    pts.windows(2).map(|w| (w[1].0 - w[0].0) * w[1].1).sum()
}

pub fn log_loss(y: &[u8], proba: &[f64]) -> f64 {
    let eps = 1e-15;
    let n = y.len().max(1) as f64;
    -y.iter()
        .zip(proba)
        .map(|(&t, &p)| {
            let p = p.clamp(eps, 1.0 - eps);
            if t == 1 {
                p.ln()
            } else {
                (1.0 - p).ln()
            }
        })
        .sum::<f64>()
        / n
}

/// All metrics of one model on one labelled set.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Scores {
    pub accuracy: f64,
    pub precision: f64,
    pub recall: f64,
    pub f1: f64,
    pub f1_macro: f64,
    pub f1_weighted: f64,
    pub precision_macro: f64,
    pub recall_macro: f64,
    pub precision_weighted: f64,
    pub recall_weighted: f64,
    pub roc_auc: f64,
    pub pr_auc: f64,
    pub log_loss: f64,
    pub confusion_matrix: Confusion,
}

impl Scores {
    pub fn compute(y: &[u8], proba: &[f64], t: f64) -> Scores {
        let pred = threshold(proba, t);
        let c = confusion(y, &pred);
        let r = ClassificationReport::from_confusion(&c);
        Scores {
            accuracy: r.accuracy,
            precision: r.class1.precision,
            recall: r.class1.recall,
            f1: r.class1.f1,
            f1_macro: r.macro_avg.f1,
            f1_weighted: r.weighted_avg.f1,
            precision_macro: r.macro_avg.precision,
            recall_macro: r.macro_avg.recall,
            precision_weighted: r.weighted_avg.precision,
            recall_weighted: r.weighted_avg.recall,
            roc_auc: roc_auc(y, proba),
            pr_auc: average_precision(y, proba),
            log_loss: log_loss(y, proba),
            confusion_matrix: c,
        }
    }

    /// The scalar metrics by name (for tracking and run comparisons).
    pub fn named(&self) -> [(&'static str, f64); 9] {
        [
            ("accuracy", self.accuracy),
            ("precision", self.precision),
            ("recall", self.recall),
            ("f1", self.f1),
            ("f1_macro", self.f1_macro),
            ("f1_weighted", self.f1_weighted),
            ("roc_auc", self.roc_auc),
            ("pr_auc", self.pr_auc),
            ("log_loss", self.log_loss),
        ]
    }

    pub fn get(&self, m: Metric) -> f64 {
        match m {
            Metric::Accuracy => self.accuracy,
            Metric::F1 => self.f1,
            Metric::F1Macro => self.f1_macro,
            Metric::F1Weighted => self.f1_weighted,
            Metric::RocAuc => self.roc_auc,
            Metric::PrAuc => self.pr_auc,
        }
    }
}

/// The search score of one fold.
pub fn score(m: Metric, y: &[u8], proba: &[f64], t: f64) -> f64 {
    match m {
        Metric::RocAuc => roc_auc(y, proba),
        Metric::PrAuc => average_precision(y, proba),
        _ => {
            let r = ClassificationReport::new(y, &threshold(proba, t));
            match m {
                Metric::Accuracy => r.accuracy,
                Metric::F1 => r.class1.f1,
                Metric::F1Macro => r.macro_avg.f1,
                _ => r.weighted_avg.f1,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn against_sklearn_values() {
        // sklearn: y=[0,0,1,1], s=[0.1,0.4,0.35,0.8] -> roc_auc 0.75, average_precision 0.8333
        let y = [0, 0, 1, 1];
        let s = [0.1, 0.4, 0.35, 0.8];
        assert!((roc_auc(&y, &s) - 0.75).abs() < 1e-12);
        assert!((average_precision(&y, &s) - 0.833_333_333_333_333_4).abs() < 1e-12);
        let r = ClassificationReport::new(&y, &threshold(&s, 0.375));
        // pred = [0,1,0,1]
        assert_eq!(r.accuracy, 0.5);
        assert_eq!(r.class1.precision, 0.5);
        assert!((log_loss(&y, &s) - 0.472_287_953_809_176).abs() < 1e-9);
    }

    #[test]
    fn zero_division_is_zero() {
        let r = ClassificationReport::new(&[0, 1], &[0, 0]);
        assert_eq!(r.class1.precision, 0.0);
        assert_eq!(r.class1.f1, 0.0);
    }
}
