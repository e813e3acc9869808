//! Unclosed descriptors: what the descriptors each line of code opened
//! became, and which are still open.

use std::collections::{BTreeMap, HashMap};

use leaktrace_gobinary::{SourceLocation, is_runtime_function};

use super::Analysis;
use crate::{
    probes::{FdCounts, StackId, TrackedFd},
    process::fds::Descriptor,
    report::{
        AttributedBy, DescriptorSummary, Mode, Pattern, ResourceSite, ResourceVerdict, SiteReport,
    },
};

/// Examples (paths, peers) listed per site.
const MAX_EXAMPLES: usize = 5;

/// What was seen of the target's descriptors.
#[derive(Debug, Clone, Default)]
pub struct DescriptorObservation {
    /// Opened while traced (`run`, `-p --exact`) and still open at the end,
    /// with what `/proc/PID/fd` says each is.
    pub open: Vec<(u32, TrackedFd, Descriptor)>,
    /// Per opening stack, opened and closed while traced.
    pub counts: FdCounts,
    /// `-p`: every descriptor open when the window started, by kind.
    pub before_attach: Option<BTreeMap<String, u64>>,
    /// Every descriptor open at the end, by kind.
    pub at_end: BTreeMap<String, u64>,
}

/// Whose descriptors one opening stack made.
#[derive(Debug, Clone)]
struct Owner {
    created_at: SourceLocation,
    attributed_by: Option<AttributedBy>,
    /// No frame of the program's: the standard library's or the runtime's own.
    library: bool,
    runtime: bool,
}

/// The program's first frame on the opening stack; failing that, on the
/// creation stack of the goroutine that opened it (net/http dials from a
/// goroutine of its own, started for the request).
fn owner(analysis: &Analysis<'_>, stack: StackId, creator: Option<StackId>) -> Option<Owner> {
    let symbols = analysis.symbols.symbols();
    let frames: Vec<SourceLocation> = analysis.creation_frames(stack)?.collect();
    let first = frames.iter().find(|f| !is_runtime_function(&f.function));
    // The runtime's own system calls (the network poller's epoll and wakeup
    // descriptors): the first frame past the system-call wrappers is the
    // runtime's.
    let caller = frames.iter().find(|f| !is_syscall_wrapper(&f.function));
    let runtime_call = caller.is_some_and(|f| f.function.starts_with("runtime."));
    let (Some(first), false) = (first, runtime_call) else {
        return Some(Owner {
            created_at: frames.first()?.clone(),
            attributed_by: None,
            library: true,
            runtime: true,
        });
    };
    if let Some(program) = frames.iter().find(|f| !symbols.is_standard_library(f)) {
        return Some(Owner {
            created_at: program.clone(),
            attributed_by: None,
            library: false,
            runtime: false,
        });
    }
    let for_program = creator
        .and_then(|c| analysis.creation_frames(c))
        .and_then(|mut frames| {
            frames.find(|f| !is_runtime_function(&f.function) && !symbols.is_standard_library(f))
        });
    Some(match for_program {
        Some(call) => Owner {
            created_at: call,
            attributed_by: Some(AttributedBy::CreatedFor),
            library: false,
            runtime: false,
        },
        None => Owner {
            created_at: first.clone(),
            attributed_by: None,
            library: true,
            runtime: false,
        },
    })
}

struct Building {
    site: ResourceSite,
    library: bool,
    runtime: bool,
    stacks: HashMap<StackId, u64>,
}

pub(super) fn resource_sites(
    analysis: &Analysis<'_>,
    goroutines: &[SiteReport],
) -> (Vec<ResourceSite>, Option<DescriptorSummary>) {
    let obs = analysis.observation;
    let Some(descriptors) = &obs.descriptors else {
        return (Vec::new(), None);
    };
    let mut owners: HashMap<(StackId, Option<StackId>), Option<Owner>> = HashMap::new();
    let mut owner_of = |stack: StackId, creator: Option<StackId>| {
        owners
            .entry((stack, creator))
            .or_insert_with(|| owner(analysis, stack, creator))
            .clone()
    };
    let mut by_line: HashMap<SourceLocation, Building> = HashMap::new();
    let mut kinds: HashMap<SourceLocation, BTreeMap<String, u64>> = HashMap::new();
    fn entry<'b>(
        by_line: &'b mut HashMap<SourceLocation, Building>,
        owner: &Owner,
    ) -> &'b mut Building {
        by_line
            .entry(owner.created_at.clone())
            .or_insert_with(|| Building {
                site: ResourceSite::new(owner.created_at.clone(), owner.attributed_by),
                library: owner.library,
                runtime: owner.runtime,
                stacks: HashMap::new(),
            })
    }
    for (_, tracked, descriptor) in &descriptors.open {
        let Some(stack) = tracked.stack else { continue };
        let Some(owner) = owner_of(stack, tracked.creator_stack) else {
            continue;
        };
        let building = entry(&mut by_line, &owner);
        building.site.open += 1;
        *building.stacks.entry(stack).or_default() += 1;
        let kind = descriptor.kind.clone();
        *kinds
            .entry(owner.created_at.clone())
            .or_default()
            .entry(kind)
            .or_default() += 2;
        if building.site.examples.len() < MAX_EXAMPLES
            && !building.site.examples.contains(&descriptor.detail)
        {
            building.site.examples.push(descriptor.detail.clone());
        }
    }
    for (&(stack, creator, syscall), counts) in &descriptors.counts {
        let Some(stack) = stack else { continue };
        let Some(owner) = owner_of(stack, creator) else {
            continue;
        };
        let building = entry(&mut by_line, &owner);
        building.site.opened += counts.opened;
        building.site.closed += counts.closed;
        *kinds
            .entry(owner.created_at.clone())
            .or_default()
            .entry(syscall_kind(syscall).to_string())
            .or_default() += 1;
    }
    for (at, building) in &mut by_line {
        // What /proc says of the open ones weighs double.
        if let Some((kind, _)) = kinds
            .get(at)
            .and_then(|k| k.iter().max_by_key(|(_, n)| **n))
        {
            building.site.kind = kind.clone();
        }
    }
    let mut sites: Vec<ResourceSite> = by_line
        .into_values()
        .filter(|b| !b.runtime || analysis.policy.include_all)
        .map(|mut b| {
            b.site.stacks = analysis.creation_stacks(b.stacks, is_opening_machinery);
            b.site.verdict = verdict(obs.mode, &b.site, b.library, b.runtime, goroutines);
            b.site
        })
        .filter(|site| site.open > 0 || site.opened > 0)
        .collect();
    sites.sort_by_key(|s| {
        (
            s.verdict != ResourceVerdict::Leak,
            std::cmp::Reverse(s.open),
            s.created_at.file.clone(),
            s.created_at.line,
            s.kind.clone(),
        )
    });
    let summary = DescriptorSummary {
        before_attach: descriptors.before_attach.clone(),
        at_end: descriptors.at_end.clone(),
    };
    (sites, Some(summary))
}

/// Functions that only make a system call for their caller.
fn is_syscall_wrapper(function: &str) -> bool {
    [
        "syscall.",
        "internal/runtime/syscall.",
        "runtime/internal/syscall.",
    ]
    .iter()
    .any(|p| function.starts_with(p))
}

/// What a descriptor is, from the system call that made it.
fn syscall_kind(syscall: u32) -> &'static str {
    match syscall {
        2 | 85 | 257 | 437 => "file",
        41 | 43 | 53 | 288 => "socket",
        22 | 293 => "pipe",
        213 | 291 => "eventpoll",
        290 => "eventfd",
        283 => "timerfd",
        289 => "signalfd",
        294 => "inotify",
        319 => "memfd",
        434 => "pidfd",
        _ => "other",
    }
}

/// Frames above the program's call that opened a descriptor: the runtime,
/// and the packages that wrap system calls.
fn is_opening_machinery(function: &str) -> bool {
    is_runtime_function(function)
        || ["syscall.", "internal/", "os.", "net."]
            .iter()
            .any(|p| function.starts_with(p))
}

/// `run`: left open at exit. `-p --exact`: more opened than closed while
/// observed, and still open. A socket opened for an HTTP request follows
/// that request's connection goroutines: a leak with an unclosed body, the
/// library's with an idle keep-alive connection.
fn verdict(
    mode: Mode,
    site: &ResourceSite,
    library: bool,
    runtime: bool,
    goroutines: &[SiteReport],
) -> ResourceVerdict {
    if site.open == 0 {
        return ResourceVerdict::Ok;
    }
    if runtime {
        return ResourceVerdict::Runtime;
    }
    if library {
        return ResourceVerdict::Library;
    }
    if site.attributed_by == Some(AttributedBy::CreatedFor) {
        let pattern_here = |pattern: Pattern| {
            goroutines.iter().any(|g| {
                g.attributed_to.as_ref().is_some_and(|a| {
                    a.pattern == Some(pattern) && a.frame.as_ref() == Some(&site.created_at)
                })
            })
        };
        if pattern_here(Pattern::IdleConnection) && !pattern_here(Pattern::ResponseBodyNotClosed) {
            return ResourceVerdict::Library;
        }
    }
    match mode {
        Mode::Run => ResourceVerdict::Leak,
        Mode::Attach if site.opened > site.closed => ResourceVerdict::Leak,
        Mode::Attach => ResourceVerdict::Ok,
    }
}
