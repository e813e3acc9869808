//! What the analysis asks of the binary, as a trait: the real answers come
//! from [`GoBinary`], and unit tests give their own. PCs here are link-time
//! addresses; [`Symbolizer`] takes run-time ones and removes the load bias.

use std::{cell::RefCell, collections::HashMap};

use leaktrace_gobinary::{GoBinary, SourceLocation};

/// Symbol lookups on a Go binary, by link-time PC.
pub trait Symbols {
    /// The frames of the call that returns to `return_pc`, innermost first
    /// (inlined calls, then the physical function).
    fn call_frames(&self, return_pc: u64) -> Vec<SourceLocation>;
    /// The function a goroutine runs, seen through `go` wrappers, given its `startpc`.
    fn goroutine_entry(&self, startpc: u64) -> Option<SourceLocation>;
    /// Whether `pc` is in a compiler-generated wrapper.
    fn is_wrapper(&self, pc: u64) -> bool;
    /// Whether a location is in the Go distribution rather than the program.
    fn is_standard_library(&self, location: &SourceLocation) -> bool;
    /// The name of a `waitReason`, as Go's goroutine dump prints it.
    fn wait_reason(&self, reason: u8) -> Option<&str>;
}

impl Symbols for GoBinary {
    fn call_frames(&self, return_pc: u64) -> Vec<SourceLocation> {
        GoBinary::call_frames(self, return_pc)
    }

    fn goroutine_entry(&self, startpc: u64) -> Option<SourceLocation> {
        GoBinary::goroutine_entry(self, startpc)
    }

    fn is_wrapper(&self, pc: u64) -> bool {
        GoBinary::is_wrapper(self, pc)
    }

    fn is_standard_library(&self, location: &SourceLocation) -> bool {
        GoBinary::is_standard_library(self, location)
    }

    fn wait_reason(&self, reason: u8) -> Option<&str> {
        self.wait_reasons
            .get(usize::from(reason))
            .map(String::as_str)
            .filter(|name| !name.is_empty())
    }
}

/// Run-time PCs to source locations, with the load bias removed and a cache:
/// ten thousand goroutines usually share a handful of PCs.
pub struct Symbolizer<'a> {
    symbols: &'a dyn Symbols,
    load_bias: u64,
    frames: RefCell<HashMap<u64, Vec<SourceLocation>>>,
    entries: RefCell<HashMap<u64, Option<SourceLocation>>>,
}

impl<'a> Symbolizer<'a> {
    pub fn new(symbols: &'a dyn Symbols, load_bias: u64) -> Self {
        Self {
            symbols,
            load_bias,
            frames: RefCell::new(HashMap::new()),
            entries: RefCell::new(HashMap::new()),
        }
    }

    pub fn symbols(&self) -> &dyn Symbols {
        self.symbols
    }

    /// The call that returns to `pc` (a return address or `gopc`), named by
    /// the innermost inlined function.
    pub fn call_site(&self, pc: u64) -> Option<SourceLocation> {
        self.call_frames(pc).into_iter().next()
    }

    /// The frames, inlined ones first, of the call that returns to `pc`.
    pub fn call_frames(&self, pc: u64) -> Vec<SourceLocation> {
        self.frames
            .borrow_mut()
            .entry(pc)
            .or_insert_with(|| self.symbols.call_frames(pc.wrapping_sub(self.load_bias)))
            .clone()
    }

    pub fn goroutine_entry(&self, startpc: u64) -> Option<SourceLocation> {
        self.entries
            .borrow_mut()
            .entry(startpc)
            .or_insert_with(|| {
                self.symbols
                    .goroutine_entry(startpc.wrapping_sub(self.load_bias))
            })
            .clone()
    }

    /// Whether the return address `pc` is in a compiler-generated wrapper.
    pub fn is_wrapper(&self, pc: u64) -> bool {
        self.symbols
            .is_wrapper(pc.wrapping_sub(self.load_bias).wrapping_sub(1))
    }

    /// The frames of a stack of return addresses, innermost first, with
    /// compiler-generated wrappers left out as Go's tracebacks do.
    pub fn stack_frames<'s>(
        &'s self,
        stack: &'s [u64],
    ) -> impl Iterator<Item = SourceLocation> + 's {
        stack
            .iter()
            .filter(|&&pc| !self.is_wrapper(pc))
            .flat_map(|&pc| self.call_frames(pc))
    }
}

/// `?0x...`: a PC leaktrace could not symbolize.
pub fn unknown(pc: u64) -> SourceLocation {
    SourceLocation {
        function: format!("?{pc:#x}"),
        file: String::new(),
        line: 0,
    }
}

/// Symbols given as tables, for unit tests.
#[cfg(test)]
pub mod fake {
    use std::collections::HashMap;

    use super::*;

    #[derive(Default)]
    pub struct FakeSymbols {
        /// Return PC → frames.
        pub calls: HashMap<u64, Vec<SourceLocation>>,
        /// startpc → function.
        pub entries: HashMap<u64, SourceLocation>,
        pub wrappers: Vec<u64>,
        /// File prefix of the standard library.
        pub goroot: String,
        pub wait_reasons: Vec<String>,
    }

    pub fn at(function: &str, file: &str, line: u32) -> SourceLocation {
        SourceLocation {
            function: function.into(),
            file: file.into(),
            line,
        }
    }

    impl FakeSymbols {
        /// `return_pc` returns into `function` at `file:line`.
        pub fn call(&mut self, return_pc: u64, function: &str, file: &str, line: u32) -> &mut Self {
            self.calls.insert(return_pc, vec![at(function, file, line)]);
            self
        }

        pub fn entry(&mut self, startpc: u64, function: &str, file: &str, line: u32) -> &mut Self {
            self.entries.insert(startpc, at(function, file, line));
            self
        }
    }

    impl Symbols for FakeSymbols {
        fn call_frames(&self, return_pc: u64) -> Vec<SourceLocation> {
            self.calls.get(&return_pc).cloned().unwrap_or_default()
        }

        fn goroutine_entry(&self, startpc: u64) -> Option<SourceLocation> {
            self.entries.get(&startpc).cloned()
        }

        fn is_wrapper(&self, pc: u64) -> bool {
            self.wrappers.contains(&(pc + 1))
        }

        fn is_standard_library(&self, location: &SourceLocation) -> bool {
            !self.goroot.is_empty() && location.file.starts_with(&self.goroot)
        }

        fn wait_reason(&self, reason: u8) -> Option<&str> {
            self.wait_reasons
                .get(usize::from(reason))
                .map(String::as_str)
                .filter(|s| !s.is_empty())
        }
    }
}
