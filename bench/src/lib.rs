//! The bench harness library: the generated `MyService` code (`pb`), RouteGuide's
//! (`routeguide`) and the file service's (`files::v1`, with `google::api`'s HttpBody), the seeded user table
//! the fast upstream serves (`users`), and the load driver both load generators share
//! (`load`: closed-loop and fixed-rate schedules, latency histograms, the JSON summary line).
//! It owns no process handling and no HTTP/gRPC specifics; those live in the binaries.

pub mod load;
pub mod users;

/// Generated prost types plus the tonic client and server for the seed's package-less
/// `api.proto` (wire paths `/MyService/User` and `/MyService/Health`).
pub mod pb {
    #![allow(clippy::all, missing_docs)]
    include!(concat!(env!("OUT_DIR"), "/_.rs"));
}

/// grpc's RouteGuide (`tests/routeguide/route_guide.proto`), which the fast upstream also
/// serves for `bench streams` (server and bidirectional streams).
pub mod routeguide {
    #![allow(clippy::all, missing_docs)]
    include!(concat!(env!("OUT_DIR"), "/routeguide.rs"));
}

/// The file service (`tests/protos/files/v1/files.proto`, package `files.v1`), whose
/// streamed download and streamed upload the fast upstream serves for `bench files`.
pub mod files {
    pub mod v1 {
        #![allow(clippy::all, missing_docs)]
        include!(concat!(env!("OUT_DIR"), "/files.v1.rs"));
    }
}

/// `google.api.HttpBody` and the HTTP annotations the file service imports (the generated
/// code names them `super::super::google::api`, hence the nesting).
pub mod google {
    pub mod api {
        #![allow(clippy::all, missing_docs)]
        include!(concat!(env!("OUT_DIR"), "/google.api.rs"));
    }
}

/// Parses a comma list of user ids such as `1,2,3` (what `--ids` takes).
pub fn parse_ids(text: &str) -> Result<Vec<i32>, String> {
    text.split(',')
        .map(|part| {
            part.trim()
                .parse::<i32>()
                .map_err(|e| format!("invalid id {part:?}: {e}"))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::parse_ids;

    #[test]
    fn ids_parse_as_a_comma_list() {
        assert_eq!(parse_ids("1,2, 3").unwrap(), vec![1, 2, 3]);
        assert!(parse_ids("1,x").is_err());
        assert!(parse_ids("").is_err());
    }
}
