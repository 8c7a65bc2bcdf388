"""``MyService`` servicer: the business logic, free of server plumbing."""

from __future__ import annotations

import logging

import grpc
from google.protobuf import empty_pb2

from users_service.data import get_users
from users_service.stubs import api_pb2, api_pb2_grpc

log = logging.getLogger(__name__)

#: ``MyService``'s fully-qualified name (the proto has no package).
SERVICE_NAME: str = api_pb2.DESCRIPTOR.services_by_name["MyService"].full_name


class MyService(api_pb2_grpc.MyServiceServicer):
    """Implements ``MyService`` from ``proto/api.proto``."""

    def Health(  # noqa: N802 - name fixed by the proto
        self, request: empty_pb2.Empty, context: grpc.ServicerContext
    ) -> empty_pb2.Empty:
        """Liveness probe. Must return a message: a bare ``return`` (as in
        the original blog post) makes grpcio fail to serialize the reply."""
        return empty_pb2.Empty()

    def User(  # noqa: N802 - name fixed by the proto
        self, request: api_pb2.UserReq, context: grpc.ServicerContext
    ) -> api_pb2.UserReply:
        """Look up ``request.userIDs`` in order; unknown ids are skipped."""
        users = get_users(request.userIDs)
        log.debug("User(%s) -> %d users", list(request.userIDs), len(users))
        return api_pb2.UserReply(
            message="success",
            data=[api_pb2.User(name=u.name, age=u.age, email=u.email) for u in users],
        )
