"""A grpcio server of gapic-showcase's Compliance service (google.showcase.v1beta1), built at
run time from a FileDescriptorSet of tests/showcase/, with server reflection. It does what
gapic-showcase's server/services/compliance_service.go does, over gRPC:

- RepeatData*: a request with server_verify is looked up in compliance_suite.json by its
  name and compared with the suite's request (proto equality, the whole request); any
  difference fails the call with UNKNOWN "(ComplianceSuiteRequestMismatchError) ...", naming
  the fields that differ. The request is echoed back in RepeatResponse.request.
  (The REST binding that showcase's own HTTP server records in binding_uri is not known to
  a gRPC server behind a gateway; it stays empty, and tests/showcase.rs checks the binding.)
- GetEnum: the request echoed, with a known continent (EUROPE) or, with unknown_enum, a
  number that no Continent value has (UNKNOWN_CONTINENT): fixed for the run.
- VerifyEnum: the request must equal what GetEnum answers for its request, and is echoed;
  otherwise UNKNOWN "(ComplianceServiceEnumVerificationError) ...".

Prints "compliance_server listening on 127.0.0.1:PORT" once it listens.

Usage: compliance_server.py DESCRIPTORS SUITE_JSON [--v1-only]
"""
import sys
from concurrent import futures

import grpc
from google.protobuf import json_format

import descriptor_set

PACKAGE = "google.showcase.v1beta1"
UNKNOWN_CONTINENT = -3852


def differences(a, b, prefix=""):
    """The field paths where messages `a` and `b` differ (proto equality, field by field)."""
    out = []
    for field in a.DESCRIPTOR.fields:
        name = prefix + field.name
        if field.message_type is not None and not field.message_type.GetOptions().map_entry and not _repeated(field):
            has_a, has_b = a.HasField(field.name), b.HasField(field.name)
            if has_a != has_b:
                out.append(f"{name} (set on one side only)")
            elif has_a:
                out.extend(differences(getattr(a, field.name), getattr(b, field.name), name + "."))
            continue
        va, vb = getattr(a, field.name), getattr(b, field.name)
        if field.has_presence and a.HasField(field.name) != b.HasField(field.name):
            out.append(f"{name} (present on one side only: {va!r} against {vb!r})")
        elif va != vb:
            out.append(f"{name} ({va!r} against {vb!r})")
    return out


def _repeated(field):
    # FieldDescriptor.label is deprecated in newer protobuf; is_repeated replaces it.
    repeated = getattr(field, "is_repeated", None)
    return repeated if repeated is not None else field.label == field.LABEL_REPEATED


class Compliance:
    def __init__(self, pool, suite_path):
        self.repeat_request = descriptor_set.message_class(pool, f"{PACKAGE}.RepeatRequest")
        self.repeat_response = descriptor_set.message_class(pool, f"{PACKAGE}.RepeatResponse")
        self.enum_request = descriptor_set.message_class(pool, f"{PACKAGE}.EnumRequest")
        self.enum_response = descriptor_set.message_class(pool, f"{PACKAGE}.EnumResponse")
        suite_class = descriptor_set.message_class(pool, f"{PACKAGE}.ComplianceSuite")
        with open(suite_path, encoding="utf-8") as f:
            suite = json_format.Parse(f.read(), suite_class(), descriptor_pool=pool)
        self.expected = {}
        for group in suite.group:
            for request in group.requests:
                if request.name in self.expected:
                    raise SystemExit(f"the suite has two requests named {request.name!r}")
                self.expected[request.name] = request

    def repeat(self, request, context):
        if request.server_verify:
            expected = self.expected.get(request.name)
            if expected is None:
                context.abort(
                    grpc.StatusCode.UNKNOWN,
                    f"(ComplianceSuiteRequestNotFoundError) compliance suite does not contain a request {request.name!r}",
                )
            diff = differences(request, expected)
            if diff:
                context.abort(
                    grpc.StatusCode.UNKNOWN,
                    f"(ComplianceSuiteRequestMismatchError) contents of request {request.name!r} do not match "
                    f"test suite (received against expected): {'; '.join(diff)}",
                )
        return self.repeat_response(request=request)

    def get_enum(self, request, context):
        response = self.enum_response(request=request)
        # Assigning an unknown number to an open enum field is allowed in proto3.
        response.continent = UNKNOWN_CONTINENT if request.unknown_enum else 5  # EUROPE
        return response

    def verify_enum(self, response, context):
        expected = self.get_enum(response.request, context)
        diff = differences(response, expected)
        if diff:
            context.abort(
                grpc.StatusCode.UNKNOWN,
                f"(ComplianceServiceEnumVerificationError) the enum response does not match (received against "
                f"expected): {'; '.join(diff)}",
            )
        return response

    def handler(self):
        repeat = grpc.unary_unary_rpc_method_handler(
            self.repeat,
            request_deserializer=self.repeat_request.FromString,
            response_serializer=self.repeat_response.SerializeToString,
        )
        methods = {
            name: repeat
            for name in (
                "RepeatDataBody",
                "RepeatDataBodyInfo",
                "RepeatDataQuery",
                "RepeatDataSimplePath",
                "RepeatDataPathResource",
                "RepeatDataPathTrailingResource",
                "RepeatDataBodyPut",
                "RepeatDataBodyPatch",
            )
        }
        methods["GetEnum"] = grpc.unary_unary_rpc_method_handler(
            self.get_enum,
            request_deserializer=self.enum_request.FromString,
            response_serializer=self.enum_response.SerializeToString,
        )
        methods["VerifyEnum"] = grpc.unary_unary_rpc_method_handler(
            self.verify_enum,
            request_deserializer=self.enum_response.FromString,
            response_serializer=self.enum_response.SerializeToString,
        )
        return grpc.method_handlers_generic_handler(f"{PACKAGE}.Compliance", methods)


def main() -> None:
    pool, _ = descriptor_set.load(sys.argv[1])
    compliance = Compliance(pool, sys.argv[2])
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    server.add_generic_rpc_handlers((compliance.handler(),))
    descriptor_set.add_reflection(server, pool, [f"{PACKAGE}.Compliance"], "--v1-only" in sys.argv[3:])
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    print(f"compliance_server listening on 127.0.0.1:{port}", flush=True)
    server.wait_for_termination()


if __name__ == "__main__":
    main()
