//! `--json`: the report as one JSON document; `--interval`: NDJSON lines
//! (schemas in the README).

use serde_json::{Value, json};

use crate::report::{Interval, Report, SCHEMA_VERSION};

pub fn render(report: &Report) -> String {
    // Serializing plain structs of strings and numbers cannot fail.
    serde_json::to_string_pretty(report).unwrap_or_default()
}

/// The report as the last NDJSON line: one line, with `"type": "report"`.
pub fn render_line(report: &Report) -> String {
    tagged(serde_json::to_value(report), "report", None)
}

/// One `--interval` line: `"type": "interval"`.
pub fn interval_line(interval: &Interval) -> String {
    tagged(
        serde_json::to_value(interval),
        "interval",
        Some(SCHEMA_VERSION),
    )
}

fn tagged(value: serde_json::Result<Value>, kind: &str, schema: Option<u32>) -> String {
    let mut value = value.unwrap_or(Value::Null);
    if let Some(object) = value.as_object_mut() {
        object.insert("type".into(), json!(kind));
        if let Some(version) = schema {
            object.insert("schema_version".into(), json!(version));
        }
    }
    value.to_string()
}
