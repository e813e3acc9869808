//! Source paths as a repository names them, for code-scanning tools: GitHub
//! annotations and SARIF want `cmd/server/main.go`, not the path the binary
//! was built from.
//!
//! A Go binary records a file as an absolute path, or, built with
//! `-trimpath`, as its module path and the path within the module
//! (`example.com/shop/cmd/server/main.go`). The repository's root is
//! `$GITHUB_WORKSPACE` in GitHub Actions, else the nearest directory above the
//! working directory that holds `.git` (`go test -exec` runs each test binary
//! in its package's directory). Module paths are matched to the `go.mod`
//! files found under the root.

use std::{
    cell::OnceCell,
    path::{Component, Path, PathBuf},
};

/// Directories a module search never enters.
const SKIPPED_DIRS: &[&str] = &["vendor", "testdata", "node_modules", "target"];
/// Bounds on the search for `go.mod` files, for huge checkouts.
const MAX_DEPTH: usize = 12;
const MAX_DIRS: usize = 50_000;

/// A repository checked out on this machine.
#[derive(Debug)]
pub struct SourceTree {
    root: PathBuf,
    /// `(module path, its directory relative to the root)`, longest path
    /// first; found on first use.
    modules: OnceCell<Vec<(String, PathBuf)>>,
}

impl SourceTree {
    pub fn at(root: impl Into<PathBuf>) -> Self {
        Self {
            root: root.into(),
            modules: OnceCell::new(),
        }
    }

    /// `$GITHUB_WORKSPACE`, else the repository around the working directory.
    pub fn discover() -> Option<Self> {
        if let Some(workspace) = std::env::var_os("GITHUB_WORKSPACE").filter(|w| !w.is_empty()) {
            return Some(Self::at(workspace));
        }
        let cwd = std::env::current_dir().ok()?;
        cwd.ancestors()
            .find(|dir| dir.join(".git").exists())
            .map(Self::at)
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// `file` relative to the root, with `/` separators, if it is in the
    /// repository: under the root; a `-trimpath` path in one of its modules;
    /// or an absolute path from another checkout (a container's `/src`) whose
    /// tail names a file here.
    pub fn relative(&self, file: &str) -> Option<String> {
        let path = Path::new(file);
        if path.is_absolute() {
            if let Ok(inside) = path.strip_prefix(&self.root) {
                return Some(slashed(inside));
            }
            return self.by_tail(path);
        }
        self.modules()
            .iter()
            .find_map(|(module, dir)| {
                let rest = file.strip_prefix(module.as_str())?.strip_prefix('/')?;
                Some(slashed(&dir.join(rest)))
            })
            .or_else(|| self.by_tail(path))
    }

    /// The longest tail of at least two components that exists under the root.
    fn by_tail(&self, path: &Path) -> Option<String> {
        let names: Vec<&std::ffi::OsStr> = path
            .components()
            .filter_map(|c| match c {
                Component::Normal(name) => Some(name),
                _ => None,
            })
            .collect();
        (0..names.len().saturating_sub(1)).find_map(|skip| {
            let tail: PathBuf = names[skip..].iter().collect();
            self.root.join(&tail).is_file().then(|| slashed(&tail))
        })
    }

    fn modules(&self) -> &[(String, PathBuf)] {
        self.modules.get_or_init(|| {
            let mut modules = Vec::new();
            let mut pending = vec![(PathBuf::new(), 0)];
            let mut visited = 0;
            while let Some((dir, depth)) = pending.pop() {
                visited += 1;
                if visited > MAX_DIRS {
                    break;
                }
                let Ok(entries) = std::fs::read_dir(self.root.join(&dir)) else {
                    continue;
                };
                for entry in entries.flatten() {
                    let name = entry.file_name();
                    let Some(name_text) = name.to_str() else {
                        continue;
                    };
                    let is_dir = entry.file_type().is_ok_and(|t| t.is_dir());
                    if is_dir
                        && depth < MAX_DEPTH
                        && !name_text.starts_with('.')
                        && !SKIPPED_DIRS.contains(&name_text)
                    {
                        pending.push((dir.join(&name), depth + 1));
                    } else if name_text == "go.mod"
                        && let Some(module) = module_path(&entry.path())
                    {
                        modules.push((module, dir.clone()));
                    }
                }
            }
            modules.sort_by_key(|(module, _)| std::cmp::Reverse(module.len()));
            modules
        })
    }
}

/// The `module` directive of a go.mod file.
fn module_path(go_mod: &Path) -> Option<String> {
    let text = std::fs::read_to_string(go_mod).ok()?;
    text.lines().find_map(|line| {
        let rest = line.trim().strip_prefix("module")?;
        if !rest.starts_with([' ', '\t']) {
            return None;
        }
        let rest = rest.split("//").next()?.trim();
        let module = rest.trim_matches(|c| c == '"' || c == '`');
        (!module.is_empty()).then(|| module.to_string())
    })
}

fn slashed(path: &Path) -> String {
    path.components()
        .filter_map(|c| match c {
            Component::Normal(name) => Some(name.to_string_lossy()),
            _ => None,
        })
        .collect::<Vec<_>>()
        .join("/")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn checkout() -> (PathBuf, SourceTree) {
        let root = std::env::temp_dir().join(format!(
            "leaktrace-source-tree-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        let _ = std::fs::remove_dir_all(&root);
        for (path, text) in [
            (
                "go.mod",
                "// The shop.\nmodule example.com/shop\n\ngo 1.22\n",
            ),
            ("cmd/server/main.go", "package main\n"),
            (
                "tools/go.mod",
                "module \"example.com/shop/tools\" // tools\n",
            ),
            ("tools/gen/gen.go", "package main\n"),
            ("vendor/example.com/dep/go.mod", "module example.com/dep\n"),
        ] {
            let path = root.join(path);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, text).unwrap();
        }
        (root.clone(), SourceTree::at(root))
    }

    #[test]
    fn paths_under_the_root_are_made_relative() {
        let (root, tree) = checkout();
        let file = root.join("cmd/server/main.go");
        assert_eq!(
            tree.relative(file.to_str().unwrap()).as_deref(),
            Some("cmd/server/main.go")
        );
        assert_eq!(tree.relative("/usr/lib/go/src/runtime/proc.go"), None);
    }

    #[test]
    fn trimpath_paths_are_found_through_the_modules() {
        let (_root, tree) = checkout();
        assert_eq!(
            tree.relative("example.com/shop/cmd/server/main.go")
                .as_deref(),
            Some("cmd/server/main.go")
        );
        // The nested module wins over its parent's prefix.
        assert_eq!(
            tree.relative("example.com/shop/tools/gen/gen.go")
                .as_deref(),
            Some("tools/gen/gen.go")
        );
        // Vendored modules are not the repository's code; std is not either.
        assert_eq!(tree.relative("example.com/dep/x.go"), None);
        assert_eq!(tree.relative("net/http/transport.go"), None);
    }

    #[test]
    fn another_checkouts_absolute_paths_match_by_their_tail() {
        let (_root, tree) = checkout();
        assert_eq!(
            tree.relative("/src/shop/cmd/server/main.go").as_deref(),
            Some("cmd/server/main.go")
        );
        // One component is too little to be sure.
        assert_eq!(tree.relative("/elsewhere/go.mod"), None);
    }

    #[test]
    fn module_directives() {
        let dir = std::env::temp_dir().join(format!("leaktrace-gomod-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let go_mod = dir.join("go.mod");
        std::fs::write(&go_mod, "modulex\nmodule  a.b/c // why\n").unwrap();
        assert_eq!(module_path(&go_mod).as_deref(), Some("a.b/c"));
    }
}
