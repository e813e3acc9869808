//! Helpers for leaktrace's end-to-end tests: build the Go programs in
//! `tests/go` with every installed Go toolchain, run the real leaktrace binary
//! on them with the real probes, and compare its JSON report exactly.
//!
//! These tests need root and a kernel with uprobes. Without them they skip on
//! a laptop, and fail when `CI=true`.

use std::{
    collections::{BTreeMap, HashMap},
    path::{Path, PathBuf},
    process::{Command, Output},
    sync::{Arc, Mutex, OnceLock},
};

use serde_json::Value;

/// The Go releases the tests use when `LEAKTRACE_GO_VERSIONS` is not set.
const DEFAULT_GO_VERSIONS: &[&str] = &[
    "1.19", "1.21", "1.22", "1.23", "1.24", "1.25", "1.26", "1.27",
];

pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .to_path_buf()
}

pub fn go_module_dir() -> PathBuf {
    workspace_root().join("tests/go")
}

fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
}

/// Whether a tool the tests run (a shell, Prometheus) is there, as `found`
/// says: `cargo xtask test` installs it, so in CI it must be; elsewhere its
/// absence skips the test, saying so.
pub fn tool_available(tool: &str, found: bool) -> bool {
    assert!(
        found || !in_ci(),
        "{tool} is not installed; `cargo xtask test` installs it"
    );
    if !found {
        eprintln!("SKIPPED: {tool} is not installed");
    }
    found
}

/// An empty directory for one test's files, under target/e2e-reports.
pub fn scratch_dir(tag: &str) -> PathBuf {
    let dir = workspace_root()
        .join("target/e2e-reports")
        .join(format!("{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Whether privileged tests can run here. Skips (returns false) only outside CI.
pub fn privileged(test: &str) -> bool {
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    let uprobes = Path::new("/sys/bus/event_source/devices/uprobe").exists();
    if root && uprobes {
        return true;
    }
    let why = if root {
        "the kernel has no uprobe PMU"
    } else {
        "it needs root to load eBPF"
    };
    assert!(
        !in_ci(),
        "{test} cannot run: {why}; privileged tests must not be skipped in CI"
    );
    eprintln!("SKIPPED {test}: {why}");
    false
}

/// The Go toolchains to test with. Every one of them must be installed.
pub fn go_versions() -> Vec<String> {
    let versions: Vec<String> = match std::env::var("LEAKTRACE_GO_VERSIONS") {
        Ok(list) => list
            .split(',')
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .map(String::from)
            .collect(),
        Err(_) => DEFAULT_GO_VERSIONS.iter().map(|v| v.to_string()).collect(),
    };
    for v in &versions {
        assert!(
            go_binary(v).exists(),
            "Go {v} is not installed; `cargo xtask test` installs it"
        );
    }
    versions
}

pub fn go_binary(version: &str) -> PathBuf {
    PathBuf::from(format!("/usr/lib/go-{version}/bin/go"))
}

/// A `go` command for the test module, which must never touch the network.
pub fn go(version: &str) -> Command {
    go_in("go", version)
}

/// A `go` command for the module in `tests/MODULE` (`go`, or `go123`, whose
/// go.mod says 1.23 for iterators and the newer timer semantics).
pub fn go_in(module: &str, version: &str) -> Command {
    let mut cmd = Command::new(go_binary(version));
    cmd.current_dir(workspace_root().join("tests").join(module))
        .env("GOTOOLCHAIN", "local")
        .env("GOFLAGS", "-mod=mod")
        .env("GOPROXY", "off");
    cmd
}

/// Builds `package` (e.g. `./cmd/seeds`) with Go `version` and extra `go build`
/// flags, once per test process, and returns the binary.
pub fn build(version: &str, package: &str, flags: &[&str]) -> PathBuf {
    build_in("go", version, package, flags)
}

/// [`build`] for the module in `tests/MODULE`.
pub fn build_in(module: &str, version: &str, package: &str, flags: &[&str]) -> PathBuf {
    /// One slot per build, so concurrent tests wait for the same build.
    type Slot = Arc<Mutex<Option<PathBuf>>>;
    static BUILT: OnceLock<Mutex<HashMap<String, Slot>>> = OnceLock::new();
    let key = format!("{module} {version} {package} {}", flags.join(" "));
    let slot = BUILT
        .get_or_init(Default::default)
        .lock()
        .unwrap()
        .entry(key.clone())
        .or_default()
        .clone();
    let mut slot = slot.lock().unwrap();
    if let Some(path) = slot.as_ref() {
        return path.clone();
    }
    let name = format!(
        "{module}-{}{}",
        package.rsplit('/').next().unwrap_or("bin"),
        flags
            .iter()
            .map(|f| f.replace(|c: char| !c.is_ascii_alphanumeric(), ""))
            .collect::<Vec<_>>()
            .join("_")
    );
    let out = workspace_root()
        .join("target/go-e2e")
        .join(version)
        .join(name);
    let status = go_in(module, version)
        .arg("build")
        .args(flags)
        .arg("-o")
        .arg(&out)
        .arg(package)
        .status()
        .expect("run go build");
    assert!(status.success(), "go{version} build {package} failed");
    *slot = Some(out.clone());
    out
}

/// The leaktrace binary under test (`cargo xtask test` builds it).
pub fn leaktrace_bin() -> PathBuf {
    let path = std::env::var_os("LEAKTRACE_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("target/debug/leaktrace"));
    assert!(
        path.exists(),
        "{} does not exist; run `cargo xtask test`",
        path.display()
    );
    path
}

/// The minor release of a Go version such as `1.23`.
pub fn go_minor(version: &str) -> u32 {
    version
        .split('.')
        .nth(1)
        .and_then(|m| m.parse().ok())
        .unwrap_or_else(|| panic!("not a Go version 1.N: {version}"))
}

/// `go test -exec 'leaktrace run --fail-on-leak --json -o REPORT --' FLAGS
/// PACKAGE` with Go `version`: its output and leaktrace's report.
pub fn go_test_traced(version: &str, package: &str, flags: &[&str]) -> (Output, Value) {
    let report = report_path(&format!("gotest-{version}-{package}"));
    let exec = format!(
        "{} run --fail-on-leak --json -o {} --",
        leaktrace_bin().display(),
        report.display()
    );
    let output = go(version)
        .args(["test", "-count=1", "-exec", &exec])
        .args(flags)
        .arg(package)
        .output()
        .expect("run go test");
    let json = std::fs::read_to_string(&report).unwrap_or_else(|e| {
        panic!(
            "go{version} {package}: no report ({e}): {}",
            String::from_utf8_lossy(&output.stdout)
        )
    });
    (output, serde_json::from_str(&json).expect("JSON report"))
}

pub fn leaktrace() -> Command {
    Command::new(leaktrace_bin())
}

/// Starts `binary SCENARIO`, waits for its first line to be `ready`, attaches
/// `leaktrace -p PID ARGS --json -o REPORT` until it ends (give `--duration`),
/// kills the program, and returns the report. leaktrace must exit 0.
pub fn attach_to_scenario(binary: &Path, scenario: &str, ready: &str, args: &[&str]) -> Value {
    let mut program = Command::new(binary)
        .arg(scenario)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("start the program");
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(program.stdout.take().unwrap()),
        &mut line,
    )
    .unwrap();
    assert_eq!(line.trim(), ready, "{} {scenario}", binary.display());
    let report = report_path(scenario);
    let output = leaktrace()
        .arg("-p")
        .arg(program.id().to_string())
        .args(args)
        .args(["--json", "-o"])
        .arg(&report)
        .output()
        .unwrap();
    let _ = program.kill();
    let _ = program.wait();
    assert_eq!(
        output.status.code(),
        Some(0),
        "leaktrace -p {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_str(&std::fs::read_to_string(report).unwrap()).unwrap()
}

/// A fresh path for a JSON report.
pub fn report_path(tag: &str) -> PathBuf {
    static COUNTER: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let dir = workspace_root().join("target/e2e-reports");
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(format!(
        "{}-{}-{n}.json",
        tag.replace(|c: char| !c.is_ascii_alphanumeric(), "_"),
        std::process::id()
    ))
}

/// Runs `leaktrace run --json -o FILE -- binary args` and returns the parsed
/// report with the process output.
pub fn run_traced(binary: &Path, args: &[&str]) -> (Value, Output) {
    run_traced_with(&[], binary, args)
}

/// [`run_traced`] with extra leaktrace options.
pub fn run_traced_with(options: &[&str], binary: &Path, args: &[&str]) -> (Value, Output) {
    let report = report_path(&binary.display().to_string());
    let output = leaktrace()
        .arg("run")
        .args(options)
        .args(["--json", "-o"])
        .arg(&report)
        .arg("--")
        .arg(binary)
        .args(args)
        .output()
        .expect("run leaktrace");
    let text = std::fs::read_to_string(&report).unwrap_or_else(|e| {
        panic!(
            "no report from leaktrace ({e}); stderr:\n{}",
            String::from_utf8_lossy(&output.stderr)
        )
    });
    (serde_json::from_str(&text).expect("report is JSON"), output)
}

/// The 1-based line of the unique line in `file` (relative to its module,
/// `tests/go` or `tests/go123`) that contains `// site:NAME`.
pub fn marker_line(file: &str, name: &str) -> u32 {
    tagged_line(file, &format!("site:{name}"))
}

/// The 1-based line of the unique line in `file` that ends with `// TAG`.
pub fn tagged_line(file: &str, tag: &str) -> u32 {
    let text = ["go", "go123"]
        .iter()
        .find_map(|module| {
            std::fs::read_to_string(workspace_root().join("tests").join(module).join(file)).ok()
        })
        .unwrap_or_else(|| panic!("no Go source {file}"));
    let marker = format!("// {tag}");
    let lines: Vec<usize> = text
        .lines()
        .enumerate()
        .filter(|(_, l)| l.trim_end().ends_with(&marker))
        .map(|(i, _)| i + 1)
        .collect();
    assert_eq!(
        lines.len(),
        1,
        "marker {marker} must appear exactly once in {file}"
    );
    lines[0] as u32
}

/// What a test expects of one creation site in a report.
#[derive(Debug, Clone)]
pub struct Site {
    /// Source file relative to `tests/go`, and the `// site:` marker of the go statement.
    pub file: &'static str,
    pub marker: &'static str,
    pub created_by: &'static str,
    pub entry: &'static str,
    pub live: u64,
    pub created: u64,
    pub exited: u64,
    pub states: &'static [(&'static str, u64)],
    pub verdict: &'static str,
}

/// The facts of one site, as compared.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SiteFacts {
    pub created_by: String,
    pub entry: String,
    pub live: u64,
    pub created: u64,
    pub exited: u64,
    pub states: BTreeMap<String, u64>,
    pub verdict: String,
}

impl Site {
    fn facts(&self) -> SiteFacts {
        SiteFacts {
            created_by: self.created_by.into(),
            entry: self.entry.into(),
            live: self.live,
            created: self.created,
            exited: self.exited,
            states: self
                .states
                .iter()
                .map(|(k, v)| (k.to_string(), *v))
                .collect(),
            verdict: self.verdict.into(),
        }
    }

    fn is_at(&self, site: &Value) -> bool {
        let line = marker_line(self.file, self.marker);
        // With -trimpath the file is module-relative, so match from the package path.
        let suffix = format!("/{}", self.file);
        site["created_at"]["line"].as_u64() == Some(u64::from(line))
            && site["created_at"]["file"]
                .as_str()
                .is_some_and(|f| f.ends_with(&suffix))
    }
}

/// The facts of the report's site created at `expected`'s go statement.
fn observed(report: &Value, expected: &Site) -> Option<SiteFacts> {
    let site = report["goroutines"]
        .as_array()?
        .iter()
        .find(|s| expected.is_at(s))?;
    Some(SiteFacts {
        created_by: site["created_at"]["function"].as_str()?.into(),
        entry: site["entry"]["function"].as_str()?.into(),
        live: site["live"].as_u64()?,
        created: site["created"].as_u64()?,
        exited: site["exited"].as_u64()?,
        states: serde_json::from_value(site["states"].clone()).ok()?,
        verdict: site["verdict"].as_str()?.into(),
    })
}

/// Asserts that the report's sites from the program's own code are exactly
/// `expected`, fact for fact, and that no other site is judged a leak.
pub fn assert_sites(report: &Value, expected: &[Site], context: &str) {
    assert_report(report, expected, &[], context);
}

/// Goroutines the standard library started, attributed to a line of the
/// program marked `// blame:NAME`.
#[derive(Debug, Clone)]
pub struct Blamed {
    /// Source file relative to `tests/go`, and the `// blame:` marker.
    pub file: &'static str,
    pub marker: &'static str,
    /// The function they run, seen through `go` wrappers.
    pub entry: &'static str,
    /// The function of the attributed frame.
    pub function: &'static str,
    /// `running` or `created_for`.
    pub by: &'static str,
    pub pattern: &'static str,
    pub live: u64,
    pub states: Vec<(&'static str, u64)>,
    pub verdict: &'static str,
    /// The test function, for `go test` binaries.
    pub test: Option<&'static str>,
}

impl Blamed {
    fn is_at(&self, site: &Value) -> bool {
        let line = tagged_line(self.file, &format!("blame:{}", self.marker));
        let frame = &site["attributed_to"]["frame"];
        frame["line"].as_u64() == Some(u64::from(line))
            && frame["file"]
                .as_str()
                .is_some_and(|f| f.ends_with(&format!("/{}", self.file)))
            && site["entry"]["function"] == self.entry
    }

    fn check(&self, site: &Value, context: &str) {
        let states: BTreeMap<String, u64> = self
            .states
            .iter()
            .map(|(k, v)| (k.to_string(), *v))
            .collect();
        let expected = serde_json::json!({
            "function": self.function,
            "by": self.by,
            "pattern": self.pattern,
            "live": self.live,
            "states": states,
            "verdict": self.verdict,
            "test": self.test,
        });
        let observed = serde_json::json!({
            "function": site["attributed_to"]["frame"]["function"],
            "by": site["attributed_to"]["by"],
            "pattern": site["attributed_to"]["pattern"],
            "live": site["live"],
            "states": site["states"],
            "verdict": site["verdict"],
            "test": site["test"],
        });
        assert_eq!(
            observed, expected,
            "{context}: blamed on {} ({})\nsite: {site:#}",
            self.marker, self.entry
        );
    }
}

/// The report's entry attributed to the line marked `// blame:NAME` whose
/// goroutines run `entry`; panics if there is none.
pub fn blamed_at<'a>(report: &'a Value, blamed: &Blamed) -> &'a Value {
    report["goroutines"]
        .as_array()
        .expect("goroutines")
        .iter()
        .find(|s| blamed.is_at(s))
        .unwrap_or_else(|| panic!("nothing blamed on {} in {report:#}", blamed.marker))
}

/// Asserts the facts of the entry attributed to `blamed`'s line.
pub fn assert_blamed(report: &Value, blamed: &Blamed, context: &str) {
    blamed.check(blamed_at(report, blamed), context);
}

/// Like [`assert_sites`], with entries attributed to the program's lines:
/// these, fact for fact, and no other leak.
pub fn assert_report(report: &Value, expected: &[Site], blamed: &[Blamed], context: &str) {
    for site in expected {
        assert_eq!(
            observed(report, site),
            Some(site.facts()),
            "{context}: site {}\nreport: {report:#}",
            site.marker
        );
    }
    for entry in blamed {
        entry.check(blamed_at(report, entry), context);
    }
    let others: Vec<&Value> = report["goroutines"]
        .as_array()
        .expect("goroutines array")
        .iter()
        .filter(|s| s["origin"] == "program" || s["verdict"] == "leak")
        .filter(|s| !expected.iter().any(|e| e.is_at(s)))
        .filter(|s| !blamed.iter().any(|b| b.is_at(s)))
        .collect();
    assert!(others.is_empty(), "{context}: unexpected sites {others:#?}");
}

/// The 1-based line of the `// blame:NAME` marker (or any `// TAG`) in `file`.
pub fn blame_line(file: &str, name: &str) -> u32 {
    tagged_line(file, &format!("blame:{name}"))
}

/// Whether the code of `pid`'s executable in memory is byte-identical to its
/// file, i.e. no uprobe breakpoint is left in it. Reads the file through
/// /proc/PID/exe (so it works across mount namespaces) and finds `.text` in
/// memory through /proc/PID/maps (so position-independent executables work).
pub fn text_is_pristine(pid: u32) -> bool {
    use object::{Object as _, ObjectSection as _};
    let exe = format!("/proc/{pid}/exe");
    let data = std::fs::read(&exe).expect("read executable");
    let file = object::File::parse(&*data).expect("parse executable");
    let (offset, size) = file
        .section_by_name(".text")
        .and_then(|t| t.file_range())
        .expect(".text in file");
    let on_disk = &data[offset as usize..(offset + size) as usize];
    let mapped_name = std::fs::read_link(&exe).expect("read /proc/PID/exe");
    let maps = std::fs::read_to_string(format!("/proc/{pid}/maps")).expect("read maps");
    let address = maps
        .lines()
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let (range, map_offset, path) = (fields.first()?, fields.get(2)?, fields.get(5)?);
            let (start, end) = range.split_once('-')?;
            let (start, end) = (
                u64::from_str_radix(start, 16).ok()?,
                u64::from_str_radix(end, 16).ok()?,
            );
            let map_offset = u64::from_str_radix(map_offset, 16).ok()?;
            let covers = map_offset <= offset && offset + size <= map_offset + (end - start);
            (Path::new(path) == mapped_name && covers).then(|| start + (offset - map_offset))
        })
        .next()
        .expect(".text is mapped");
    let mut in_memory = vec![0u8; on_disk.len()];
    let mem = std::fs::File::open(format!("/proc/{pid}/mem")).expect("open target memory");
    std::os::unix::fs::FileExt::read_exact_at(&mem, &mut in_memory, address)
        .expect("read target text");
    in_memory == on_disk
}

/// The function names of one creation stack in a JSON report.
/// The report's goroutine site whose `go` statement carries the marker
/// `// site:NAME` in `file` (relative to tests/go); panics if there is none.
pub fn site_at<'a>(report: &'a Value, file: &str, marker: &str) -> &'a Value {
    let line = u64::from(marker_line(file, marker));
    report["goroutines"]
        .as_array()
        .expect("goroutines")
        .iter()
        .find(|s| {
            s["created_at"]["line"] == line
                && s["created_at"]["file"]
                    .as_str()
                    .is_some_and(|f| f.ends_with(file))
        })
        .unwrap_or_else(|| panic!("no site {marker} in {report:#}"))
}

pub fn stack_functions(stack: &Value) -> Vec<String> {
    stack["frames"]
        .as_array()
        .map(|frames| {
            frames
                .iter()
                .filter_map(|f| f["function"].as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}
