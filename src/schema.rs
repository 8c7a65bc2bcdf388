//! The schema the gateway serves: the descriptor pool, the method table (each method with
//! its codec), the route table and the OpenAPI document, built together off the request
//! path and immutable afterwards. Today the one source is the protos compiled into the
//! binary; every rule is checked here, so a bad one stops startup with one line naming it.

use bytes::Bytes;
use prost_reflect::DescriptorPool;

use crate::config::Config;
use crate::method::MethodTable;
use crate::routing::{self, RouteTable};
use crate::startup::StartupError;
use crate::{descriptors, openapi};

/// One immutable schema; requests read it through a shared reference.
pub struct Schema {
    pool: DescriptorPool,
    methods: MethodTable,
    routes: RouteTable,
    /// The OpenAPI document of `routes`, rendered once (served at `/openapi.json`).
    openapi: Bytes,
}

impl Schema {
    /// The protos compiled into the binary, with `config`'s rules.
    pub fn compiled(config: &Config) -> Result<Schema, StartupError> {
        let pool = descriptors::load().map_err(StartupError::Schema)?;
        let methods = MethodTable::compiled(&pool).map_err(StartupError::Schema)?;
        Schema::build(pool, methods, config)
    }

    /// Routes and documents `methods` of `pool` under `config`'s rules.
    pub fn build(
        pool: DescriptorPool,
        methods: MethodTable,
        config: &Config,
    ) -> Result<Schema, StartupError> {
        let routes = routing::build_table(&pool, &methods, &config.rules, config.transcoding.unbound_methods)
            .map_err(StartupError::Schema)?;
        let openapi = openapi::render(&pool, &routes).map_err(StartupError::Schema)?;
        Ok(Schema {
            pool,
            methods,
            routes,
            openapi,
        })
    }

    pub fn pool(&self) -> &DescriptorPool {
        &self.pool
    }

    pub fn methods(&self) -> &MethodTable {
        &self.methods
    }

    pub fn routes(&self) -> &RouteTable {
        &self.routes
    }

    /// The OpenAPI 3.1 document of the route table, as JSON bytes (cheap to clone).
    pub fn openapi(&self) -> Bytes {
        self.openapi.clone()
    }
}
