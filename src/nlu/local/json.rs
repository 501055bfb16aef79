//! Walking parsed export JSON while remembering where we are, so every
//! error names the file and the field path.

use super::LoadError;
use serde_json::Value;

#[derive(Clone, Copy)]
pub struct Node<'a> {
    pub value: &'a Value,
    pub file: &'a str,
    path: &'a str,
}

/// Owns the path string of a child node.
pub struct Child<'a> {
    value: &'a Value,
    file: &'a str,
    path: String,
}

impl<'a> Child<'a> {
    pub fn node(&self) -> Node<'_> {
        Node {
            value: self.value,
            file: self.file,
            path: &self.path,
        }
    }
}

pub fn parse(file: &str, text: &str) -> Result<Value, LoadError> {
    serde_json::from_str(text).map_err(|e| LoadError::new(file, None, format!("invalid JSON: {e}")))
}

impl<'a> Node<'a> {
    pub fn root(value: &'a Value, file: &'a str) -> Self {
        Node {
            value,
            file,
            path: "",
        }
    }

    fn join(&self, key: &str) -> String {
        if self.path.is_empty() {
            key.to_string()
        } else {
            format!("{}.{key}", self.path)
        }
    }

    pub fn error(&self, key: &str, reason: impl Into<String>) -> LoadError {
        LoadError::new(self.file, Some(self.join(key)), reason)
    }

    /// The child `key`, or `None` when it is missing or null.
    pub fn get(&self, key: &str) -> Option<Child<'a>> {
        match self.value.get(key) {
            None | Some(Value::Null) => None,
            Some(v) => Some(Child {
                value: v,
                file: self.file,
                path: self.join(key),
            }),
        }
    }

    pub fn has(&self, key: &str) -> bool {
        self.get(key).is_some()
    }

    pub fn req(&self, key: &str) -> Result<Child<'a>, LoadError> {
        self.get(key).ok_or_else(|| self.error(key, "missing"))
    }

    pub fn req_str(&self, key: &str) -> Result<&'a str, LoadError> {
        let v = self
            .value
            .get(key)
            .ok_or_else(|| self.error(key, "missing"))?;
        v.as_str()
            .ok_or_else(|| self.error(key, "expected a string"))
    }

    pub fn opt_str(&self, key: &str) -> Result<Option<&'a str>, LoadError> {
        match self.value.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(_) => Err(self.error(key, "expected a string")),
        }
    }

    pub fn opt_f64(&self, key: &str) -> Result<Option<f64>, LoadError> {
        match self.value.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(v) => v
                .as_f64()
                .map(Some)
                .ok_or_else(|| self.error(key, "expected a number")),
        }
    }

    pub fn opt_bool(&self, key: &str) -> Result<Option<bool>, LoadError> {
        match self.value.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(_) => Err(self.error(key, "expected true or false")),
        }
    }

    /// The elements of array `key`; missing or null is an empty list.
    pub fn items(&self, key: &str) -> Result<Vec<Child<'a>>, LoadError> {
        match self.value.get(key) {
            None | Some(Value::Null) => Ok(Vec::new()),
            Some(Value::Array(items)) => Ok(items
                .iter()
                .enumerate()
                .map(|(i, v)| Child {
                    value: v,
                    file: self.file,
                    path: format!("{}[{i}]", self.join(key)),
                })
                .collect()),
            Some(_) => Err(self.error(key, "expected an array")),
        }
    }
}
