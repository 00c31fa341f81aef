//! Classification metrics matching scikit-learn's definitions: zero division gives 0, ROC AUC by
//! the trapezoid rule over distinct thresholds, average precision as the step-wise sum.
//!
//! Labels are class indices `0..k`. Probabilities are flat: with two classes one value per row,
//! P(class 1); with `k > 2` classes `k` values per row (row-major), one per class. With more than
//! two classes the predicted class is the most probable (the first on ties, as numpy's argmax),
//! `precision`, `recall` and `f1` are macro averages, and `roc_auc` / `pr_auc` are one-vs-rest,
//! macro-averaged (scikit-learn's `roc_auc_score(multi_class="ovr")`).

use serde::{Deserialize, Serialize};

/// Metrics the search, the selection and the champion comparison can use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Metric {
    Accuracy,
    F1,
    F1Macro,
    F1Weighted,
    RocAuc,
    PrAuc,
}

impl Metric {
    pub fn name(self) -> &'static str {
        match self {
            Metric::Accuracy => "accuracy",
            Metric::F1 => "f1",
            Metric::F1Macro => "f1_macro",
            Metric::F1Weighted => "f1_weighted",
            Metric::RocAuc => "roc_auc",
            Metric::PrAuc => "pr_auc",
        }
    }
}

/// Rows are the true class, columns the predicted class (binary: `[[tn, fp], [fn, tp]]`).
pub type Confusion = Vec<Vec<usize>>;

pub fn confusion(y_true: &[u8], y_pred: &[u8], k: usize) -> Confusion {
    let mut c = vec![vec![0usize; k]; k];
    for (&t, &p) in y_true.iter().zip(y_pred) {
        c[t as usize][p as usize] += 1;
    }
    c
}

/// Probabilities per row for `k` classes: one (P(class 1)) when binary, else `k`.
pub fn per_row(k: usize) -> usize {
    if k == 2 {
        1
    } else {
        k
    }
}

pub fn threshold(proba: &[f64], t: f64) -> Vec<u8> {
    proba.iter().map(|&p| u8::from(p >= t)).collect()
}

/// The predicted class of each row: binary, P(class 1) >= `t`; else the most probable class.
pub fn predict_classes(proba: &[f64], k: usize, t: f64) -> Vec<u8> {
    if k == 2 {
        return threshold(proba, t);
    }
    proba
        .chunks(k)
        .map(|row| {
            let mut best = 0;
            for (j, &p) in row.iter().enumerate() {
                if p > row[best] {
                    best = j;
                }
            }
            best as u8
        })
        .collect()
}

/// One class's column of flat probabilities, and the one-vs-rest labels.
pub fn one_vs_rest(y: &[u8], proba: &[f64], k: usize, class: usize) -> (Vec<u8>, Vec<f64>) {
    if k == 2 {
        let p = if class == 1 { proba.to_vec() } else { proba.iter().map(|p| 1.0 - p).collect() };
        return (y.iter().map(|&v| u8::from(v as usize == class)).collect(), p);
    }
    (y.iter().map(|&v| u8::from(v as usize == class)).collect(), proba.chunks(k).map(|r| r[class]).collect())
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ClassScores {
    pub precision: f64,
    pub recall: f64,
    pub f1: f64,
    pub support: usize,
}

/// scikit-learn's `classification_report` as data; `classes[i]` is class `i`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClassificationReport {
    pub classes: Vec<ClassScores>,
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
    let predicted = c.iter().map(|row| row[class]).sum::<usize>() as f64;
    let support = c[class].iter().sum::<usize>();
    let precision = div(tp, predicted);
    let recall = div(tp, support as f64);
    ClassScores { precision, recall, f1: div(2.0 * precision * recall, precision + recall), support }
}

impl ClassificationReport {
    pub fn from_confusion(c: &Confusion) -> ClassificationReport {
        let classes: Vec<ClassScores> = (0..c.len()).map(|k| class_scores(c, k)).collect();
        let support = classes.iter().map(|s| s.support).sum::<usize>();
        let n = support as f64;
        let k = classes.len() as f64;
        // Sums from 0.0 in class order: for two classes bit-identical to (a + b) / 2.
        let avg = |f: fn(&ClassScores) -> f64| classes.iter().map(f).sum::<f64>() / k;
        let wavg = |f: fn(&ClassScores) -> f64| div(classes.iter().map(|s| f(s) * s.support as f64).sum::<f64>(), n);
        let correct = (0..c.len()).map(|i| c[i][i]).sum::<usize>();
        ClassificationReport {
            accuracy: div(correct as f64, n),
            macro_avg: ClassScores { precision: avg(|s| s.precision), recall: avg(|s| s.recall), f1: avg(|s| s.f1), support },
            weighted_avg: ClassScores { precision: wavg(|s| s.precision), recall: wavg(|s| s.recall), f1: wavg(|s| s.f1), support },
            classes,
        }
    }

    pub fn new(y_true: &[u8], y_pred: &[u8], k: usize) -> ClassificationReport {
        Self::from_confusion(&confusion(y_true, y_pred, k))
    }

    /// The familiar text layout of scikit-learn.
    pub fn to_text(&self) -> String {
        let mut s = format!("{:>14} {:>9} {:>9} {:>9} {:>9}\n\n", "", "precision", "recall", "f1-score", "support");
        for (name, c) in self.classes.iter().enumerate() {
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
    let mut s = format!("{:>12}", "true\\pred");
    for j in 0..c.len() {
        s.push_str(&format!(" {j:>8}"));
    }
    s.push('\n');
    for (i, row) in c.iter().enumerate() {
        s.push_str(&format!("{i:>12}"));
        for v in row {
            s.push_str(&format!(" {v:>8}"));
        }
        s.push('\n');
    }
    s
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

/// `n + 1` evenly spaced points from 0 to 1.
pub fn unit_grid(n: usize) -> Vec<f64> {
    (0..=n).map(|i| i as f64 / n as f64).collect()
}

/// A ROC curve (from [`roc_curve`]) read at each false positive rate of `grid`: linear between
/// the curve's points, the highest true positive rate where several share that rate.
pub fn roc_on_grid(curve: &[(f64, f64)], grid: &[f64]) -> Vec<f64> {
    grid.iter()
        .map(|&g| {
            let below = curve.iter().rposition(|&(x, _)| x <= g);
            let above = curve.iter().position(|&(x, _)| x > g);
            match (below, above) {
                (Some(b), Some(a)) => {
                    let ((x0, y0), (x1, y1)) = (curve[b], curve[a]);
                    y0 + (y1 - y0) * (g - x0) / (x1 - x0)
                }
                (Some(b), None) => curve[b].1,
                (None, Some(a)) => curve[a].1,
                (None, None) => f64::NAN,
            }
        })
        .collect()
}

/// A precision-recall curve (from [`pr_curve`]) read at each recall of `grid`, interpolated as
/// usual: the best precision reached at that recall or higher.
pub fn pr_on_grid(curve: &[(f64, f64)], grid: &[f64]) -> Vec<f64> {
    grid.iter().map(|&g| curve.iter().filter(|&&(r, _)| r >= g).map(|&(_, p)| p).fold(0.0, f64::max)).collect()
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

/// Multiclass log loss: the mean of -ln P(true class), probabilities clipped to [1e-15, 1 - 1e-15].
pub fn log_loss_multi(y: &[u8], proba: &[f64], k: usize) -> f64 {
    let eps = 1e-15;
    let n = y.len().max(1) as f64;
    -y.iter().zip(proba.chunks(k)).map(|(&t, row)| row[t as usize].clamp(eps, 1.0 - eps).ln()).sum::<f64>() / n
}

/// The macro average of a binary score over the one-vs-rest problems of `k > 2` classes.
fn ovr_macro(y: &[u8], proba: &[f64], k: usize, f: fn(&[u8], &[f64]) -> f64) -> f64 {
    (0..k)
        .map(|c| {
            let (yc, pc) = one_vs_rest(y, proba, k, c);
            f(&yc, &pc)
        })
        .sum::<f64>()
        / k as f64
}

impl Scores {
    /// Metrics of `k`-class flat probabilities (see the module doc); `t` is the binary threshold.
    pub fn compute(y: &[u8], proba: &[f64], k: usize, t: f64) -> Scores {
        let pred = predict_classes(proba, k, t);
        let c = confusion(y, &pred, k);
        let r = ClassificationReport::from_confusion(&c);
        // precision / recall / f1: of the positive class (binary), macro averages (multiclass).
        let (head, roc, pr, ll) = if k == 2 {
            (r.classes[1], roc_auc(y, proba), average_precision(y, proba), log_loss(y, proba))
        } else {
            (r.macro_avg, ovr_macro(y, proba, k, roc_auc), ovr_macro(y, proba, k, average_precision), log_loss_multi(y, proba, k))
        };
        Scores {
            accuracy: r.accuracy,
            precision: head.precision,
            recall: head.recall,
            f1: head.f1,
            f1_macro: r.macro_avg.f1,
            f1_weighted: r.weighted_avg.f1,
            precision_macro: r.macro_avg.precision,
            recall_macro: r.macro_avg.recall,
            precision_weighted: r.weighted_avg.precision,
            recall_weighted: r.weighted_avg.recall,
            roc_auc: roc,
            pr_auc: pr,
            log_loss: ll,
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
pub fn score(m: Metric, y: &[u8], proba: &[f64], k: usize, t: f64) -> f64 {
    if k > 2 {
        return match m {
            Metric::RocAuc => ovr_macro(y, proba, k, roc_auc),
            Metric::PrAuc => ovr_macro(y, proba, k, average_precision),
            _ => Scores::compute(y, proba, k, t).get(m),
        };
    }
    match m {
        Metric::RocAuc => roc_auc(y, proba),
        Metric::PrAuc => average_precision(y, proba),
        _ => {
            let r = ClassificationReport::new(y, &threshold(proba, t), 2);
            match m {
                Metric::Accuracy => r.accuracy,
                Metric::F1 => r.classes[1].f1,
                Metric::F1Macro => r.macro_avg.f1,
                _ => r.weighted_avg.f1,
            }
        }
    }
}

/// Brier score: binary, the mean of (P(class 1) - y)²; with `k > 2` classes the mean over rows
/// of Σ over classes of (p - [y = class])² (scikit-learn's `brier_score_loss`, binary and
/// multiclass).
pub fn brier(y: &[u8], proba: &[f64], k: usize) -> f64 {
    if y.is_empty() {
        return 0.0;
    }
    let sum: f64 = if k == 2 {
        y.iter().zip(proba).map(|(&t, &p)| (p - f64::from(t)).powi(2)).sum()
    } else {
        y.iter()
            .zip(proba.chunks(k))
            .map(|(&t, row)| row.iter().enumerate().map(|(c, &p)| (p - f64::from(u8::from(c == t as usize))).powi(2)).sum::<f64>())
            .sum()
    };
    sum / y.len() as f64
}

/// One bin of a reliability diagram.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ReliabilityBin {
    /// Mean predicted probability of the bin's rows.
    pub predicted: f64,
    /// Share of them that are positive.
    pub observed: f64,
    pub rows: usize,
}

/// `bins` equal-width bins of P(class 1) over [0, 1]; the non-empty ones, in order
/// (scikit-learn's `calibration_curve(strategy="uniform")`: an edge value falls in the lower bin).
pub fn reliability(y: &[u8], proba: &[f64], bins: usize) -> Vec<ReliabilityBin> {
    let mut sums = vec![(0.0, 0usize, 0usize); bins];
    for (&t, &p) in y.iter().zip(proba) {
        // The number of inner edges strictly below p (numpy.linspace's i * step).
        let step = 1.0 / bins as f64;
        let b = (1..bins).take_while(|&i| (i as f64 * step) < p).count();
        sums[b].0 += p;
        sums[b].1 += usize::from(t == 1);
        sums[b].2 += 1;
    }
    sums.into_iter()
        .filter(|s| s.2 > 0)
        .map(|(p, pos, n)| ReliabilityBin { predicted: p / n as f64, observed: pos as f64 / n as f64, rows: n })
        .collect()
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
        let r = ClassificationReport::new(&y, &threshold(&s, 0.375), 2);
        // pred = [0,1,0,1]
        assert_eq!(r.accuracy, 0.5);
        assert_eq!(r.classes[1].precision, 0.5);
        assert!((log_loss(&y, &s) - 0.472_287_953_809_176).abs() < 1e-9);
    }

    #[test]
    fn zero_division_is_zero() {
        let r = ClassificationReport::new(&[0, 1], &[0, 0], 2);
        assert_eq!(r.classes[1].precision, 0.0);
        assert_eq!(r.classes[1].f1, 0.0);
    }

    #[test]
    fn three_classes_against_sklearn_values() {
        // Reference values printed by scikit-learn 1.9.1 for these rows (accuracy_score,
        // f1_score macro/weighted, roc_auc_score(multi_class="ovr"), log_loss, and the mean of
        // average_precision_score over the one-vs-rest columns).
        let y = [0u8, 1, 2, 2, 1, 0];
        let p = [
            0.7, 0.2, 0.1, //
            0.2, 0.5, 0.3, //
            0.1, 0.3, 0.6, //
            0.2, 0.5, 0.3, //
            0.3, 0.4, 0.3, //
            0.6, 0.3, 0.1,
        ];
        let s = Scores::compute(&y, &p, 3, 0.5);
        assert_eq!(predict_classes(&p, 3, 0.5), [0, 1, 2, 1, 1, 0]);
        assert_eq!(s.confusion_matrix, vec![vec![2, 0, 0], vec![0, 2, 0], vec![0, 1, 1]]);
        let close = |a: f64, b: f64| (a - b).abs() < 1e-12;
        assert!(close(s.accuracy, 0.8333333333333334), "{}", s.accuracy);
        assert!(close(s.f1_macro, 0.8222222222222223) && close(s.f1_weighted, 0.8222222222222223), "{s:?}");
        assert!(close(s.roc_auc, 0.8958333333333334), "{}", s.roc_auc);
        assert!(close(s.pr_auc, 0.7777777777777777), "{}", s.pr_auc);
        assert!(close(s.log_loss, 0.6986228180384585), "{}", s.log_loss);
        // Ties go to the first class, as numpy's argmax.
        assert_eq!(predict_classes(&[0.4, 0.4, 0.2], 3, 0.5), [0]);
    }

    #[test]
    fn curves_read_on_a_grid() {
        // y = 1 1 0 1 0 at decreasing scores: ROC (0,0) (0,1/3) (0,2/3) (1/2,2/3) (1/2,1) (1,1).
        let y = [1, 1, 0, 1, 0];
        let p = [0.9, 0.8, 0.7, 0.6, 0.5];
        let roc = roc_curve(&y, &p);
        let close = |a: f64, b: f64| (a - b).abs() < 1e-12;
        let grid = unit_grid(4);
        assert_eq!(grid, [0.0, 0.25, 0.5, 0.75, 1.0]);
        // At fpr 0 the best tpr is 2/3; halfway to fpr 0.5 the line from (0, 2/3) to (0.5, 2/3).
        let got = roc_on_grid(&roc, &grid);
        let want = [2.0 / 3.0, 2.0 / 3.0, 1.0, 1.0, 1.0];
        assert!(got.iter().zip(want).all(|(a, b)| close(*a, b)), "{got:?}");
        // PR points (recall, precision): (1/3,1) (2/3,1) (2/3,2/3) (1,3/4) (1,3/5); interpolated
        // precision = the best at that recall or above.
        let got = pr_on_grid(&pr_curve(&y, &p), &grid);
        let want = [1.0, 1.0, 1.0, 0.75, 0.75];
        assert!(got.iter().zip(want).all(|(a, b)| close(*a, b)), "{got:?}");
    }
}
