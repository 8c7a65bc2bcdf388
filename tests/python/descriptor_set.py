"""Test servers built at run time from a FileDescriptorSet, with no generated stubs.

The Rust tests compile the protos with protox (imports included, in dependency order, no
source info, as `protoc --include_imports --descriptor_set_out` writes them) and hand the
file to a server here. This module loads such a set into a fresh descriptor pool (never the
default one, so that the files served are exactly the set's, google/api and
google/protobuf included), gives message classes from it, and serves gRPC server reflection
of that pool: v1alpha, as grpcio-reflection serves it, or with v1_only the same servicer
under grpc.reflection.v1 alone (the two versions' messages are the same on the wire).

Used by set_server.py (tests/reflection_schema.rs), compliance_server.py and
compliance_client.py (tests/showcase.rs). Needs only the venv of scripts/setup-python
(grpcio, grpcio-reflection, protobuf).
"""
import grpc
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from grpc_reflection.v1alpha import reflection, reflection_pb2


def load(path):
    """The pool of the set at `path`, and the names of its files in the set's order."""
    with open(path, "rb") as f:
        fds = descriptor_pb2.FileDescriptorSet.FromString(f.read())
    pool = descriptor_pool.DescriptorPool()
    for file in fds.file:
        # Re-serialised from the parsed set: options the default pool does not know
        # (google.api.http) stay as unknown fields, byte for byte.
        pool.AddSerializedFile(file.SerializeToString())
    return pool, [file.name for file in fds.file]


def services(pool, names):
    """Every service of the files named, as descriptors."""
    for name in names:
        yield from pool.FindFileByName(name).services_by_name.values()


def message_class(pool, full_name):
    return message_factory.GetMessageClass(pool.FindMessageTypeByName(full_name))


def http_rules(pool, method):
    """The google.api.http rule of `method` (a MethodDescriptor) as a message of `pool`,
    or None. The options are read again as the pool's own MethodOptions, which knows the
    extension."""
    extension = pool.FindExtensionByName("google.api.http")
    options_class = message_class(pool, "google.protobuf.MethodOptions")
    options = options_class.FromString(method.GetOptions().SerializeToString())
    if not options.HasExtension(extension):
        return None
    return options.Extensions[extension]


def add_reflection(server, pool, service_names, v1_only):
    """Serves reflection of `pool` for `service_names` (plus the reflection service)."""
    if v1_only:
        names = tuple(service_names) + ("grpc.reflection.v1.ServerReflection",)
        servicer = reflection.ReflectionServicer(names, pool=pool)
        handler = grpc.stream_stream_rpc_method_handler(
            servicer.ServerReflectionInfo,
            request_deserializer=reflection_pb2.ServerReflectionRequest.FromString,
            response_serializer=reflection_pb2.ServerReflectionResponse.SerializeToString,
        )
        server.add_generic_rpc_handlers(
            (
                grpc.method_handlers_generic_handler(
                    "grpc.reflection.v1.ServerReflection", {"ServerReflectionInfo": handler}
                ),
            )
        )
    else:
        names = tuple(service_names) + (reflection.SERVICE_NAME,)
        reflection.enable_server_reflection(names, server, pool=pool)
