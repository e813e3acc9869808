//! The report as a gzipped `profile.proto` (`github.com/google/pprof/proto`),
//! for `go tool pprof` and the tools that read pprof profiles.
//!
//! Sample type `goroutines`: one sample per goroutine creation stack of each
//! site (the `go` statement and its callers, leaf first; for goroutines the
//! standard library started, the program's frame they are attributed to
//! first), valued at its live goroutines, labelled with the site's verdict,
//! wait reason, blocked-for time, test and pattern. Sample type `tickers`:
//! one sample per ticker creation stack, valued at its live tickers;
//! `timers`: the same for pending one-shot timers. Sample types
//! `inuse_objects` and `inuse_space` (bytes): the heap in use by allocation
//! stack, from the runtime's own heap profile, as `go tool pprof` shows a
//! heap profile (`-sample_index=inuse_space`).

use std::{collections::HashMap, io::Write as _};

use flate2::{Compression, write::GzEncoder};
use prost::Message as _;

use crate::report::{
    AttributedBy, HeapReport, Report, SiteReport, SourceLocation, TickerSite, TimerSite,
};

/// The messages of `profile.proto` that leaktrace writes, as prost declares
/// them (field numbers from the schema).
mod proto {
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Profile {
        #[prost(message, repeated, tag = "1")]
        pub sample_type: Vec<ValueType>,
        #[prost(message, repeated, tag = "2")]
        pub sample: Vec<Sample>,
        #[prost(message, repeated, tag = "3")]
        pub mapping: Vec<Mapping>,
        #[prost(message, repeated, tag = "4")]
        pub location: Vec<Location>,
        #[prost(message, repeated, tag = "5")]
        pub function: Vec<Function>,
        #[prost(string, repeated, tag = "6")]
        pub string_table: Vec<String>,
        #[prost(int64, tag = "9")]
        pub time_nanos: i64,
        #[prost(int64, tag = "10")]
        pub duration_nanos: i64,
        #[prost(int64, repeated, tag = "13")]
        pub comment: Vec<i64>,
        #[prost(int64, tag = "14")]
        pub default_sample_type: i64,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct ValueType {
        #[prost(int64, tag = "1")]
        pub r#type: i64,
        #[prost(int64, tag = "2")]
        pub unit: i64,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Sample {
        #[prost(uint64, repeated, tag = "1")]
        pub location_id: Vec<u64>,
        #[prost(int64, repeated, tag = "2")]
        pub value: Vec<i64>,
        #[prost(message, repeated, tag = "3")]
        pub label: Vec<Label>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Label {
        #[prost(int64, tag = "1")]
        pub key: i64,
        #[prost(int64, tag = "2")]
        pub str: i64,
        #[prost(int64, tag = "3")]
        pub num: i64,
        #[prost(int64, tag = "4")]
        pub num_unit: i64,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Mapping {
        #[prost(uint64, tag = "1")]
        pub id: u64,
        #[prost(int64, tag = "5")]
        pub filename: i64,
        #[prost(bool, tag = "7")]
        pub has_functions: bool,
        #[prost(bool, tag = "8")]
        pub has_filenames: bool,
        #[prost(bool, tag = "9")]
        pub has_line_numbers: bool,
        #[prost(bool, tag = "10")]
        pub has_inline_frames: bool,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Location {
        #[prost(uint64, tag = "1")]
        pub id: u64,
        #[prost(uint64, tag = "2")]
        pub mapping_id: u64,
        #[prost(message, repeated, tag = "4")]
        pub line: Vec<Line>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Line {
        #[prost(uint64, tag = "1")]
        pub function_id: u64,
        #[prost(int64, tag = "2")]
        pub line: i64,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Function {
        #[prost(uint64, tag = "1")]
        pub id: u64,
        #[prost(int64, tag = "2")]
        pub name: i64,
        #[prost(int64, tag = "3")]
        pub system_name: i64,
        #[prost(int64, tag = "4")]
        pub filename: i64,
    }
}

/// The report as a gzipped pprof profile.
pub fn render(report: &Report) -> Vec<u8> {
    let profile = Builder::new(report).build(report);
    let mut gz = GzEncoder::new(Vec::new(), Compression::default());
    // Writing into a Vec cannot fail.
    let _ = gz.write_all(&profile.encode_to_vec());
    gz.finish().unwrap_or_default()
}

/// Interns strings, functions and locations as the schema wants them: by
/// index into tables, with 0 the empty string and no id 0.
struct Builder {
    profile: proto::Profile,
    strings: HashMap<String, i64>,
    functions: HashMap<(String, String), u64>,
    locations: HashMap<(u64, u32), u64>,
}

/// Sample values: [goroutines, tickers, timers, inuse_objects, inuse_space].
const GOROUTINES: usize = 0;
const TICKERS: usize = 1;
const TIMERS: usize = 2;
const INUSE_OBJECTS: usize = 3;
const INUSE_SPACE: usize = 4;
const VALUES: usize = 5;

impl Builder {
    fn new(report: &Report) -> Self {
        let mut builder = Self {
            profile: proto::Profile::default(),
            strings: HashMap::new(),
            functions: HashMap::new(),
            locations: HashMap::new(),
        };
        builder.string("");
        let goroutines = builder.string("goroutines");
        let count = builder.string("count");
        let bytes = builder.string("bytes");
        builder.profile.sample_type = [
            ("goroutines", count),
            ("tickers", count),
            ("timers", count),
            ("inuse_objects", count),
            ("inuse_space", bytes),
        ]
        .into_iter()
        .map(|(name, unit)| proto::ValueType {
            r#type: builder.string(name),
            unit,
        })
        .collect();
        builder.profile.default_sample_type = goroutines;
        builder.profile.duration_nanos = i64::try_from(report.observed_ns).unwrap_or(i64::MAX);
        let filename = builder.string(&report.target.executable);
        builder.profile.mapping = vec![proto::Mapping {
            id: 1,
            filename,
            has_functions: true,
            has_filenames: true,
            has_line_numbers: true,
            has_inline_frames: true,
        }];
        let comment = builder.string(&format!(
            "leaktrace: pid {} {} ({})",
            report.target.pid, report.target.executable, report.target.go_version
        ));
        builder.profile.comment = vec![comment];
        builder
    }

    fn build(mut self, report: &Report) -> proto::Profile {
        for site in report.goroutines.iter().filter(|s| s.live > 0) {
            self.goroutine_samples(site);
        }
        for ticker in report.tickers.iter().filter(|t| t.live > 0) {
            self.ticker_samples(ticker);
        }
        for timer in report.timers.iter().filter(|t| t.live > 0) {
            self.timer_samples(timer);
        }
        if let Some(heap) = &report.heap {
            self.heap_samples(heap);
        }
        self.profile
    }

    /// One sample per creation stack; the goroutines older than the
    /// observation (no stack) at the `go` statement alone. Goroutines that
    /// run the program's code have its frame as their leaf, above their
    /// creation stacks; those working for a call of the program are that
    /// call alone (their own creation stacks are the library's).
    fn goroutine_samples(&mut self, site: &SiteReport) {
        let labels = self.site_labels(site);
        let programs = site.attributed_to.as_ref().filter(|a| a.is_programs());
        let leaf = programs.and_then(|a| a.frame.clone());
        if let Some(call) = leaf
            .clone()
            .filter(|_| programs.is_some_and(|a| a.by == AttributedBy::CreatedFor))
        {
            self.sample(&[call], GOROUTINES, site.live, labels);
            return;
        }
        let mut with_stacks = 0;
        for stack in &site.stacks {
            let frames: Vec<SourceLocation> = leaf.iter().chain(&stack.frames).cloned().collect();
            self.sample(&frames, GOROUTINES, stack.count, labels.clone());
            with_stacks += stack.count;
        }
        let rest = site.live.saturating_sub(with_stacks);
        if rest > 0 {
            let frames: Vec<SourceLocation> =
                leaf.into_iter().chain([site.created_at.clone()]).collect();
            self.sample(&frames, GOROUTINES, rest, labels);
        }
    }

    fn ticker_samples(&mut self, ticker: &TickerSite) {
        let labels = vec![self.label_str("verdict", ticker.verdict.as_str())];
        let mut with_stacks = 0;
        for stack in &ticker.stacks {
            self.sample(&stack.frames, TICKERS, stack.count, labels.clone());
            with_stacks += stack.count;
        }
        let rest = ticker.live.saturating_sub(with_stacks);
        if let Some(at) = ticker.created_at.clone().filter(|_| rest > 0) {
            self.sample(&[at], TICKERS, rest, labels);
        }
    }

    fn timer_samples(&mut self, timer: &TimerSite) {
        let labels = vec![self.label_str("verdict", timer.verdict.as_str())];
        let mut with_stacks = 0;
        for stack in &timer.stacks {
            self.sample(&stack.frames, TIMERS, stack.count, labels.clone());
            with_stacks += stack.count;
        }
        let rest = timer.live.saturating_sub(with_stacks);
        if rest > 0 {
            self.sample(
                std::slice::from_ref(&timer.created_at),
                TIMERS,
                rest,
                labels,
            );
        }
    }

    /// One sample per allocation stack, with both heap values.
    fn heap_samples(&mut self, heap: &HeapReport) {
        for site in &heap.sites {
            let labels = vec![self.label_str("verdict", site.verdict.as_str())];
            for stack in &site.stacks {
                self.sample_values(
                    &stack.frames,
                    &[
                        (INUSE_OBJECTS, stack.inuse_objects),
                        (INUSE_SPACE, stack.inuse_bytes),
                    ],
                    labels.clone(),
                );
            }
        }
    }

    fn site_labels(&mut self, site: &SiteReport) -> Vec<proto::Label> {
        let mut labels = vec![self.label_str("verdict", site.verdict.as_str())];
        if let Some((state, _)) = site.states.iter().max_by_key(|(_, n)| **n) {
            labels.push(self.label_str("wait_reason", state));
        }
        if let Some(blocked) = site.blocked_for {
            let key = self.string("blocked_for");
            let unit = self.string("nanoseconds");
            labels.push(proto::Label {
                key,
                num: i64::try_from(blocked.longest_ns).unwrap_or(i64::MAX),
                num_unit: unit,
                ..Default::default()
            });
        }
        if let Some(test) = &site.test {
            labels.push(self.label_str("test", test));
        }
        if let Some(pattern) = site.attributed_to.as_ref().and_then(|a| a.pattern) {
            labels.push(self.label_str("pattern", pattern.describe()));
        }
        labels
    }

    fn sample(
        &mut self,
        frames: &[SourceLocation],
        kind: usize,
        count: u64,
        label: Vec<proto::Label>,
    ) {
        self.sample_values(frames, &[(kind, count)], label);
    }

    fn sample_values(
        &mut self,
        frames: &[SourceLocation],
        values: &[(usize, u64)],
        label: Vec<proto::Label>,
    ) {
        if frames.is_empty() || values.iter().all(|&(_, v)| v == 0) {
            return;
        }
        let location_id = frames.iter().map(|f| self.location(f)).collect();
        let mut value = vec![0; VALUES];
        for &(kind, count) in values {
            value[kind] = i64::try_from(count).unwrap_or(i64::MAX);
        }
        self.profile.sample.push(proto::Sample {
            location_id,
            value,
            label,
        });
    }

    fn location(&mut self, frame: &SourceLocation) -> u64 {
        let function = self.function(frame);
        if let Some(&id) = self.locations.get(&(function, frame.line)) {
            return id;
        }
        let id = self.profile.location.len() as u64 + 1;
        self.profile.location.push(proto::Location {
            id,
            mapping_id: 1,
            line: vec![proto::Line {
                function_id: function,
                line: i64::from(frame.line),
            }],
        });
        self.locations.insert((function, frame.line), id);
        id
    }

    fn function(&mut self, frame: &SourceLocation) -> u64 {
        let key = (frame.function.clone(), frame.file.clone());
        if let Some(&id) = self.functions.get(&key) {
            return id;
        }
        let id = self.profile.function.len() as u64 + 1;
        let name = self.string(&frame.function);
        let filename = self.string(&frame.file);
        self.profile.function.push(proto::Function {
            id,
            name,
            system_name: name,
            filename,
        });
        self.functions.insert(key, id);
        id
    }

    fn label_str(&mut self, key: &str, value: &str) -> proto::Label {
        proto::Label {
            key: self.string(key),
            str: self.string(value),
            ..Default::default()
        }
    }

    fn string(&mut self, s: &str) -> i64 {
        if let Some(&index) = self.strings.get(s) {
            return index;
        }
        let index = self.profile.string_table.len() as i64;
        self.profile.string_table.push(s.to_string());
        self.strings.insert(s.to_string(), index);
        index
    }
}

#[cfg(test)]
mod tests {
    use std::io::Read as _;

    use super::*;
    use crate::report::fixtures::report;

    #[test]
    fn a_site_becomes_one_sample_per_creation_stack_and_one_for_the_rest() {
        let mut raw = Vec::new();
        flate2::read::GzDecoder::new(&render(&report())[..])
            .read_to_end(&mut raw)
            .unwrap();
        let profile = proto::Profile::decode(&raw[..]).unwrap();
        let name = |i: i64| profile.string_table[i as usize].as_str();
        assert_eq!(name(profile.sample_type[0].r#type), "goroutines");
        let values: Vec<(usize, i64)> = profile
            .sample
            .iter()
            .map(|s| (s.location_id.len(), s.value[0]))
            .collect();
        // Three with their stack (go statement, caller), two older ones at the go statement.
        assert_eq!(values, [(2, 3), (1, 2)]);
        let leaf = &profile.location[profile.sample[0].location_id[0] as usize - 1];
        let function = &profile.function[leaf.line[0].function_id as usize - 1];
        assert_eq!((name(function.name), leaf.line[0].line), ("main.leak", 10));
        let label = &profile.sample[0].label[0];
        assert_eq!((name(label.key), name(label.str)), ("verdict", "leak"));
    }
}
