//! The response field selection a request asks for: the `fields` query parameter (or
//! `$fields`, as Google's REST clients send system parameters) or the `X-Goog-FieldMask`
//! header, as Google's APIs take them (AIP-157). It is taken off the query before binding,
//! and checked against the route's reply type (`codec/selection.rs`): an unknown path is a
//! 400 before anything is sent. A route whose request message has a field named `fields`
//! binds `fields` to it as usual; `$fields` and the header still select.

use std::borrow::Cow;

use http::HeaderMap;

use crate::codec::selection::Selection;
use crate::error::GatewayError;
use crate::routing::Route;

/// The header Google's APIs read a response field mask from.
pub const HEADER: &str = "x-goog-fieldmask";

/// Splits the selection off `query`: the query left for binding (the same text when it
/// asks for none, the common case, which costs one scan) and the selection, if any.
pub fn take<'q>(
    route: &Route,
    query: &'q str,
    headers: &HeaderMap,
) -> Result<(Cow<'q, str>, Option<Selection>), GatewayError> {
    let header = headers.get(HEADER);
    if header.is_none() && !query.contains("fields=") {
        return Ok((Cow::Borrowed(query), None));
    }
    let plain_is_a_field = route.input.get_field_by_name("fields").is_some();
    let mut asked: Option<(String, &str)> = None;
    // The other parameters keep their raw text: re-encoding them would cost the binder a
    // percent-decoding of every `,` of `ids=1,2,…`.
    let mut rest: Vec<&str> = Vec::new();
    for pair in query.split('&') {
        let name = pair.split('=').next().unwrap_or_default();
        let parameter = match name {
            "$fields" | "%24fields" => "$fields",
            "fields" if !plain_is_a_field => "fields",
            _ => {
                rest.push(pair);
                continue;
            }
        };
        if asked.is_some() {
            return Err(GatewayError::bad_field(
                parameter,
                format!("{parameter} is given twice: give one comma-separated list"),
            ));
        }
        let value = pair.split_once('=').map_or("", |(_, value)| value);
        let value: String = form_urlencoded::parse(format!("v={value}").as_bytes())
            .next()
            .map(|(_, v)| v.into_owned())
            .unwrap_or_default();
        asked = Some((value, parameter));
    }
    let query = match asked.is_some() {
        true => Cow::Owned(rest.join("&")),
        false => Cow::Borrowed(query),
    };
    let asked = match (asked, header) {
        (Some(_), Some(_)) => {
            return Err(GatewayError::bad_field(
                HEADER,
                "give the field selection once: in the query or in X-Goog-FieldMask, not both",
            ));
        }
        (Some(asked), None) => Some(asked),
        (None, Some(header)) => {
            let text = header
                .to_str()
                .map_err(|_| GatewayError::bad_field(HEADER, "X-Goog-FieldMask is not ASCII text"))?;
            Some((text.to_string(), "X-Goog-FieldMask"))
        }
        (None, None) => None,
    };
    let selection = match asked {
        Some((paths, parameter)) => {
            let selection = Selection::parse(&paths, &route.output, route.reply_form, parameter)?;
            (!selection.is_everything()).then_some(selection)
        }
        None => None,
    };
    Ok((query, selection))
}
