//! `Json`: a read-only view of `inspect` output whose lookups never fail, so tests stay short.

/// `inspect` output, read with serde_json: a thin view whose lookups never fail
/// (a missing member is Null), so tests read like `j.path("State.Pid").as_i64()`.
#[derive(Debug, Clone, PartialEq)]
#[repr(transparent)]
pub struct Json(serde_json::Value);

static JSON_NULL: serde_json::Value = serde_json::Value::Null;

fn view(v: &serde_json::Value) -> &Json {
    // SAFETY: Json is a repr(transparent) wrapper of serde_json::Value.
    unsafe { &*(v as *const serde_json::Value as *const Json) }
}

impl Json {
    pub fn parse(s: &str) -> Result<Json, String> {
        serde_json::from_str(s).map(Json).map_err(|e| e.to_string())
    }
    /// Object member (Null if absent or not an object).
    pub fn get(&self, key: &str) -> &Json {
        view(self.0.get(key).unwrap_or(&JSON_NULL))
    }
    /// Dotted path, e.g. "State.Pid".
    pub fn path(&self, p: &str) -> &Json {
        p.split('.').fold(self, |j, k| j.get(k))
    }
    pub fn idx(&self, i: usize) -> &Json {
        view(self.0.get(i).unwrap_or(&JSON_NULL))
    }
    pub fn as_i64(&self) -> Option<i64> {
        self.0.as_i64().or_else(|| self.0.as_f64().map(|f| f as i64))
    }
    pub fn as_str(&self) -> Option<&str> {
        self.0.as_str()
    }
    pub fn as_bool(&self) -> Option<bool> {
        self.0.as_bool()
    }
    pub fn as_array(&self) -> Option<Vec<&Json>> {
        self.0.as_array().map(|a| a.iter().map(view).collect())
    }
    pub fn is_null(&self) -> bool {
        self.0.is_null()
    }
}
