//! PATCH with a field mask from the body (AIP-134) on the real binary, in front of the real
//! Python Library server (which applies `update_mask` as AIP-134 says: no mask replaces the
//! whole book), through both codecs: a PATCH without a mask changes only the fields its
//! body holds (nested objects as dotted paths, maps whole, `null` clears), and a mask the
//! client sends wins.

mod support;

use http::Method;
use serde_json::{Value, json};
use support::library::BothCodecs;

const BOOK: &str = "/library/v1/shelves/1/books/1";

async fn patch(both: &BothCodecs, path: &str, body: Value) -> Value {
    let reply = both
        .send(
            Method::PATCH,
            path,
            &[("content-type", "application/json")],
            &body.to_string(),
        )
        .await;
    assert_eq!(reply.status, 200, "{:?}", reply.body);
    reply.json()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_patch_without_a_mask_changes_only_the_fields_in_its_body() {
    let both = BothCodecs::start("");

    // One top-level field: everything else is kept (without the mask, the server would
    // replace the whole book and the author would be gone).
    let book = patch(&both, BOOK, json!({"title": "The Dispossessed"})).await;
    assert_eq!(book["title"], "The Dispossessed");
    assert_eq!(book["author"]["displayName"], "Ursula K. Le Guin");
    assert_eq!(book["pageCount"], "304");

    // A nested object is a dotted path: its siblings stay.
    let book = patch(&both, BOOK, json!({"author": {"address": {"city": "Berkeley"}}})).await;
    assert_eq!(
        book["author"],
        json!({"displayName": "Ursula K. Le Guin", "address": {"city": "Berkeley", "countryCode": "US"}})
    );

    // A map is one whole field: replaced, not merged; proto names are read too.
    let book = patch(
        &both,
        BOOK,
        json!({"labels": {"shelf": "top"}, "page_count": "320"}),
    )
    .await;
    assert_eq!(book["labels"], json!({"shelf": "top"}));
    assert_eq!(book["pageCount"], "320");
    assert_eq!(book["editions"], json!({"1969": "Ace"}));

    // An explicit null is present: it clears the field.
    let book = patch(
        &both,
        BOOK,
        json!({"chapters": null, "format": "BOOK_FORMAT_EBOOK"}),
    )
    .await;
    assert_eq!(book["chapters"], json!([]));
    assert_eq!(book["format"], "BOOK_FORMAT_EBOOK");
    assert_eq!(book["title"], "The Dispossessed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_explicit_mask_wins_over_the_body() {
    let both = BothCodecs::start("");
    let body = json!({"title": "Ignored", "pageCount": "500"});
    let book = patch(&both, &format!("{BOOK}?updateMask=pageCount"), body).await;
    assert_eq!(book["pageCount"], "500");
    assert_eq!(book["title"], "The Left Hand of Darkness");
    // A mask naming a field the server does not know reaches it and is refused there.
    let reply = both
        .send(
            Method::PATCH,
            &format!("{BOOK}?updateMask=nope"),
            &[("content-type", "application/json")],
            "{}",
        )
        .await;
    assert_eq!(reply.status, 400, "{:?}", reply.body);
}
