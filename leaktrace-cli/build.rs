//! Puts the source commit into `leaktrace --version`, as `rustc --version`
//! does: `LEAKTRACE_COMMIT` when set (a build from a source archive), else
//! `git`, else "unknown commit".
use std::process::Command;

fn git(args: &[&str]) -> Option<String> {
    let output = Command::new("git")
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .ok()?;
    let text = String::from_utf8(output.stdout).ok()?;
    (output.status.success() && !text.trim().is_empty()).then(|| text.trim().to_string())
}

fn main() {
    println!("cargo:rerun-if-env-changed=LEAKTRACE_COMMIT");
    let commit = std::env::var("LEAKTRACE_COMMIT").ok().or_else(|| {
        // A new commit or checkout changes HEAD or the branch it names.
        if let Some(git_dir) = git(&["rev-parse", "--absolute-git-dir"]) {
            println!("cargo:rerun-if-changed={git_dir}/HEAD");
            println!("cargo:rerun-if-changed={git_dir}/packed-refs");
            if let Some(branch) = git(&["symbolic-ref", "-q", "HEAD"]) {
                println!("cargo:rerun-if-changed={git_dir}/{branch}");
            }
        }
        git(&["show", "-s", "--abbrev=12", "--format=%h %cs", "HEAD"])
    });
    println!(
        "cargo:rustc-env=LEAKTRACE_COMMIT={}",
        commit.as_deref().unwrap_or("unknown commit")
    );
}
