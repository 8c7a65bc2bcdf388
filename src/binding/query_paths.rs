//! Query parameters that reach into maps and repeated messages, which a plain dotted path
//! cannot: `labels[key]=v` and `labels.key=v` set one map entry (string, integer and bool
//! keys; a message value goes on with its fields, `m[k].f=v`), and `items[0].name=a` sets a
//! field of one element of a repeated message field. Indices must be dense from 0 once all
//! parameters are read (`items[1]` without `items[0]` is a 400 that says so); they may come
//! in any order. `query.rs` hands a parameter here when its name has a `[`, or when a plain
//! dotted path does not resolve.

use std::collections::{BTreeMap, BTreeSet};

use prost_reflect::{FieldDescriptor, Kind, MessageDescriptor};
use serde_json::{Map, Value};

use crate::routing::field_path::{self, FieldPath};

/// One step into the request object.
#[derive(Debug)]
enum Step {
    Field(FieldDescriptor),
    Key(String),
    Index(usize),
}

/// A parsed parameter name: its steps and the field whose text the value is.
#[derive(Debug)]
pub(super) struct Target {
    steps: Vec<Step>,
    leaf: FieldDescriptor,
}

/// The pieces of a name: `labels[a.b].x` → `labels`, `[a.b]`, `x`.
fn tokens(name: &str) -> Result<Vec<(bool, &str)>, String> {
    let mut out = Vec::new();
    let mut rest = name;
    while !rest.is_empty() {
        if let Some(inner) = rest.strip_prefix('[') {
            let end = inner.find(']').ok_or("a [ without its ]")?;
            out.push((true, &inner[..end]));
            rest = inner[end + 1..].strip_prefix('.').unwrap_or(&inner[end + 1..]);
        } else {
            let end = rest.find(['.', '[']).unwrap_or(rest.len());
            if end == 0 {
                return Err("an empty name".to_string());
            }
            out.push((false, &rest[..end]));
            rest = rest[end..].strip_prefix('.').unwrap_or(&rest[end..]);
        }
    }
    Ok(out)
}

impl Target {
    /// Resolves `name` from `message`.
    pub(super) fn parse(message: &MessageDescriptor, name: &str) -> Result<Target, String> {
        let tokens = tokens(name)?;
        let mut steps = Vec::new();
        let mut current = Some(message.clone());
        let mut leaf: Option<FieldDescriptor> = None;
        let mut i = 0;
        while i < tokens.len() {
            let (bracket, text) = tokens[i];
            let message = current
                .take()
                .ok_or_else(|| format!("{text:?} goes inside a value that has no fields"))?;
            if bracket {
                return Err(format!("[{text}] follows no map or repeated message field"));
            }
            let field = message
                .get_field_by_json_name(text)
                .or_else(|| message.get_field_by_name(text))
                .ok_or_else(|| format!("{} has no field {text:?}", message.full_name()))?;
            steps.push(Step::Field(field.clone()));
            i += 1;
            let next = tokens.get(i).copied();
            if field.is_map() {
                let Kind::Message(entry) = field.kind() else {
                    return Err("a map without entries".to_string());
                };
                let Some((_, key)) = next else {
                    return Err(format!(
                        "map field {} needs a key: {}[KEY]=VALUE",
                        field.json_name(),
                        field.json_name()
                    ));
                };
                // The key as its JSON form writes it: checked against the key's type.
                let key_field = entry.map_entry_key_field();
                let key = match field_path::text_to_json(&key_field, key)? {
                    Value::String(text) => text,
                    other => other.to_string(),
                };
                steps.push(Step::Key(key));
                i += 1;
                let value = entry.map_entry_value_field();
                current = match value.kind() {
                    Kind::Message(inner) if !inner.full_name().starts_with("google.protobuf.") => Some(inner),
                    _ => None,
                };
                leaf = Some(value);
            } else if let (true, Kind::Message(inner)) = (field.is_list(), field.kind()) {
                let Some((true, index)) = next else {
                    return Err(format!(
                        "repeated field {} needs an index: {}[0].FIELD=VALUE",
                        field.json_name(),
                        field.json_name()
                    ));
                };
                let index: usize = index
                    .parse()
                    .map_err(|_| format!("[{index}] is not an index (0, 1, …)"))?;
                steps.push(Step::Index(index));
                i += 1;
                current = Some(inner);
                leaf = None;
            } else {
                current = match field.kind() {
                    Kind::Message(inner) if !inner.full_name().starts_with("google.protobuf.") => Some(inner),
                    _ => None,
                };
                leaf = Some(field);
            }
        }
        let leaf = match (leaf, current) {
            (Some(leaf), _) if !matches!(leaf.kind(), Kind::Message(_)) || leaf.is_map() => leaf,
            _ => return Err("it names a message, not a value".to_string()),
        };
        Ok(Target { steps, leaf })
    }

    /// The top-level field, for the rule that the query never overrides what the path or
    /// the body bound.
    pub(super) fn top(&self) -> FieldPath {
        let fields = match self.steps.first() {
            Some(Step::Field(field)) => vec![field.clone()],
            _ => Vec::new(),
        };
        FieldPath { fields }
    }

    /// Sets `text` at this target in `object`, noting the indices it used in `indices`.
    pub(super) fn set(
        &self,
        object: &mut Map<String, Value>,
        text: &str,
        indices: &mut BTreeMap<String, BTreeSet<usize>>,
    ) -> Result<(), String> {
        let value = field_path::text_to_json(&self.leaf, text)?;
        put(
            object,
            &self.steps,
            self.leaf.is_list(),
            value,
            String::new(),
            indices,
        )
    }
}

/// Puts `value` at `steps` under `container`; `at` is the JSON path so far, for errors and
/// for the index bookkeeping.
fn put(
    container: &mut Map<String, Value>,
    steps: &[Step],
    leaf_is_list: bool,
    value: Value,
    at: String,
    indices: &mut BTreeMap<String, BTreeSet<usize>>,
) -> Result<(), String> {
    let Some((step, rest)) = steps.split_first() else {
        return Err("an empty parameter name".to_string());
    };
    let key = match step {
        Step::Field(field) => field.json_name().to_string(),
        Step::Key(key) => key.clone(),
        Step::Index(_) => return Err("an index where a field was expected".to_string()),
    };
    let at = format!("{at}{key}");
    let (index, rest) = match rest.split_first() {
        Some((Step::Index(i), after)) => (Some(*i), after),
        _ => (None, rest),
    };
    let fresh = match (index, rest.is_empty()) {
        (Some(_), _) | (None, true) if index.is_some() || leaf_is_list => Value::Array(Vec::new()),
        (None, true) => Value::Null,
        _ => Value::Object(Map::new()),
    };
    let entry = container.entry(key).or_insert(fresh);
    let (slot, at) = match index {
        Some(index) => {
            indices.entry(at.clone()).or_default().insert(index);
            let Value::Array(items) = entry else {
                return Err(format!("{at} is given both as a list and otherwise"));
            };
            while items.len() <= index {
                items.push(Value::Object(Map::new()));
            }
            (&mut items[index], format!("{at}[{index}]"))
        }
        None => (entry, at),
    };
    if rest.is_empty() {
        match slot {
            Value::Array(items) if leaf_is_list => items.push(value),
            other => *other = value,
        }
        return Ok(());
    }
    let Value::Object(next) = slot else {
        return Err(format!("{at} is given both as a value and as fields"));
    };
    put(next, rest, leaf_is_list, value, format!("{at}."), indices)
}

/// The first list whose indices are not dense from 0, as a 400's words.
pub(super) fn holes(indices: &BTreeMap<String, BTreeSet<usize>>) -> Option<String> {
    for (list, used) in indices {
        if let Some(missing) = (0..used.len()).find(|i| !used.contains(i)) {
            return Some(format!(
                "{list}: indices must be dense from 0, but [{missing}] is missing"
            ));
        }
    }
    None
}
