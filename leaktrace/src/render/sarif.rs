//! The report as SARIF 2.1.0 (`--sarif`), for GitHub code scanning and the
//! other tools that read static-analysis results, through `serde-sarif`.
//!
//! One result per finding (see [`super::findings`]): rule `goroutine-leak`,
//! `stuck-goroutines` or `ticker-leak`, at the first of its lines in the
//! repository, with the creation stack as a SARIF stack. Paths in the
//! repository are relative to `%SRCROOT%`; others are `file://` URIs. Each
//! traced binary is its own analysis (`automationDetails.id` =
//! `leaktrace/<binary>/`), so the files of a `go test ./...` run, one per
//! test binary, can be uploaded together.

use std::collections::BTreeMap;

use serde_json::json;
use serde_sarif::sarif::{
    ArtifactLocation, Location, LogicalLocation, Message, MultiformatMessageString,
    PhysicalLocation, PropertyBag, Region, ReportingConfiguration, ReportingDescriptor,
    Result as SarifResult, ResultLevel, Run, RunAutomationDetails, Sarif, Stack, StackFrame, Tool,
    ToolComponent,
};

use super::{
    findings::{Finding, Level, Rule, findings},
    github::locate,
    source_tree::SourceTree,
};
use crate::report::{Report, SourceLocation};

/// The schema that GitHub's SARIF upload documents.
const SCHEMA: &str = "https://json.schemastore.org/sarif-2.1.0.json";
/// The base of the repository's relative paths.
const SRCROOT: &str = "%SRCROOT%";

/// The report as a SARIF log, pretty-printed.
pub fn render(report: &Report, tree: Option<&SourceTree>) -> String {
    let rules: Vec<ReportingDescriptor> = Rule::ALL.iter().map(|rule| descriptor(*rule)).collect();
    let results: Vec<SarifResult> = findings(report)
        .iter()
        .map(|finding| result(finding, tree))
        .collect();
    let driver = ToolComponent::builder()
        .name("leaktrace")
        .full_name(format!("leaktrace {}", crate::cli::VERSION))
        .version(crate::cli::VERSION)
        .semantic_version(env!("CARGO_PKG_VERSION"))
        .rules(rules)
        .build();
    let binary = report
        .target
        .executable
        .rsplit('/')
        .next()
        .unwrap_or_default();
    let mut run = Run::builder()
        .tool(Tool::builder().driver(driver).build())
        .results(results)
        .automation_details(
            RunAutomationDetails::builder()
                .id(format!("leaktrace/{binary}/"))
                .build(),
        )
        .build();
    if let Some(tree) = tree {
        let root = format!(
            "file://{}/",
            tree.root().display().to_string().trim_end_matches('/')
        );
        run.original_uri_base_ids = Some(BTreeMap::from([(
            SRCROOT.to_string(),
            ArtifactLocation::builder().uri(root).build(),
        )]));
    }
    let log = Sarif::builder()
        .schema(SCHEMA)
        .version(json!("2.1.0"))
        .runs(vec![run])
        .build();
    serde_json::to_string_pretty(&log).unwrap_or_default() + "\n"
}

fn descriptor(rule: Rule) -> ReportingDescriptor {
    let level = match rule.level() {
        Level::Error => "error",
        Level::Warning => "warning",
    };
    ReportingDescriptor::builder()
        .id(rule.id())
        .name(rule.title())
        .short_description(
            MultiformatMessageString::builder()
                .text(rule.title())
                .build(),
        )
        .full_description(
            MultiformatMessageString::builder()
                .text(rule.description())
                .build(),
        )
        .default_configuration(
            ReportingConfiguration::builder()
                .level(json!(level))
                .build(),
        )
        .build()
}

fn result(finding: &Finding, tree: Option<&SourceTree>) -> SarifResult {
    let level = match finding.rule.level() {
        Level::Error => ResultLevel::Error,
        Level::Warning => ResultLevel::Warning,
    };
    let at = match locate(finding, tree) {
        Some((relative, line)) => location(
            ArtifactLocation::builder()
                .uri(relative)
                .uri_base_id(SRCROOT)
                .build(),
            line,
            None,
        ),
        None => outside(finding.at),
    };
    let frames: Vec<StackFrame> = finding
        .stack
        .iter()
        .map(|frame| {
            let location = match tree.and_then(|t| t.relative(&frame.file)) {
                Some(relative) => location(
                    ArtifactLocation::builder()
                        .uri(relative)
                        .uri_base_id(SRCROOT)
                        .build(),
                    frame.line,
                    Some(&frame.function),
                ),
                None => outside(frame),
            };
            StackFrame::builder().location(location).build()
        })
        .collect();
    let mut properties = BTreeMap::from([("count".to_string(), json!(finding.count))]);
    if let Some(test) = finding.test {
        properties.insert("test".to_string(), json!(test));
    }
    SarifResult::builder()
        .rule_id(finding.rule.id())
        .rule_index(
            Rule::ALL
                .iter()
                .position(|r| *r == finding.rule)
                .unwrap_or(0) as i64,
        )
        .level(level)
        .message(Message::builder().text(finding.message.clone()).build())
        .locations(vec![at])
        .stacks(vec![
            Stack::builder()
                .message(Message::builder().text("created at").build())
                .frames(frames)
                .build(),
        ])
        .partial_fingerprints(BTreeMap::from([(
            "leaktraceSite/v1".to_string(),
            finding.fingerprint.clone(),
        )]))
        .properties(
            PropertyBag::builder()
                .additional_properties(properties)
                .build(),
        )
        .build()
}

/// A line outside the repository (the standard library, the module cache):
/// an absolute `file://` URI, or the path as recorded (`-trimpath`).
fn outside(at: &SourceLocation) -> Location {
    let uri = if at.file.starts_with('/') {
        format!("file://{}", at.file)
    } else {
        at.file.clone()
    };
    location(
        ArtifactLocation::builder().uri(uri).build(),
        at.line,
        Some(&at.function),
    )
}

fn location(artifact: ArtifactLocation, line: u32, function: Option<&str>) -> Location {
    let physical = PhysicalLocation::builder()
        .artifact_location(artifact)
        .region(Region::builder().start_line(i64::from(line.max(1))).build())
        .build();
    match function {
        Some(function) => Location::builder()
            .physical_location(physical)
            .logical_locations(vec![
                LogicalLocation::builder()
                    .fully_qualified_name(function)
                    .kind("function")
                    .build(),
            ])
            .build(),
        None => Location::builder().physical_location(physical).build(),
    }
}
