//! JSON output shared by `eval` and `inspect`.

/// A JSON number, or `null` for a non-finite value.
pub(crate) fn json_num(v: f64) -> serde_json::Value {
    serde_json::Number::from_f64(v).map_or(serde_json::Value::Null, serde_json::Value::Number)
}
