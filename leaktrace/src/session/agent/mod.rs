//! `leaktrace agent`: every Go process on the host (or those `--match`
//! selects), observed the cheap way `leaktrace -p` observes by default, and
//! served as Prometheus metrics.
//!
//! One loop, on one thread: every `--scan-interval` it compares `/proc` with
//! what it observes, attaches to the new Go processes and detaches from
//! those gone; every process is sampled when its period is up, and its
//! metrics replaced. The scrape endpoint ([`server`]) reads the latest
//! metrics under a lock. What it keeps is bounded by the processes alive:
//! their metrics (at most `--max-sites` sites each), their timelines
//! (bounded), and the executables found not to be Go.

mod discovery;
mod observed;
mod server;

use std::{
    collections::{HashMap, HashSet},
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use leaktrace_gobinary::{BinaryError, GoBinary};
use tokio::{
    net::TcpListener,
    signal::unix::{SignalKind, signal},
};

use self::{
    discovery::{Candidate, FileId, Identity},
    observed::Observed,
};
use super::{policy, preflight, watch::duration_ns};
use crate::{
    Error,
    analysis::{Policy, ignore::IgnoreRules, verdict::Thresholds},
    cli::{AgentArgs, OutputArgs},
    error::one_line,
    render::{self, prometheus::Fleet},
};

/// How often the loop looks for processes due for a census.
const TICK: Duration = Duration::from_millis(200);
/// Executables remembered as not Go; forgotten all at once beyond this.
const MAX_NOT_GO: usize = 100_000;

#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    #[error("cannot serve metrics on {address}; is another agent running? (--listen)")]
    Listen {
        address: std::net::SocketAddr,
        #[source]
        source: std::io::Error,
    },
}

pub async fn agent(args: AgentArgs) -> Result<i32, Error> {
    // Other users' processes: their memory needs CAP_SYS_PTRACE.
    preflight::check(true)?;
    let policy = policy(
        IgnoreRules::from_args(&args.ignore)?,
        Thresholds {
            stuck_after_ns: duration_ns(args.stuck_after),
            min_growth: args.min_growth,
        },
        &OutputArgs {
            json: false,
            output: None,
            pprof: None,
            sarif: None,
            all: false,
        },
    );
    let listener = TcpListener::bind(args.listen)
        .await
        .map_err(|source| AgentError::Listen {
            address: args.listen,
            source,
        })?;
    let address = listener.local_addr().unwrap_or(args.listen);
    let fleet = Arc::new(Mutex::new(Fleet::default()));
    tokio::spawn(server::serve(listener, Arc::clone(&fleet)));
    render::note(format!(
        "agent: metrics on http://{address}/metrics; observing {}",
        if args.matches.is_empty() {
            "every Go process".to_string()
        } else {
            let rules: Vec<String> = args.matches.iter().map(ToString::to_string).collect();
            format!("the Go processes that --match {} selects", rules.join(", "))
        }
    ));

    let mut interrupt =
        signal(SignalKind::interrupt()).map_err(|source| Error::io("handling SIGINT", source))?;
    let mut terminate =
        signal(SignalKind::terminate()).map_err(|source| Error::io("handling SIGTERM", source))?;
    let mut agent = Agent {
        args,
        policy,
        fleet,
        observed: HashMap::new(),
        passed: HashMap::new(),
        not_go: HashSet::new(),
        metrics: HashMap::new(),
    };
    let mut scan = tokio::time::interval(agent.args.scan_interval);
    let mut tick = tokio::time::interval(TICK);
    loop {
        tokio::select! {
            _ = interrupt.recv() => break,
            _ = terminate.recv() => break,
            _ = scan.tick() => agent.scan().await,
            _ = tick.tick() => agent.sample_due(),
        }
    }
    for (_, observed) in agent.observed.drain() {
        observed.stop();
    }
    render::note("agent: stopped; every probe detached");
    Ok(0)
}

struct Agent {
    args: AgentArgs,
    policy: Policy,
    fleet: Arc<Mutex<Fleet>>,
    observed: HashMap<u32, Observed>,
    /// Processes looked at and not observed (not selected, not Go, or
    /// failed): not looked at again while they run the same file.
    passed: HashMap<u32, (Identity, Option<FileId>)>,
    not_go: HashSet<FileId>,
    /// The latest metrics of each observed process, by pid.
    metrics: HashMap<u32, render::prometheus::ProcessMetrics>,
}

impl Agent {
    /// Detaches from the processes gone; attaches to the new Go processes.
    async fn scan(&mut self) {
        let running = discovery::processes();
        // Gone, or another program since an exec.
        let gone: Vec<u32> = self
            .observed
            .iter()
            .filter(|(pid, o)| {
                running.get(pid) != Some(&o.candidate.identity)
                    || discovery::exe_file(**pid) != Some(o.candidate.exe_file)
            })
            .map(|(pid, _)| *pid)
            .collect();
        for pid in gone {
            self.forget(pid);
        }
        self.passed.retain(|pid, (identity, file)| {
            running.get(pid) == Some(identity) && discovery::exe_file(*pid) == *file
        });
        for (pid, identity) in running {
            if self.observed.contains_key(&pid) || self.passed.contains_key(&pid) {
                continue;
            }
            self.passed
                .insert(pid, (identity, discovery::exe_file(pid)));
            let Some(candidate) = discovery::describe(identity) else {
                continue;
            };
            if !discovery::selects(&self.args.matches, &candidate) {
                continue;
            }
            let Some(binary) = self.go_binary(&candidate) else {
                continue;
            };
            match Observed::start(candidate, binary, &self.args.probes).await {
                Ok(observed) => {
                    self.passed.remove(&pid);
                    self.observed.insert(pid, observed);
                }
                // Gone meanwhile: nothing to say.
                Err(_) if !identity.is_running() => {}
                Err(e) => {
                    render::note(format!("agent: cannot observe pid {pid}: {}", one_line(&e)))
                }
            }
        }
        self.publish();
    }

    /// The process's executable, if it is a Go program leaktrace can read.
    fn go_binary(&mut self, candidate: &Candidate) -> Option<GoBinary> {
        let pid = candidate.identity.pid;
        let path = std::path::PathBuf::from(format!("/proc/{pid}/exe"));
        let file = candidate.exe_file;
        if self.not_go.contains(&file) {
            return None;
        }
        let shown = std::fs::read_link(&path).ok()?;
        match GoBinary::open_as(&path, &shown) {
            Ok(binary) => Some(binary),
            Err(BinaryError::NotGo(_)) => {
                if self.not_go.len() >= MAX_NOT_GO {
                    self.not_go.clear();
                }
                self.not_go.insert(file);
                None
            }
            Err(e) => {
                render::note(format!(
                    "agent: not observing pid {pid} ({}): {}",
                    candidate.exe,
                    one_line(&e)
                ));
                None
            }
        }
    }

    /// A census of each process whose period is up, and its metrics anew.
    fn sample_due(&mut self) {
        let now = Instant::now();
        let mut changed = false;
        let mut failed = Vec::new();
        for (pid, observed) in &mut self.observed {
            if !observed.is_due(now) {
                continue;
            }
            let result = observed
                .sample(self.args.sample_interval, self.args.window)
                .and_then(|sampled| {
                    sampled
                        .then(|| observed.metrics(&self.policy, self.args.max_sites as usize))
                        .transpose()
                });
            match result {
                Ok(Some(metrics)) => {
                    self.metrics.insert(*pid, metrics);
                    changed = true;
                }
                // Exiting: the next scan finds it gone.
                Ok(None) => {}
                // The next scan finds it gone.
                Err(_) if !observed.candidate.identity.is_running() => {}
                Err(e) => {
                    render::note(format!(
                        "agent: stopped observing pid {pid}: {}",
                        one_line(&e)
                    ));
                    failed.push(*pid);
                }
            }
        }
        for pid in failed {
            if let Some(observed) = self.observed.get(&pid) {
                let candidate = &observed.candidate;
                self.passed
                    .insert(pid, (candidate.identity, Some(candidate.exe_file)));
            }
            self.forget(pid);
        }
        if changed {
            self.publish();
        }
    }

    /// Detaches from a process, keeping the count of what it dropped.
    fn forget(&mut self, pid: u32) {
        if let Some(observed) = self.observed.remove(&pid) {
            observed.stop();
        }
        if let Some(metrics) = self.metrics.remove(&pid) {
            let mut fleet = lock(&self.fleet);
            fleet.dropped_by_exited = fleet.dropped_by_exited.saturating_add(metrics.dropped);
        }
    }

    /// The metrics of the processes observed now, for the next scrape.
    fn publish(&self) {
        let mut processes: Vec<_> = self
            .observed
            .keys()
            .filter_map(|pid| self.metrics.get(pid).cloned())
            .collect();
        processes.sort_by_key(|p| p.labels.pid);
        lock(&self.fleet).processes = processes;
    }
}

fn lock(fleet: &Mutex<Fleet>) -> std::sync::MutexGuard<'_, Fleet> {
    fleet
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}
