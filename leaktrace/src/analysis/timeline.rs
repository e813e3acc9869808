//! The live count of each creation site, sampled over the attach window: the
//! evidence for "this site keeps growing".

use std::collections::HashMap;

use leaktrace_ebpf::SiteKey;

use crate::{
    probes::SiteCounts,
    report::{EventCounts, Trend},
};

/// Samples kept at most; older ones are thinned out, keeping the first.
const MAX_SAMPLES: usize = 512;

#[derive(Debug, Clone)]
pub struct Sample {
    pub elapsed_ns: u64,
    pub events: EventCounts,
    pub sites: SiteCounts,
}

#[derive(Debug, Default, Clone)]
pub struct Timeline {
    /// Goroutines of each site alive at the attach.
    baseline: HashMap<SiteKey, u64>,
    samples: Vec<Sample>,
}

/// Points of a trend in the report.
pub const MAX_TREND_POINTS: usize = 20;

impl Timeline {
    pub fn new(baseline: HashMap<SiteKey, u64>) -> Self {
        Self {
            baseline,
            samples: Vec::new(),
        }
    }

    pub fn push(&mut self, sample: Sample) {
        if self.samples.len() >= MAX_SAMPLES {
            // Keep the first sample; drop every other one after it.
            let mut index = 0;
            self.samples.retain(|_| {
                index += 1;
                index == 1 || index % 2 == 0
            });
        }
        self.samples.push(sample);
    }

    /// Goroutines alive at the attach, of every site.
    pub fn baseline_total(&self) -> u64 {
        self.baseline.values().sum()
    }

    pub fn last(&self) -> Option<&Sample> {
        self.samples.last()
    }

    pub fn previous(&self) -> Option<&Sample> {
        self.samples
            .len()
            .checked_sub(2)
            .and_then(|i| self.samples.get(i))
    }

    /// The live count of `site` at `sample`.
    pub fn live(&self, site: &SiteKey, sample: &Sample) -> i64 {
        let base = self.baseline.get(site).copied().unwrap_or(0) as i64;
        let c = sample.sites.get(site).copied().unwrap_or_default();
        base + c.created as i64 - c.exited as i64 - c.exited_preexisting as i64
    }

    pub fn trend(&self, site: &SiteKey) -> Option<Trend> {
        if self.samples.len() < 2 {
            return None;
        }
        let live: Vec<i64> = self.samples.iter().map(|s| self.live(site, s)).collect();
        Some(trend_of(&live))
    }

    /// Every site seen so far.
    pub fn sites(&self) -> impl Iterator<Item = &SiteKey> {
        self.baseline
            .keys()
            .chain(self.samples.last().into_iter().flat_map(|s| s.sites.keys()))
    }
}

/// How a series of samples moved: rising when it ended higher than it
/// started and rose in at least as many intervals as it fell.
pub fn trend_of(values: &[i64]) -> Trend {
    let (rises, falls) = values
        .windows(2)
        .fold((0, 0), |(r, f), w| match w[1].cmp(&w[0]) {
            std::cmp::Ordering::Greater => (r + 1, f),
            std::cmp::Ordering::Less => (r, f + 1),
            std::cmp::Ordering::Equal => (r, f),
        });
    Trend {
        live: thin(values, MAX_TREND_POINTS),
        rising: values.last() > values.first() && rises >= falls,
    }
}

/// At most `n` evenly spaced points, keeping the first and the last.
fn thin(values: &[i64], n: usize) -> Vec<i64> {
    if values.len() <= n {
        return values.to_vec();
    }
    (0..n)
        .map(|i| values[i * (values.len() - 1) / (n - 1)])
        .collect()
}

#[cfg(test)]
mod tests {
    use leaktrace_ebpf::SiteCounters;

    use super::*;

    fn sample(at: u64, created: u64, exited: u64) -> Sample {
        let site = SiteKey {
            gopc: 1,
            startpc: 2,
        };
        let counters = SiteCounters {
            created,
            exited,
            exited_preexisting: 0,
        };
        Sample {
            elapsed_ns: at,
            events: EventCounts::default(),
            sites: HashMap::from([(site, counters)]),
        }
    }

    #[test]
    fn a_steady_leak_is_rising() {
        let site = SiteKey {
            gopc: 1,
            startpc: 2,
        };
        let mut timeline = Timeline::new(HashMap::from([(site, 5)]));
        for (i, created) in [0, 2, 4, 6, 8].into_iter().enumerate() {
            timeline.push(sample(i as u64, created, 0));
        }
        assert_eq!(
            timeline.trend(&site),
            Some(Trend {
                live: vec![5, 7, 9, 11, 13],
                rising: true
            })
        );
    }

    #[test]
    fn churn_that_ends_where_it_started_is_not_rising() {
        let site = SiteKey {
            gopc: 1,
            startpc: 2,
        };
        let mut timeline = Timeline::new(HashMap::from([(site, 3)]));
        for (i, (created, exited)) in [(0, 0), (5, 2), (9, 9), (12, 10), (14, 14)]
            .into_iter()
            .enumerate()
        {
            timeline.push(sample(i as u64, created, exited));
        }
        let trend = timeline.trend(&site).unwrap();
        assert_eq!(trend.live, vec![3, 6, 3, 5, 3]);
        assert!(!trend.rising);
    }

    #[test]
    fn trends_are_thinned_to_twenty_points() {
        assert_eq!(
            thin(&(0..100).collect::<Vec<_>>(), 5),
            vec![0, 24, 49, 74, 99]
        );
    }
}
