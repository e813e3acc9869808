//! The compact view that refreshes on a terminal while `leaktrace -p`
//! observes: event rates, live goroutines, and the sites growing fastest.

use std::io::Write as _;

use super::text;
use crate::report::Interval;

/// Sites shown in the live view.
const SITES_SHOWN: usize = 5;

pub struct LiveView {
    pid: u32,
    /// Lines drawn last time, to move back over them.
    lines: usize,
}

impl LiveView {
    pub fn new(pid: u32) -> Self {
        Self { pid, lines: 0 }
    }

    pub fn draw(&mut self, interval: &Interval) {
        let lines = render(self.pid, interval);
        let mut out = String::new();
        if self.lines > 0 {
            out += &format!("\x1b[{}A", self.lines);
        }
        for line in &lines {
            out += &format!("\x1b[2K{line}\n");
        }
        self.lines = lines.len();
        let _ = std::io::stderr().write_all(out.as_bytes());
    }

    /// Erases the view before the report is printed.
    pub fn clear(&mut self) {
        if self.lines > 0 {
            let _ = std::io::stderr().write_all(format!("\x1b[{}A\x1b[J", self.lines).as_bytes());
            self.lines = 0;
        }
    }
}

fn render(pid: u32, interval: &Interval) -> Vec<String> {
    let mut lines = vec![format!(
        "pid {pid}  {}  live {}  created {:.0}/s  exited {:.0}/s  parked {:.0}/s",
        text::duration(interval.elapsed_ns),
        interval.live,
        interval.created_per_second,
        interval.exited_per_second,
        interval.parked_per_second,
    )];
    for site in interval.sites.iter().take(SITES_SHOWN) {
        lines.push(format!(
            "  {:>+6}  {:>7} live  {}",
            site.change,
            site.live,
            text::frame(&site.created_at, text::Path::Full)
        ));
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::{IntervalSite, SourceLocation};

    #[test]
    fn renders_rates_and_growing_sites() {
        let here = SourceLocation {
            function: "main.handle".into(),
            file: "main.go".into(),
            line: 21,
        };
        let interval = Interval {
            elapsed_ns: 12_300_000_000,
            live: 1042,
            created_per_second: 120.0,
            exited_per_second: 100.4,
            parked_per_second: 4000.0,
            events: Default::default(),
            sites: vec![IntervalSite {
                created_at: here.clone(),
                entry: here,
                live: 40,
                change: 12,
                created: 60,
                exited: 20,
            }],
        };
        assert_eq!(
            render(7, &interval),
            vec![
                "pid 7  12.3s  live 1042  created 120/s  exited 100/s  parked 4000/s".to_string(),
                "     +12       40 live  main.handle (main.go:21)".to_string(),
            ]
        );
    }
}
