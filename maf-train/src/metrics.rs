//! Evaluation numbers: mean with two standard errors, AUROC, AUPRC, quantiles.

/// Mean of `v` and two standard errors of the mean (`2 * sd / sqrt(n)`, sample
/// standard deviation with `n - 1`; 0 for fewer than two values).
pub fn mean_two_se(v: &[f64]) -> (f64, f64) {
    let n = v.len();
    if n == 0 {
        return (f64::NAN, f64::NAN);
    }
    let mean = v.iter().sum::<f64>() / n as f64;
    if n < 2 {
        return (mean, 0.0);
    }
    let var = v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1) as f64;
    (mean, 2.0 * (var / n as f64).sqrt())
}

/// Area under the ROC curve of `scores` (higher = more anomalous) against `labels`
/// (`true` = anomaly): the probability that a random anomaly scores above a random
/// normal row, ties counting one half. `None` if either class is empty.
pub fn auroc(scores: &[f64], labels: &[bool]) -> Option<f64> {
    let pos = labels.iter().filter(|&&l| l).count();
    let neg = labels.len() - pos;
    if pos == 0 || neg == 0 {
        return None;
    }
    let mut idx: Vec<usize> = (0..scores.len()).collect();
    idx.sort_by(|&a, &b| scores[a].total_cmp(&scores[b]));
    // Mann-Whitney U with mid-ranks for ties.
    let mut rank_sum = 0.0;
    let mut i = 0;
    while i < idx.len() {
        let mut j = i;
        while j + 1 < idx.len() && scores[idx[j + 1]].total_cmp(&scores[idx[i]]).is_eq() {
            j += 1;
        }
        let mid = (i + j) as f64 / 2.0 + 1.0;
        rank_sum += mid * idx[i..=j].iter().filter(|&&k| labels[k]).count() as f64;
        i = j + 1;
    }
    let (p, n) = (pos as f64, neg as f64);
    Some((rank_sum - p * (p + 1.0) / 2.0) / (p * n))
}

/// Sweeps a threshold from the highest score down: the cumulative counts
/// `(true positives, false positives)` after each group of tied scores (`true` =
/// anomaly, higher score = more anomalous). Rows beyond the shorter slice are
/// ignored.
pub fn threshold_sweep(scores: &[f64], labels: &[bool]) -> Vec<(usize, usize)> {
    let mut idx: Vec<usize> = (0..scores.len().min(labels.len())).collect();
    idx.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]));
    let mut out = Vec::new();
    let (mut tp, mut fp) = (0usize, 0usize);
    let mut i = 0;
    while i < idx.len() {
        let mut j = i;
        while j < idx.len() && scores[idx[j]].total_cmp(&scores[idx[i]]).is_eq() {
            if labels[idx[j]] {
                tp += 1;
            } else {
                fp += 1;
            }
            j += 1;
        }
        out.push((tp, fp));
        i = j;
    }
    out
}

/// Area under the precision-recall curve of `scores` (higher = more anomalous),
/// computed as average precision: `Σ (R_k - R_{k-1}) P_k` over the distinct score
/// thresholds, from the highest down (scikit-learn's `average_precision_score`).
/// `None` if there is no anomaly.
pub fn auprc(scores: &[f64], labels: &[bool]) -> Option<f64> {
    let pos = labels.iter().filter(|&&l| l).count();
    if pos == 0 {
        return None;
    }
    let (mut prev_recall, mut ap) = (0.0, 0.0);
    for (tp, fp) in threshold_sweep(scores, labels) {
        let recall = tp as f64 / pos as f64;
        let precision = tp as f64 / (tp + fp) as f64;
        ap += (recall - prev_recall) * precision;
        prev_recall = recall;
    }
    Some(ap)
}

/// The `q` quantile of `v` (linear interpolation between order statistics,
/// numpy's default); NaN for an empty slice. Non-finite values sort as usual
/// (`-inf` first).
pub fn quantile(v: &[f64], q: f64) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    let pos = q.clamp(0.0, 1.0) * (s.len() - 1) as f64;
    let lo = pos.floor() as usize;
    let hi = pos.ceil() as usize;
    let frac = pos - lo as f64;
    if lo == hi || frac == 0.0 {
        s[lo]
    } else {
        s[lo] + (s[hi] - s[lo]) * frac
    }
}

/// Counts at a threshold: an anomaly is predicted when `log_prob < threshold`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Confusion {
    /// Anomalies flagged.
    pub tp: usize,
    /// Normal rows flagged.
    pub fp: usize,
    /// Normal rows passed.
    pub tn: usize,
    /// Anomalies passed.
    pub fn_: usize,
}

impl Confusion {
    /// Confusion counts of `flagged` against `labels`.
    pub fn new(flagged: &[bool], labels: &[bool]) -> Self {
        let mut c = Confusion::default();
        for (&f, &l) in flagged.iter().zip(labels) {
            match (f, l) {
                (true, true) => c.tp += 1,
                (true, false) => c.fp += 1,
                (false, false) => c.tn += 1,
                (false, true) => c.fn_ += 1,
            }
        }
        c
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auroc_hand_computed() {
        // Scores of anomalies 0.9, 0.4; normals 0.5, 0.1: pairs (a > n): 0.9>0.5,
        // 0.9>0.1, 0.4>0.1 = 3 of 4.
        let s = [0.9, 0.5, 0.4, 0.1];
        let l = [true, false, true, false];
        assert_eq!(auroc(&s, &l), Some(0.75));
        // A tie between an anomaly and a normal row counts one half.
        assert_eq!(auroc(&[1.0, 1.0], &[true, false]), Some(0.5));
        assert_eq!(auroc(&[3.0, 2.0, 1.0], &[true, true, false]), Some(1.0));
        assert_eq!(auroc(&[1.0], &[true]), None);
    }

    #[test]
    fn auprc_hand_computed() {
        // Ranked: 0.9 (a) P=1 R=.5; 0.5 (n); 0.4 (a) P=2/3 R=1; 0.1 (n).
        // AP = 0.5 * 1 + 0.5 * 2/3 = 5/6.
        let s = [0.9, 0.5, 0.4, 0.1];
        let l = [true, false, true, false];
        let ap = auprc(&s, &l).unwrap_or(f64::NAN);
        assert!((ap - 5.0 / 6.0).abs() < 1e-12, "{ap}");
        // Perfect ranking gives 1; all tied gives the prevalence.
        assert_eq!(auprc(&[2.0, 1.0], &[true, false]), Some(1.0));
        assert_eq!(
            auprc(&[1.0, 1.0, 1.0, 1.0], &[true, false, false, false]),
            Some(0.25)
        );
        assert_eq!(auprc(&[1.0], &[false]), None);
        // NaN scores terminate (they tie with each other).
        assert!(auprc(&[f64::NAN, f64::NAN, 1.0], &[true, false, true]).is_some());
        assert!(auroc(&[f64::NAN, f64::NAN, 1.0], &[true, false, true]).is_some());
    }

    #[test]
    fn mean_and_two_standard_errors() {
        let (m, se) = mean_two_se(&[1.0, 2.0, 3.0, 4.0]);
        assert_eq!(m, 2.5);
        // sd = sqrt(5/3), se = sd / 2, 2se = sd.
        assert!((se - (5.0f64 / 3.0).sqrt()).abs() < 1e-12);
    }

    #[test]
    fn quantiles() {
        let v = [4.0, 1.0, 3.0, 2.0, 5.0];
        assert_eq!(quantile(&v, 0.0), 1.0);
        assert_eq!(quantile(&v, 0.5), 3.0);
        assert_eq!(quantile(&v, 0.1), 1.4);
        assert_eq!(quantile(&v, 1.0), 5.0);
    }

    #[test]
    fn confusion_counts() {
        let c = Confusion::new(&[true, true, false, false], &[true, false, false, true]);
        assert_eq!(
            c,
            Confusion {
                tp: 1,
                fp: 1,
                tn: 1,
                fn_: 1
            }
        );
    }
}
