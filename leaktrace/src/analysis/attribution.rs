//! Whose goroutine it is: the program's code decides, not the `go`
//! statement. A goroutine the standard library started is the program's when
//! it runs the program's code (the test function in `testing.tRunner`, an
//! `AfterFunc` callback, a handler), or when it is stuck in a state only the
//! program's call can end (the connection of a response body never closed,
//! the output copiers of a command never waited for).
//!
//! Also here: where a goroutine is blocked (the program's line that called
//! `Lock`, `Wait` or `<-ch`, not the runtime's), and which test created it.

use leaktrace_gobinary::{SourceLocation, is_runtime_function};

use super::Symbols;
use crate::report::{AttributedBy, Attribution, Pattern};

const READ_LOOP: &str = "net/http.(*persistConn).readLoop";
const WRITE_LOOP: &str = "net/http.(*persistConn).writeLoop";

/// Whether `frame` is the program's own code: neither the runtime nor the
/// standard library.
pub fn is_programs(symbols: &dyn Symbols, frame: &SourceLocation) -> bool {
    !is_runtime_function(&frame.function)
        && !symbols.is_standard_library(frame)
        // The `main` that `go test` generates to run the tests.
        && !frame.file.ends_with("/_testmain.go")
        && frame.file != "_testmain.go"
}

/// Frames that only say how a goroutine waits, not who made it wait: the
/// runtime, its wrappers linked into other packages (`sync.runtime_Semacquire`,
/// `internal/poll.runtime_pollWait`, `time.Sleep`), and the standard
/// library's synchronisation internals (`sync`, `internal/sync`).
pub fn is_wait_machinery(symbols: &dyn Symbols, frame: &SourceLocation) -> bool {
    let name = frame.function.as_str();
    is_runtime_function(name)
        || name.starts_with("sync.")
        || name.starts_with("internal/sync.")
        || (symbols.is_standard_library(frame)
            && (frame.file.starts_with("runtime/") || frame.file.contains("/src/runtime/")))
}

/// The frame a goroutine is blocked in: the first of its current stack
/// (innermost first) that is not wait machinery.
pub fn blocked_in<'f>(
    symbols: &dyn Symbols,
    current: &'f [SourceLocation],
) -> Option<&'f SourceLocation> {
    current.iter().find(|f| !is_wait_machinery(symbols, f))
}

/// The program's frame a goroutine that the standard library started is
/// attributed to, if any, given the function it runs (`entry`), its `go`
/// statement (`created_at`), its current stack and its creation chain (its
/// creation stack, then its creator's), all innermost first.
pub fn attribute(
    symbols: &dyn Symbols,
    entry: &SourceLocation,
    created_at: &SourceLocation,
    current: &[SourceLocation],
    chain: &[SourceLocation],
) -> Option<Attribution> {
    let blocked = blocked_in(symbols, current);
    // A test waiting for its subtests (t.Run) or for its turn (t.Parallel)
    // waits on the testing package; the subtest is what is stuck.
    let waiting_on_testing = blocked.is_some_and(|f| f.function.starts_with("testing."));
    let running = current.iter().rposition(|f| is_programs(symbols, f));
    if let Some(outermost) = running.filter(|_| !waiting_on_testing) {
        return Some(Attribution {
            frame: Some(current[outermost].clone()),
            by: AttributedBy::Running,
            pattern: running_pattern(entry, created_at),
        });
    }
    let frame = chain.iter().find(|f| is_programs(symbols, f));
    let pattern = if entry.function == READ_LOOP {
        // Waiting in readLoop's own select: for the body to be read to EOF
        // or closed. An idle connection waits for the next response instead,
        // in a read on the socket.
        Some(if blocked.is_some_and(|f| f.function == READ_LOOP) {
            Pattern::ResponseBodyNotClosed
        } else {
            Pattern::IdleConnection
        })
    } else if entry.function == WRITE_LOOP {
        // Its readLoop tells (see `is_write_loop`).
        Some(Pattern::IdleConnection)
    } else if created_at.function.starts_with("os/exec.(*Cmd).Start") {
        Some(Pattern::CommandNotWaited)
    } else {
        None
    };
    let attribution = Attribution {
        frame: frame.cloned(),
        by: AttributedBy::CreatedFor,
        pattern,
    };
    // Without the program's frame, only a state that is the program's
    // either way is worth an entry of its own.
    (frame.is_some() || attribution.is_programs()).then_some(attribution)
}

/// What the library goroutine running the program's code is, by where it
/// was started.
fn running_pattern(entry: &SourceLocation, created_at: &SourceLocation) -> Option<Pattern> {
    let started_by = |prefix: &str| {
        created_at.function.starts_with(prefix) || entry.function.starts_with(prefix)
    };
    if started_by("testing.") {
        Some(Pattern::TestGoroutine)
    } else if started_by("time.goFunc") {
        Some(Pattern::TimerCallback)
    } else if started_by("context.") {
        Some(Pattern::ContextCallback)
    } else if started_by("net/http.(*Server).Serve") || started_by("net/http.(*conn).serve") {
        Some(Pattern::HttpHandler)
    } else {
        None
    }
}

/// Whether a goroutine is a connection's `readLoop` waiting for a body that
/// is never closed: its parent (`dialConn`'s goroutine) started the
/// connection's `writeLoop` too, which then leaks with it.
pub fn is_unclosed_read_loop(entry: &SourceLocation, attribution: Option<&Attribution>) -> bool {
    entry.function == READ_LOOP
        && attribution.is_some_and(|a| a.pattern == Some(Pattern::ResponseBodyNotClosed))
}

/// Whether a goroutine is a connection's `writeLoop`, which takes the
/// attribution of its sibling `readLoop` (same parent) when that one waits
/// for an unclosed body.
pub fn is_write_loop(entry: &SourceLocation) -> bool {
    entry.function == WRITE_LOOP
}

/// The test function among `frames` (innermost first): the outermost of the
/// program's frames named like one, without its package (`TestFoo` for
/// `example.com/pkg.TestFoo.func1`, or for a suite's `pkg.(*Suite).TestFoo`).
pub fn test_name(symbols: &dyn Symbols, frames: &[SourceLocation]) -> Option<String> {
    frames
        .iter()
        .rev()
        .filter(|f| is_programs(symbols, f))
        .find_map(|f| test_function(&f.function))
}

/// `TestXxx`, `BenchmarkXxx`, `ExampleXxx` or `FuzzXxx` in a function's
/// name, as `go test` recognises them: `Xxx` does not start with a lowercase letter.
fn test_function(function: &str) -> Option<String> {
    let base = function.rsplit('/').next()?;
    base.split('.').skip(1).find_map(|part| {
        ["Test", "Benchmark", "Example", "Fuzz"]
            .iter()
            .find_map(|prefix| part.strip_prefix(prefix))
            .filter(|rest| !rest.starts_with(|c: char| c.is_lowercase()))
            .map(|_| part.to_string())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::symbols::fake::{FakeSymbols, at};

    fn symbols() -> FakeSymbols {
        FakeSymbols {
            goroot: "/go/src/".into(),
            ..Default::default()
        }
    }

    #[test]
    fn test_functions_are_named_like_go_test_names_them() {
        assert_eq!(
            test_function("example.com/pkg.TestFoo"),
            Some("TestFoo".into())
        );
        assert_eq!(
            test_function("example.com/pkg.TestFoo.func1.2"),
            Some("TestFoo".into())
        );
        assert_eq!(
            test_function("gopkg.in/yaml.v3.Benchmark_Decode"),
            Some("Benchmark_Decode".into())
        );
        assert_eq!(
            test_function("example.com/pkg.(*Suite).TestBar"),
            Some("TestBar".into())
        );
        assert_eq!(test_function("example.com/pkg.Testify"), None);
        assert_eq!(test_function("example.com/pkg.Examples"), None);
        assert_eq!(test_function("main.main"), None);
    }

    #[test]
    fn blocked_in_skips_the_runtime_and_sync_internals() {
        let s = symbols();
        let current = [
            at("runtime.gopark", "/go/src/runtime/proc.go", 1),
            at(
                "sync.runtime_SemacquireRWMutexR",
                "/go/src/runtime/sema.go",
                2,
            ),
            at("sync.(*RWMutex).RLock", "/go/src/sync/rwmutex.go", 3),
            at("example.com/pkg.(*Cache).Get", "/src/pkg/cache.go", 40),
            at("example.com/pkg.TestCache", "/src/pkg/cache_test.go", 12),
            at("testing.tRunner", "/go/src/testing/testing.go", 1),
        ];
        assert_eq!(blocked_in(&s, &current), Some(&current[3]));
        let sleeping = [
            at("time.Sleep", "/go/src/runtime/time.go", 1),
            at("main.main", "/src/main.go", 5),
        ];
        assert_eq!(blocked_in(&s, &sleeping), Some(&sleeping[1]));
    }

    #[test]
    fn the_test_goroutine_is_attributed_to_the_test_function() {
        let s = symbols();
        let current = [
            at("runtime.gopark", "/go/src/runtime/proc.go", 1),
            at("sync.(*Mutex).Lock", "/go/src/sync/mutex.go", 3),
            at("example.com/pkg.lockTwice", "/src/pkg/x.go", 7),
            at("example.com/pkg.TestMutex", "/src/pkg/x_test.go", 12),
            at("testing.tRunner", "/go/src/testing/testing.go", 1),
        ];
        let attribution = attribute(
            &s,
            &at("testing.tRunner", "/go/src/testing/testing.go", 1),
            &at("testing.(*T).Run", "/go/src/testing/testing.go", 2),
            &current,
            &[],
        )
        .unwrap();
        assert_eq!(attribution.frame.as_ref(), Some(&current[3]));
        assert_eq!(attribution.by, AttributedBy::Running);
        assert_eq!(attribution.pattern, Some(Pattern::TestGoroutine));
        assert!(attribution.is_programs());
        assert_eq!(test_name(&s, &current), Some("TestMutex".into()));
    }

    #[test]
    fn a_test_waiting_for_its_subtests_is_not_the_stuck_one() {
        let s = symbols();
        let current = [
            at("runtime.gopark", "/go/src/runtime/proc.go", 1),
            at("runtime.chanrecv1", "/go/src/runtime/chan.go", 1),
            at("testing.(*T).Run", "/go/src/testing/testing.go", 2),
            at("example.com/pkg.TestParent", "/src/pkg/x_test.go", 12),
            at("testing.tRunner", "/go/src/testing/testing.go", 1),
        ];
        let attribution = attribute(
            &s,
            &at("testing.tRunner", "/go/src/testing/testing.go", 1),
            &at("testing.(*T).Run", "/go/src/testing/testing.go", 2),
            &current,
            &[],
        );
        assert_eq!(attribution, None);
    }

    #[test]
    fn connection_goroutines_tell_an_unclosed_body_from_an_idle_connection() {
        let s = symbols();
        let read_loop = at(READ_LOOP, "/go/src/net/http/transport.go", 2100);
        let write_loop = at(WRITE_LOOP, "/go/src/net/http/transport.go", 2400);
        let dial = at(
            "net/http.(*Transport).dialConn",
            "/go/src/net/http/transport.go",
            1700,
        );
        let chain = [
            dial.clone(),
            at(
                "net/http.(*Transport).dialConnFor",
                "/go/src/net/http/transport.go",
                1400,
            ),
            at("runtime.goexit", "/go/src/runtime/asm_amd64.s", 1),
            at(
                "net/http.(*Transport).queueForDial",
                "/go/src/net/http/transport.go",
                1450,
            ),
            at("net/http.Get", "/go/src/net/http/client.go", 400),
            at("main.fetch", "/src/main.go", 21),
            at("main.main", "/src/main.go", 30),
        ];
        let waiting_for_body = [
            at("runtime.gopark", "/go/src/runtime/proc.go", 1),
            at("runtime.selectgo", "/go/src/runtime/select.go", 1),
            read_loop.clone(),
        ];
        let idle = [
            at("runtime.gopark", "/go/src/runtime/proc.go", 1),
            at(
                "internal/poll.runtime_pollWait",
                "/go/src/runtime/netpoll.go",
                1,
            ),
            at(
                "internal/poll.(*pollDesc).wait",
                "/go/src/internal/poll/fd_poll_runtime.go",
                84,
            ),
            at("bufio.(*Reader).Peek", "/go/src/bufio/bufio.go", 1),
            read_loop.clone(),
        ];
        let in_select = [
            at("runtime.selectgo", "/go/src/runtime/select.go", 1),
            write_loop.clone(),
        ];
        let leaked_read = attribute(&s, &read_loop, &dial, &waiting_for_body, &chain);
        let write = attribute(&s, &write_loop, &dial, &in_select, &chain);
        let idle_read = attribute(&s, &read_loop, &dial, &idle, &chain);
        assert!(is_unclosed_read_loop(&read_loop, leaked_read.as_ref()));
        assert!(!is_unclosed_read_loop(&read_loop, idle_read.as_ref()));
        assert!(is_write_loop(&write_loop) && !is_write_loop(&read_loop));
        // The writeLoop of the unclosed body's connection takes its readLoop's.
        let leaked_write = leaked_read.clone();
        for (attribution, pattern) in [
            (&leaked_read, Pattern::ResponseBodyNotClosed),
            (&leaked_write, Pattern::ResponseBodyNotClosed),
            (&idle_read, Pattern::IdleConnection),
            (&write, Pattern::IdleConnection),
        ] {
            let attribution = attribution.as_ref().unwrap();
            assert_eq!(
                attribution.frame.as_ref(),
                Some(&chain[5]),
                "the request's line"
            );
            assert_eq!(attribution.by, AttributedBy::CreatedFor);
            assert_eq!(attribution.pattern, Some(pattern));
            assert_eq!(
                attribution.is_programs(),
                pattern == Pattern::ResponseBodyNotClosed
            );
        }
        // Without creation stacks (sampled attach mode): the unclosed body
        // is still the program's, at a call not known; an idle connection
        // stays the library's.
        let unknown_call = attribute(&s, &read_loop, &dial, &waiting_for_body, &[]).unwrap();
        assert_eq!(unknown_call.frame, None);
        assert_eq!(unknown_call.pattern, Some(Pattern::ResponseBodyNotClosed));
        assert!(unknown_call.is_programs());
        assert_eq!(attribute(&s, &read_loop, &dial, &idle, &[]), None);
    }
}
