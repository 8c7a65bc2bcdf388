"""A grpcio server that serves server reflection for every service of a FileDescriptorSet
and implements none of them (every call answers UNIMPLEMENTED): the upstream of
tests/reflection_schema.rs, which compares the schema a gateway learns by reflection with
the one it reads from the same set. Prints "set_server listening on 127.0.0.1:PORT" once
it listens.

Usage: set_server.py DESCRIPTORS [--v1-only]
"""
import sys
from concurrent import futures

import grpc

import descriptor_set


def main() -> None:
    pool, names = descriptor_set.load(sys.argv[1])
    service_names = [s.full_name for s in descriptor_set.services(pool, names)]
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    descriptor_set.add_reflection(server, pool, service_names, "--v1-only" in sys.argv[2:])
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    print(f"set_server listening on 127.0.0.1:{port}", flush=True)
    server.wait_for_termination()


if __name__ == "__main__":
    main()
