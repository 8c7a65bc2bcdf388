"""A grpcio RouteGuide server (tests/routeguide/route_guide.proto, grpc's own example service)
with server reflection and grpc.health.v1: the service "that is not the demo" that
tests/readme.rs puts behind the README's commands. All four methods are implemented, the
streaming ones too, so tests of client and bidirectional streams can use it as they come.

Stubs are generated at startup with grpc_tools.protoc into a temporary directory, so nothing
generated is committed. Prints "routeguide listening on 127.0.0.1:PORT" once it serves
(PORT 0 picks a free port).

Usage: routeguide_server.py [PORT]
"""
import math
import os
import sys
import tempfile
import time
from concurrent import futures

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection
from grpc_tools import protoc

PROTO_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "routeguide")

# A few features of grpc's route_guide_db.json (E7 coordinates).
FEATURES = [
    ("Berkshire Valley Management Area Trail, Jefferson, NJ, USA", 409146138, -746188906),
    ("Patriots Path, Mendham, NJ 07945, USA", 407838351, -746143763),
    ("101 New Jersey 10, Whippany, NJ 07981, USA", 408122808, -743999179),
    ("U.S. 6, Shohola, PA 18458, USA", 413628156, -749015468),
]


# A point at this latitude makes RecordRoute fail mid-stream, and a note with this message
# makes RouteChat fail: the tests' upstream errors in the middle of a stream.
FAIL_LATITUDE = 1
FAIL_MESSAGE = "fail"


def ending(context) -> str:
    """How a request stream that ended without an error ended: "complete" (the client
    half-closed) or "cancelled". grpcio may end the request iterator on a client's
    RST_STREAM(CANCEL) before it marks the call cancelled, so a cancellation is looked for
    during a short while (which a genuine half-close costs once)."""
    deadline = time.time() + 0.2
    while time.time() < deadline:
        if not context.is_active():
            return "cancelled"
        time.sleep(0.01)
    return "complete"


def generate_stubs() -> str:
    out = tempfile.mkdtemp(prefix="routeguide-stubs-")
    status = protoc.main(
        ["grpc_tools.protoc", f"-I{PROTO_DIR}", f"--python_out={out}", f"--grpc_python_out={out}", "route_guide.proto"]
    )
    if status != 0:
        sys.exit(f"routeguide_server: protoc failed ({status})")
    sys.path.insert(0, out)
    return out


def distance(a, b) -> int:
    """Metres between two points (haversine), as grpc's example computes it."""
    factor, radius = 1e7, 6371000
    lat1, lat2 = math.radians(a.latitude / factor), math.radians(b.latitude / factor)
    dlat = lat2 - lat1
    dlon = math.radians(b.longitude / factor) - math.radians(a.longitude / factor)
    h = math.sin(dlat / 2) ** 2 + math.cos(lat1) * math.cos(lat2) * math.sin(dlon / 2) ** 2
    return int(radius * 2 * math.atan2(math.sqrt(h), math.sqrt(1 - h)))


def main() -> None:
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 0
    generate_stubs()
    import route_guide_pb2 as pb
    import route_guide_pb2_grpc as pb_grpc

    features = [pb.Feature(name=n, location=pb.Point(latitude=la, longitude=lo)) for n, la, lo in FEATURES]

    def at(point):
        for feature in features:
            if feature.location == point:
                return feature
        return None

    class RouteGuide(pb_grpc.RouteGuideServicer):
        def GetFeature(self, request, context):
            found = at(request)
            return found if found is not None else pb.Feature(name="", location=request)

        def ListFeatures(self, request, context):
            left, right = sorted((request.lo.longitude, request.hi.longitude))
            bottom, top = sorted((request.lo.latitude, request.hi.latitude))
            for feature in features:
                loc = feature.location
                if left <= loc.longitude <= right and bottom <= loc.latitude <= top:
                    yield feature

        def RecordRoute(self, request_iterator, context):
            count = known = metres = 0
            previous = None
            started = time.time()
            try:
                for point in request_iterator:
                    count += 1
                    if at(point) is not None:
                        known += 1
                    if previous is not None:
                        metres += distance(previous, point)
                    previous = point
                    if point.latitude == FAIL_LATITUDE:
                        context.abort(grpc.StatusCode.FAILED_PRECONDITION, f"point {count} is off the map")
            except grpc.RpcError:
                # The client cancelled: the tests read this line to prove that a bad message
                # reset the call rather than half-closing it.
                print(f"RecordRoute cancelled after {count} points", flush=True)
                raise
            print(f"RecordRoute {ending(context)} after {count} points", flush=True)
            return pb.RouteSummary(
                point_count=count, feature_count=known, distance=metres, elapsed_time=int(time.time() - started)
            )

        def RouteChat(self, request_iterator, context):
            notes = []
            try:
                for note in request_iterator:
                    if note.message == FAIL_MESSAGE:
                        context.abort(grpc.StatusCode.FAILED_PRECONDITION, "the chat was told to fail")
                    # The note counts as received before the replies go: grpcio resumes the
                    # generator after a yield only when it asks for the next reply, so a cancel
                    # that lands while a reply is out would otherwise miss this note.
                    earlier_here = [earlier for earlier in notes if earlier.location == note.location]
                    notes.append(note)
                    yield from earlier_here
            except (grpc.RpcError, GeneratorExit):
                # GeneratorExit: cancelled while suspended at a yield, grpcio closes the
                # generator instead of resuming it.
                print(f"RouteChat cancelled after {len(notes)} notes", flush=True)
                raise
            print(f"RouteChat {ending(context)} after {len(notes)} notes", flush=True)

    server = grpc.server(futures.ThreadPoolExecutor(max_workers=8))
    pb_grpc.add_RouteGuideServicer_to_server(RouteGuide(), server)
    health_servicer = health.HealthServicer()
    health_servicer.set("", health_pb2.HealthCheckResponse.SERVING)
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    names = (pb.DESCRIPTOR.services_by_name["RouteGuide"].full_name, health.SERVICE_NAME, reflection.SERVICE_NAME)
    reflection.enable_server_reflection(names, server)
    bound = server.add_insecure_port(f"127.0.0.1:{port}")
    server.start()
    print(f"routeguide listening on 127.0.0.1:{bound}", flush=True)
    server.wait_for_termination()


if __name__ == "__main__":
    main()
