//! System parameters: query parameters that start with `$` and speak to the gateway, not
//! to a field, as Google's REST clients send them. GAPIC-generated clients add
//! `$alt=json;enum-encoding=int` to every call, asking for enums as numbers in the reply;
//! `$alt=json` asks for what the gateway prints anyway. Both are taken on every route and
//! taken off the query before binding. Any other `$` parameter, or another `$alt`, is a
//! 400 that names it: no field name starts with `$`, so it cannot be meant for the message.

use std::borrow::Cow;
use std::sync::Arc;

use http::HeaderMap;

use crate::codec::{Printing, ReplyForm};
use crate::error::GatewayError;
use crate::routing::Route;

/// How `route`'s replies are printed for a request with `query` and `headers`: its output
/// options, the system parameters' form on top, and the field selection (`fields.rs`); and
/// the query left for binding. Every front-end that binds a query reads it here.
pub fn printing<'q>(
    route: &Route,
    query: &'q str,
    headers: &HeaderMap,
) -> Result<(Cow<'q, str>, Printing), GatewayError> {
    // Response field selection first: `$fields` is not one of the system parameters.
    let (query, selection) = super::fields::take(route, query, headers)?;
    let (rest, form) = match query.is_empty() {
        false => split(&query)?,
        true => (Cow::Borrowed(""), ReplyForm::default()),
    };
    let query = match rest {
        Cow::Borrowed(_) => query,
        Cow::Owned(rest) => Cow::Owned(rest),
    };
    let printing = Printing {
        form: route.reply_form.with(form),
        selection: selection.map(Arc::new),
    };
    Ok((query, printing))
}

/// Splits the system parameters off `query`: the query left for binding (the same text
/// when it holds none, which is the common case and costs one scan) and the reply form
/// they ask for.
pub fn split(query: &str) -> Result<(Cow<'_, str>, ReplyForm), GatewayError> {
    let mut form = ReplyForm::default();
    // `$` may come percent-encoded (`%24alt`); form_urlencoded decodes either.
    if !query.contains('$') && !query.contains("%24") {
        return Ok((Cow::Borrowed(query), form));
    }
    let mut rest = form_urlencoded::Serializer::new(String::new());
    let mut kept = false;
    for (key, value) in form_urlencoded::parse(query.as_bytes()) {
        if !key.starts_with('$') {
            rest.append_pair(&key, &value);
            kept = true;
            continue;
        }
        match (key.as_ref(), value.as_ref()) {
            ("$alt", "json") => {}
            ("$alt", "json;enum-encoding=int") => form.enum_numbers = true,
            ("$alt", other) => {
                return Err(GatewayError::bad_field(
                    "$alt",
                    format!(
                        "unsupported value {other:?} for system parameter $alt: the gateway answers \"json\" or \"json;enum-encoding=int\""
                    ),
                ));
            }
            (other, _) => {
                return Err(GatewayError::bad_field(
                    other,
                    format!("unknown system parameter {other:?}: the gateway knows only $alt and $fields"),
                ));
            }
        }
    }
    let rest = if kept { rest.finish() } else { String::new() };
    Ok((Cow::Owned(rest), form))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn enum_numbers(query: &str) -> (String, bool) {
        let (rest, form) = split(query).expect(query);
        (rest.into_owned(), form.enum_numbers)
    }

    #[test]
    fn alt_json_is_taken_off_the_query() {
        assert_eq!(enum_numbers("ids=1,2"), ("ids=1,2".into(), false));
        assert_eq!(enum_numbers("$alt=json"), (String::new(), false));
        assert_eq!(enum_numbers("%24alt=json&ids=1"), ("ids=1".into(), false));
        assert_eq!(
            enum_numbers("ids=1&$alt=json;enum-encoding=int"),
            ("ids=1".into(), true)
        );
        // As GAPIC clients send it: the `;` and `=` percent-encoded.
        assert_eq!(
            enum_numbers("$alt=json%3Benum-encoding%3Dint&a.b=x%20y"),
            ("a.b=x+y".into(), true)
        );
    }

    #[test]
    fn other_system_parameters_are_refused_by_name() {
        let err = split("$alt=proto").expect_err("$alt=proto");
        assert_eq!(err.http_status(), http::StatusCode::BAD_REQUEST);
        assert_eq!(err.body()["details"][0]["fieldViolations"][0]["field"], "$alt");
        assert_eq!(
            err.message(),
            "unsupported value \"proto\" for system parameter $alt: the gateway answers \"json\" or \"json;enum-encoding=int\""
        );
        // `$fields` is taken off before (`fields.rs`); any other is refused by name.
        let err = split("ids=1&$prettyPrint=false").expect_err("$prettyPrint");
        assert_eq!(
            err.body()["details"][0]["fieldViolations"][0]["field"],
            "$prettyPrint"
        );
        assert_eq!(
            err.message(),
            "unknown system parameter \"$prettyPrint\": the gateway knows only $alt and $fields"
        );
        assert!(split("%24callback=x").is_err());
    }
}
