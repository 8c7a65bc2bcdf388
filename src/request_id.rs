//! Request ids: every request carries an `x-request-id` (the client's own, or a fresh UUID
//! v4 set on it), and its answer carries the same one back. Fresh ids come from a per-thread
//! splitmix64 generator seeded once from the OS (through std's `RandomState`): tower-http's
//! `MakeRequestUuid` asks the OS for randomness on every request (one `getrandom` syscall
//! each), and a request id must be unique, not unpredictable. This file owns the id;
//! `server/mod.rs` applies it around the whole stack.

use std::cell::Cell;
use std::hash::{BuildHasher, Hasher};

use http::{HeaderName, HeaderValue, Request, Response};

pub static X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The request's `x-request-id`, set first to a fresh UUID v4 when the client sent none.
pub fn ensure<B>(request: &mut Request<B>) -> HeaderValue {
    if let Some(id) = request.headers().get(&X_REQUEST_ID) {
        return id.clone();
    }
    let id = fresh();
    request.headers_mut().insert(X_REQUEST_ID.clone(), id.clone());
    id
}

/// Puts `id` on `response` unless it already carries one.
pub fn echo<B>(response: &mut Response<B>, id: HeaderValue) {
    if let http::header::Entry::Vacant(slot) = response.headers_mut().entry(&X_REQUEST_ID) {
        slot.insert(id);
    }
}

/// A fresh UUID v4.
pub fn fresh() -> HeaderValue {
    uuid_v4(next_u64(), next_u64())
}

thread_local! {
    static STATE: Cell<u64> = Cell::new(seed());
}

/// 64 random bits per thread: std seeds each `RandomState` from the OS (once per thread,
/// then by increment), so hashing nothing with a fresh one gives an unpredictable seed.
fn seed() -> u64 {
    std::collections::hash_map::RandomState::new()
        .build_hasher()
        .finish()
}

/// splitmix64 (Steele, Lea, Flood 2014): a full-period 64-bit generator with good mixing.
fn next_u64() -> u64 {
    STATE.with(|state| {
        let mut z = state.get().wrapping_add(0x9E37_79B9_7F4A_7C15);
        state.set(z);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    })
}

/// `xxxxxxxx-xxxx-4xxx-Nxxx-xxxxxxxxxxxx` (RFC 9562: version 4, variant `10`).
fn uuid_v4(high: u64, low: u64) -> HeaderValue {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let high = (high & !0xF000) | 0x4000;
    let low = (low & !(0b11 << 62)) | (0b10 << 62);
    let bits = (u128::from(high) << 64) | u128::from(low);
    let mut text = [0u8; 36];
    let mut nibble = 32;
    for (i, slot) in text.iter_mut().enumerate() {
        if matches!(i, 8 | 13 | 18 | 23) {
            *slot = b'-';
            continue;
        }
        nibble -= 1;
        *slot = HEX[((bits >> (nibble * 4)) & 0xF) as usize];
    }
    HeaderValue::from_bytes(&text).unwrap_or(HeaderValue::from_static("00000000-0000-4000-8000-000000000000"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_uuid_v4_and_distinct() {
        let mut seen = std::collections::HashSet::new();
        for _ in 0..10_000 {
            let id = fresh();
            let text = id.to_str().expect("ascii").to_string();
            let groups: Vec<&str> = text.split('-').collect();
            assert_eq!(
                groups.iter().map(|g| g.len()).collect::<Vec<_>>(),
                [8, 4, 4, 4, 12],
                "{text}"
            );
            assert!(
                text.bytes()
                    .all(|b| b == b'-' || b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
            );
            assert!(groups[2].starts_with('4'), "version 4: {text}");
            assert!(
                matches!(groups[3].as_bytes()[0], b'8' | b'9' | b'a' | b'b'),
                "variant: {text}"
            );
            assert!(seen.insert(text), "duplicate id");
        }
    }

    #[test]
    fn a_clients_id_is_kept_and_a_missing_one_is_made_and_echoed() {
        let mut request = Request::builder()
            .header("x-request-id", "client-7")
            .body(())
            .expect("request");
        assert_eq!(ensure(&mut request), "client-7");
        let mut bare = Request::new(());
        let made = ensure(&mut bare);
        assert_eq!(bare.headers().get("x-request-id"), Some(&made));
        assert_eq!(made.len(), 36);

        let mut response = Response::new(());
        echo(&mut response, made.clone());
        assert_eq!(response.headers().get("x-request-id"), Some(&made));
        echo(&mut response, HeaderValue::from_static("other"));
        assert_eq!(response.headers().get("x-request-id"), Some(&made), "kept");
    }

    #[test]
    fn threads_get_different_sequences() {
        let first = std::thread::spawn(|| (next_u64(), next_u64()))
            .join()
            .expect("thread");
        let second = std::thread::spawn(|| (next_u64(), next_u64()))
            .join()
            .expect("thread");
        assert_ne!(first, second);
    }
}
