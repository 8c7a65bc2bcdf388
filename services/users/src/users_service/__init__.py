"""users_service: the Python grpcio upstream behind the protogate gateway.

It serves ``MyService`` from the repo's shared ``proto/api.proto`` (a
package-less proto, so the generated stubs are the top-level modules
``api_pb2`` / ``api_pb2_grpc``), plus ``grpc.health.v1.Health`` and server
reflection. See ``server.py`` for the entry points.
"""

__version__ = "0.1.0"
