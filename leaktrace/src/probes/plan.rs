//! Where each probe goes in a binary: a pure function of the binary, decided
//! by decoding the runtime's machine code. See the README's "How it works".

use leaktrace_ebpf::program;
use leaktrace_gobinary::{Function, GoBinary, disasm};

/// Go 1.23+: `time.newTimer` (the runtime's, linknamed) makes every timer and ticker.
pub const NEW_TIMER: &str = "time.newTimer";

/// Where probes go: a choice of the command line (`--probe-placement`).
pub use leaktrace_cli::Placement;

/// One uprobe: which program, in which function, at which offset from its entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbePoint {
    pub program: &'static str,
    pub function: String,
    pub offset: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum PlacementError {
    #[error("{} has no function {function}; is it a Go program?", .binary.display())]
    MissingFunction {
        binary: std::path::PathBuf,
        function: &'static str,
    },
    #[error("the code of {function} is not in {}", .binary.display())]
    NoCode {
        binary: std::path::PathBuf,
        function: String,
    },
    #[error("found no return instruction in runtime.newproc1")]
    NoReturn,
    #[error(
        "expected one call to runtime.(*timer).modify in time.newTimer of {}, found {calls}",
        .binary.display()
    )]
    TimerCall {
        binary: std::path::PathBuf,
        calls: usize,
    },
}

/// Every probe for this binary, in the order to attach them: the creation
/// probes last. Attached to a running process one by one, a creation probe
/// that came first would count goroutines whose exits no probe sees yet;
/// this way a goroutine whose creation was not seen is simply older than
/// the attach.
pub fn probe_points(
    binary: &GoBinary,
    placement: Placement,
) -> Result<Vec<ProbePoint>, PlacementError> {
    let mut points = Vec::new();
    let destroy_fn = if binary.function("runtime.gdestroy").is_some() {
        "runtime.gdestroy"
    } else {
        "runtime.goexit0"
    };
    for (program, function) in [
        (program::GOROUTINE_DESTROYED, destroy_fn),
        (program::GOROUTINE_PARKED, "runtime.gopark"),
    ] {
        let f = required(binary, function)?;
        points.push(ProbePoint {
            program,
            function: function.to_string(),
            offset: entry_offset(binary, function, f, placement)?,
        });
    }
    points.extend(timer_points(binary, placement)?);
    points.extend(exit_points(binary)?);
    points.extend(match placement {
        Placement::Emulated => creation_points(binary)?,
        Placement::Naive => return_points(binary)?,
    });
    Ok(points)
}

/// Where the process ends: `runtime.exit` (assembly without a prologue, run
/// once; the symbol table calls it `runtime.exit.abi0`, the pclntab
/// `runtime.exit`), and `runtime.dieFromSignal`, the way out when a signal
/// kills it.
pub fn exit_points(binary: &GoBinary) -> Result<Vec<ProbePoint>, PlacementError> {
    let exit_fn = if binary.function("runtime.exit.abi0").is_some() {
        "runtime.exit.abi0"
    } else {
        "runtime.exit"
    };
    required(binary, exit_fn)?;
    let mut points = vec![ProbePoint {
        program: program::PROCESS_EXITING,
        function: exit_fn.to_string(),
        offset: 0,
    }];
    let die = required(binary, DIE_FROM_SIGNAL)?;
    points.push(ProbePoint {
        program: program::PROCESS_DYING,
        function: DIE_FROM_SIGNAL.to_string(),
        offset: entry_offset(binary, DIE_FROM_SIGNAL, die, Placement::Emulated)?,
    });
    Ok(points)
}

/// Where the runtime kills its own process with a signal.
const DIE_FROM_SIGNAL: &str = "runtime.dieFromSignal";

/// The `CALL runtime.newproc` of the `go` statement whose goroutines have
/// this `gopc` (link-time): the call is the 5 bytes before it. `None` if the
/// instruction there is not that call (a coroutine, or a corrupt `gopc`).
pub fn site_point(binary: &GoBinary, gopc: u64) -> Option<ProbePoint> {
    let newproc = binary.function("runtime.newproc")?;
    let call = gopc.checked_sub(CALL_REL32_LEN)?;
    let code = binary.code(Function {
        address: call,
        size: CALL_REL32_LEN,
    })?;
    if disasm::call_target(code, call) != Some(newproc.address) {
        return None;
    }
    let function = binary.location(call)?.function;
    let start = binary.function(&function)?;
    Some(ProbePoint {
        program: program::SITE_CREATING,
        function,
        offset: call - start.address,
    })
}

/// `CALL rel32`.
const CALL_REL32_LEN: u64 = 5;

/// The first prologue instruction the kernel emulates, or the entry (naive).
fn entry_offset(
    binary: &GoBinary,
    name: &str,
    function: Function,
    placement: Placement,
) -> Result<u64, PlacementError> {
    Ok(match placement {
        Placement::Emulated => {
            disasm::entry_probe_offset(code(binary, name, function)?, function.address)
        }
        Placement::Naive => 0,
    })
}

/// Where timers and tickers are made, stopped and reset. A program that
/// links no timer functions gets none. NewTimer, After, AfterFunc and
/// NewTicker may be inlined, so the runtime's timer functions underneath
/// them are probed: the `CALL (*timer).modify` in `time.newTimer` (Go 1.23+)
/// or `time.startTimer` (before), `time.stopTimer`, and `time.resetTimer`
/// (plus `time.modTimer`, Ticker.Reset, before Go 1.23).
fn timer_points(
    binary: &GoBinary,
    placement: Placement,
) -> Result<Vec<ProbePoint>, PlacementError> {
    let mut points = Vec::new();
    if binary.timer_layout.is_none() {
        // The probes would read timers at unknown offsets.
        return Ok(points);
    }
    let mut at_entry = |program: &'static str, name: &str| -> Result<(), PlacementError> {
        if let Some(function) = binary.function(name) {
            points.push(ProbePoint {
                program,
                function: name.to_string(),
                offset: entry_offset(binary, name, function, placement)?,
            });
        }
        Ok(())
    };
    // Stops and resets first, creations last: the same reason as in probe_points.
    at_entry(program::TIMER_STOPPED, "time.stopTimer")?;
    let go123 = binary.function(NEW_TIMER).is_some();
    if go123 {
        at_entry(program::TIMER_RESET, "time.resetTimer")?;
    } else {
        at_entry(program::TIMER_REARMED, "time.resetTimer")?;
        at_entry(program::TIMER_RESET, "time.modTimer")?;
    }
    if let Some(start) = binary.function(START_TIMER) {
        // On its `CALL runtime.addtimer(t)` rather than its entry: after the
        // prologue, the frame-pointer chain includes startTimer's caller
        // (NewTimer, After, ...), which names what made the timer.
        let start_code = code(binary, START_TIMER, start)?;
        let calls = binary
            .function(ADD_TIMER)
            .map(|add| disasm::calls_to(start_code, start.address, add.address))
            .unwrap_or_default();
        let offset = match calls[..] {
            [(call, _)] => call,
            _ => entry_offset(binary, START_TIMER, start, placement)?,
        };
        points.push(ProbePoint {
            program: program::TIMER_STARTED,
            function: START_TIMER.to_string(),
            offset,
        });
    }
    if let Some(new_timer) = binary.function(NEW_TIMER) {
        let modify = required(binary, TIMER_MODIFY)?;
        let calls = disasm::calls_to(
            code(binary, NEW_TIMER, new_timer)?,
            new_timer.address,
            modify.address,
        );
        let [(call, _)] = calls[..] else {
            return Err(PlacementError::TimerCall {
                binary: binary.path.clone(),
                calls: calls.len(),
            });
        };
        points.push(ProbePoint {
            program: program::TIMER_CREATED,
            function: NEW_TIMER.to_string(),
            offset: call,
        });
    }
    Ok(points)
}

/// Before Go 1.23: where package time starts every timer, and what it calls.
const START_TIMER: &str = "time.startTimer";
const ADD_TIMER: &str = "runtime.addtimer";

/// Go 1.23+: what `time.newTimer` calls to set up every new timer.
const TIMER_MODIFY: &str = "runtime.(*timer).modify";

/// Where to read each new goroutine: in every runtime function that calls
/// `runtime.newproc1`, after the call. `runtime.newproc.func1` (every `go`
/// statement) passes the result in RBX to a `CALL runtime.runqput`, which the
/// kernel emulates; other callers (coroutines, synctest) are probed on the
/// instruction after the call, with the result in RAX. If no caller is found,
/// newproc1's own `RET`s are probed. Never a uretprobe.
fn creation_points(binary: &GoBinary) -> Result<Vec<ProbePoint>, PlacementError> {
    let newproc1 = required(binary, "runtime.newproc1")?;
    let runqput = binary.function("runtime.runqput").map(|f| f.address);
    let mut points = Vec::new();
    for (function, caller) in binary.callers(newproc1.address, "runtime.") {
        let code = code(binary, &function, caller)?;
        for (_, after) in disasm::calls_to(code, caller.address, newproc1.address) {
            let point = match runqput
                .and_then(|q| disasm::result_passed_in_rbx(code, caller.address, after, q))
            {
                Some(offset) => ProbePoint {
                    program: program::GOROUTINE_QUEUED,
                    function: function.clone(),
                    offset,
                },
                None => ProbePoint {
                    program: program::GOROUTINE_CREATED,
                    function: function.clone(),
                    offset: after,
                },
            };
            points.push(point);
        }
    }
    if points.is_empty() {
        return return_points(binary);
    }
    Ok(points)
}

/// Every `RET` of `runtime.newproc1`, with the new goroutine in RAX.
fn return_points(binary: &GoBinary) -> Result<Vec<ProbePoint>, PlacementError> {
    let newproc1 = required(binary, "runtime.newproc1")?;
    let returns = disasm::return_offsets(
        code(binary, "runtime.newproc1", newproc1)?,
        newproc1.address,
    );
    if returns.is_empty() {
        return Err(PlacementError::NoReturn);
    }
    Ok(returns
        .into_iter()
        .map(|offset| ProbePoint {
            program: program::GOROUTINE_CREATED,
            function: "runtime.newproc1".to_string(),
            offset,
        })
        .collect())
}

fn required(binary: &GoBinary, function: &'static str) -> Result<Function, PlacementError> {
    binary
        .function(function)
        .ok_or_else(|| PlacementError::MissingFunction {
            binary: binary.path.clone(),
            function,
        })
}

fn code<'b>(
    binary: &'b GoBinary,
    name: &str,
    function: Function,
) -> Result<&'b [u8], PlacementError> {
    binary.code(function).ok_or_else(|| PlacementError::NoCode {
        binary: binary.path.clone(),
        function: name.to_string(),
    })
}
