//! The seeded, read-only user table of the fast upstream: the same rows as
//! `services/users/src/users_service/data.py` (ids 1, 2, 3), looked up the same way: request
//! order kept, unknown ids skipped, duplicates repeated. Repeating an id is how the scaling
//! check asks for large replies (`?ids=1,1,1,…`), so no special server mode exists.

use crate::pb::User;

/// One row: id, name, age, email.
const ROWS: [(i32, &str, i32, &str); 3] = [
    (1, "Alice", 30, "alice@example.com"),
    (2, "Bob", 25, "bob@example.com"),
    (3, "Carol", 41, "carol@example.com"),
];

/// The user with this id, if the table has one.
pub fn user(id: i32) -> Option<User> {
    ROWS.iter()
        .find(|(row_id, ..)| *row_id == id)
        .map(|&(_, name, age, email)| User {
            name: name.to_owned(),
            age,
            email: email.to_owned(),
        })
}

/// The users for `ids` in request order; unknown ids are skipped, duplicates repeated.
pub fn users(ids: &[i32]) -> Vec<User> {
    ids.iter().filter_map(|&id| user(id)).collect()
}

#[cfg(test)]
mod tests {
    use super::users;

    #[test]
    fn lookup_keeps_order_skips_unknown_and_repeats_duplicates() {
        let names: Vec<String> = users(&[3, 9, 1, 1]).into_iter().map(|u| u.name).collect();
        assert_eq!(names, ["Carol", "Alice", "Alice"]);
        let bob = &users(&[2])[0];
        assert_eq!((bob.age, bob.email.as_str()), (25, "bob@example.com"));
    }

    #[test]
    fn a_thousand_repeated_ids_give_a_thousand_users() {
        assert_eq!(users(&[1; 1000]).len(), 1000);
    }
}
