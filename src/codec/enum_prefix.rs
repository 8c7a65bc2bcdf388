//! `strip_enum_prefix`: an enum value's name without the prefix that is its type's name in
//! UPPER_SNAKE (`OrderStatus` → `ORDER_STATUS_`, so `ORDER_STATUS_PENDING` prints as
//! `PENDING`), as the protobuf style guide names values and as ASP.NET Core's gRPC JSON
//! transcoding strips them. A name keeps its prefix when the rest would be empty or would
//! not start with a letter (`HTTP_VERSION_2` stays whole: `"2"` would read as a number).
//! Reading accepts both forms. The route table refuses at load time an enum whose printed
//! names would collide ([`collisions`]), so printing and reading stay one-to-one.

use std::collections::HashMap;

use prost_reflect::{EnumDescriptor, Kind, MessageDescriptor};

use super::dynamic::any_message;

/// `OrderStatus` → `ORDER_STATUS_`; `HTTPMethod` → `HTTP_METHOD_`.
pub fn prefix(enumeration: &EnumDescriptor) -> String {
    let name: Vec<char> = enumeration.name().chars().collect();
    let mut out = String::with_capacity(name.len() + 4);
    for (i, &c) in name.iter().enumerate() {
        let prev = i.checked_sub(1).map(|p| name[p]);
        let next = name.get(i + 1).copied();
        let boundary = c.is_ascii_uppercase()
            && match prev {
                Some(p) if p.is_ascii_lowercase() || p.is_ascii_digit() => true,
                Some(p) if p.is_ascii_uppercase() => next.is_some_and(|n| n.is_ascii_lowercase()),
                _ => false,
            };
        if boundary {
            out.push('_');
        }
        out.push(c.to_ascii_uppercase());
    }
    out.push('_');
    out
}

/// `name` as printed with the prefix stripped.
pub fn strip<'a>(prefix: &str, name: &'a str) -> &'a str {
    match name.strip_prefix(prefix) {
        Some(rest) if rest.starts_with(|c: char| c.is_ascii_alphabetic()) => rest,
        _ => name,
    }
}

/// The full value name that a client's `name` means: itself when the enum has it, else the
/// prefixed name when that is a value; `None` when neither is (the caller's usual refusal).
pub fn unstrip(enumeration: &EnumDescriptor, name: &str) -> Option<String> {
    if enumeration.get_value_by_name(name).is_some() {
        return None;
    }
    let full = format!("{}{name}", prefix(enumeration));
    enumeration.get_value_by_name(&full).map(|_| full)
}

/// Every enum reachable from `message` whose printed names collide once stripped, as an
/// error line naming the first such enum and its two values.
pub fn collisions(message: &MessageDescriptor) -> Option<String> {
    let mut found = None;
    any_message(message, &mut |m| {
        found = m.fields().find_map(|f| match f.kind() {
            Kind::Enum(e) => collision(&e),
            Kind::Message(entry) if f.is_map() => match entry.map_entry_value_field().kind() {
                Kind::Enum(e) => collision(&e),
                _ => None,
            },
            _ => None,
        });
        found.is_some()
    });
    found
}

fn collision(enumeration: &EnumDescriptor) -> Option<String> {
    let prefix = prefix(enumeration);
    let mut printed: HashMap<&str, &str> = HashMap::new();
    let values: Vec<_> = enumeration.values().collect();
    for value in &values {
        let name = strip(&prefix, value.name());
        if let Some(first) = printed.insert(name, value.name()) {
            return Some(format!(
                "strip_enum_prefix: enum {} has values {first} and {} that both print as {name}",
                enumeration.full_name(),
                value.name()
            ));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pool() -> prost_reflect::DescriptorPool {
        let file = prost_types::FileDescriptorProto {
            name: Some("e.proto".into()),
            package: Some("t".into()),
            syntax: Some("proto3".into()),
            enum_type: ["OrderStatus", "HTTPMethod", "Clash"]
                .iter()
                .zip([
                    &[
                        "ORDER_STATUS_UNSPECIFIED",
                        "ORDER_STATUS_PENDING",
                        "ORDER_STATUS_2",
                    ][..],
                    &["HTTP_METHOD_GET", "OTHER"][..],
                    &["CLASH_A", "A"][..],
                ])
                .map(|(name, values)| prost_types::EnumDescriptorProto {
                    name: Some((*name).into()),
                    value: values
                        .iter()
                        .zip(0..)
                        .map(|(v, n)| prost_types::EnumValueDescriptorProto {
                            name: Some((*v).into()),
                            number: Some(n),
                            ..Default::default()
                        })
                        .collect(),
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        };
        let set = prost_types::FileDescriptorSet { file: vec![file] };
        prost_reflect::DescriptorPool::from_file_descriptor_set(set).expect("pool")
    }

    #[test]
    fn the_prefix_is_the_type_name_in_upper_snake() {
        let pool = pool();
        let e = |n: &str| pool.get_enum_by_name(n).expect(n);
        assert_eq!(prefix(&e("t.OrderStatus")), "ORDER_STATUS_");
        assert_eq!(prefix(&e("t.HTTPMethod")), "HTTP_METHOD_");
        assert_eq!(strip("ORDER_STATUS_", "ORDER_STATUS_PENDING"), "PENDING");
        // A rest that is not a name keeps the prefix; a name without it stays.
        assert_eq!(strip("ORDER_STATUS_", "ORDER_STATUS_2"), "ORDER_STATUS_2");
        assert_eq!(strip("HTTP_METHOD_", "OTHER"), "OTHER");
        assert_eq!(
            unstrip(&e("t.OrderStatus"), "PENDING").as_deref(),
            Some("ORDER_STATUS_PENDING")
        );
        assert_eq!(unstrip(&e("t.OrderStatus"), "ORDER_STATUS_PENDING"), None);
        assert_eq!(unstrip(&e("t.OrderStatus"), "NOPE"), None);
        assert_eq!(collision(&e("t.OrderStatus")), None);
        assert_eq!(
            collision(&e("t.Clash")).as_deref(),
            Some("strip_enum_prefix: enum t.Clash has values CLASH_A and A that both print as A")
        );
    }
}
