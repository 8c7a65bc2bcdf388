//! Response field selection (`?fields=`, `X-Goog-FieldMask`, AIP-157): FieldMask paths
//! (`name,author.address.city`, `books.title` through repeated fields, `*` for everything)
//! checked against the reply type when the request arrives (an unknown path is a 400 that
//! names it, and nothing is sent upstream), then applied while each reply is printed.
//!
//! The codecs print through `print.rs`, a serde `Serializer` wrapper that drops the
//! unselected members before their values are printed: a pruned reply is printed once and
//! only as far as it is selected, never printed whole and cut. Paths name fields by json or
//! proto name; the selection is stored by printed key, which follows the route's output
//! options. A path cannot go inside a map or a well-known type (they print
//! as one value), and selects a repeated message field's members in every element.

use std::collections::BTreeMap;

use prost_reflect::{Kind, MessageDescriptor};

use super::ReplyForm;
use crate::error::GatewayError;

mod print;
pub(super) use print::to_json;

/// The selected members of one message, by printed key; empty with `all` for a whole value.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Selection {
    all: bool,
    members: BTreeMap<String, Selection>,
}

impl Selection {
    /// The selection `paths` (comma-separated FieldMask paths) makes on replies of `message`
    /// printed in `form`. `parameter` names where the paths came from, for the 400.
    pub fn parse(
        paths: &str,
        message: &MessageDescriptor,
        form: ReplyForm,
        parameter: &str,
    ) -> Result<Selection, GatewayError> {
        let mut selection = Selection::default();
        for path in paths.split(',').map(str::trim) {
            if path == "*" {
                return Ok(Selection::everything());
            }
            let refuse = |why: &str| {
                GatewayError::bad_field(
                    parameter,
                    format!("{parameter}: unknown field path {path:?}: {why}"),
                )
            };
            if path.is_empty() {
                return Err(refuse("empty path"));
            }
            let mut node = &mut selection;
            // Under a field selected whole already, the rest of the path is only checked.
            let mut subsumed = false;
            let mut current = Some(message.clone());
            for name in path.split('.') {
                let Some(message) = current.take() else {
                    return Err(refuse("it goes inside a value that has no fields"));
                };
                let field = message
                    .get_field_by_json_name(name)
                    .or_else(|| message.get_field_by_name(name))
                    .ok_or_else(|| refuse(&format!("{} has no field {name:?}", message.full_name())))?;
                current = match field.kind() {
                    Kind::Message(inner)
                        if !field.is_map() && !inner.full_name().starts_with("google.protobuf.") =>
                    {
                        Some(inner)
                    }
                    _ => None,
                };
                let key = if form.proto_names {
                    field.name()
                } else {
                    field.json_name()
                };
                subsumed |= node.all;
                if !subsumed {
                    node = node.members.entry(key.to_string()).or_default();
                }
            }
            // The path's last field: the whole value (a longer path already selected inside
            // it is subsumed).
            node.all = true;
            node.members.clear();
        }
        Ok(selection)
    }

    fn everything() -> Selection {
        Selection {
            all: true,
            members: BTreeMap::new(),
        }
    }

    /// Whether the selection keeps the whole reply.
    pub fn is_everything(&self) -> bool {
        self.all
    }
}

#[cfg(test)]
#[path = "selection_tests.rs"]
mod tests;
