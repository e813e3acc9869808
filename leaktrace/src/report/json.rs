//! `--json`: the report as one JSON document; `--interval`: NDJSON lines
//! (schemas in the README).

use leaktrace_gobinary::GoBinary;
use serde_json::{Value, json};

use super::{Report, SCHEMA_VERSION, interval};
use crate::timeline::Timeline;

pub fn render(report: &Report) -> String {
    // Serializing plain structs of strings and numbers cannot fail.
    serde_json::to_string_pretty(report).unwrap_or_default()
}

/// The report as the last NDJSON line: one line, with `"type": "report"`.
pub fn render_line(report: &Report) -> String {
    let mut value = serde_json::to_value(report).unwrap_or(Value::Null);
    if let Some(object) = value.as_object_mut() {
        object.insert("type".into(), json!("report"));
    }
    value.to_string()
}

/// One `--interval` line: `"type": "interval"`.
pub fn interval_line(binary: &GoBinary, load_bias: u64, timeline: &Timeline) -> String {
    let mut value =
        serde_json::to_value(interval(binary, load_bias, timeline)).unwrap_or(Value::Null);
    if let Some(object) = value.as_object_mut() {
        object.insert("type".into(), json!("interval"));
        object.insert("schema_version".into(), json!(SCHEMA_VERSION));
    }
    value.to_string()
}
