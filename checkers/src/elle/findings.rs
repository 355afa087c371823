//! Collects anomalies as the checks find them: every one is counted, the first few of each
//! class are kept with their explanation (building an explanation costs more than counting,
//! so it is only built for kept examples).

use super::{Anomaly, AnomalyClass};
use std::collections::BTreeMap;

/// Counts per class and up to `cap` examples per class.
pub(crate) struct Findings {
    pub counts: BTreeMap<AnomalyClass, usize>,
    pub examples: BTreeMap<AnomalyClass, Vec<Anomaly>>,
    cap: usize,
}

impl Findings {
    pub(crate) fn new(cap: usize) -> Findings {
        Findings {
            counts: BTreeMap::new(),
            examples: BTreeMap::new(),
            cap,
        }
    }

    /// Counts one anomaly of `class`; builds and keeps it if fewer than `cap` are kept.
    pub(crate) fn push(&mut self, class: AnomalyClass, make: impl FnOnce() -> Anomaly) {
        *self.counts.entry(class).or_insert(0) += 1;
        let kept = self.examples.entry(class).or_default();
        if kept.len() < self.cap {
            kept.push(make());
        }
    }
}
