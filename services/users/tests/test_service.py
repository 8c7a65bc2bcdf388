"""MyService behaviour over a real channel, plus the pure data layer."""

from __future__ import annotations

import grpc
import pytest
from google.protobuf import empty_pb2

import api_pb2
import api_pb2_grpc
from helpers import RPC_TIMEOUT
from users_service.data import USERS, get_users


@pytest.fixture
def stub(channel: grpc.Channel) -> api_pb2_grpc.MyServiceStub:
    return api_pb2_grpc.MyServiceStub(channel)


def names(reply: api_pb2.UserReply) -> list[str]:
    return [u.name for u in reply.data]


def test_seed_data_is_exact() -> None:
    assert {uid: (u.name, u.age, u.email) for uid, u in USERS.items()} == {
        1: ("Alice", 30, "alice@example.com"),
        2: ("Bob", 25, "bob@example.com"),
        3: ("Carol", 41, "carol@example.com"),
    }


def test_get_users_order_and_unknown() -> None:
    assert [u.name for u in get_users([3, 99, 1, -1, 0])] == ["Carol", "Alice"]


def test_user_one_and_two(stub: api_pb2_grpc.MyServiceStub) -> None:
    reply = stub.User(api_pb2.UserReq(userIDs=[1, 2]), timeout=RPC_TIMEOUT)
    assert reply.message == "success"
    assert list(reply.data) == [
        api_pb2.User(name="Alice", age=30, email="alice@example.com"),
        api_pb2.User(name="Bob", age=25, email="bob@example.com"),
    ]


def test_user_skips_unknown_ids(stub: api_pb2_grpc.MyServiceStub) -> None:
    reply = stub.User(api_pb2.UserReq(userIDs=[42, 2, -7, 0]), timeout=RPC_TIMEOUT)
    assert reply.message == "success"
    assert names(reply) == ["Bob"]


def test_user_all_unknown(stub: api_pb2_grpc.MyServiceStub) -> None:
    reply = stub.User(api_pb2.UserReq(userIDs=[4, 5]), timeout=RPC_TIMEOUT)
    assert reply.message == "success"
    assert list(reply.data) == []


def test_user_preserves_request_order(stub: api_pb2_grpc.MyServiceStub) -> None:
    reply = stub.User(api_pb2.UserReq(userIDs=[3, 1, 2, 1]), timeout=RPC_TIMEOUT)
    assert names(reply) == ["Carol", "Alice", "Bob", "Alice"]


def test_user_empty_request(stub: api_pb2_grpc.MyServiceStub) -> None:
    reply = stub.User(api_pb2.UserReq(), timeout=RPC_TIMEOUT)
    assert reply == api_pb2.UserReply(message="success")
    assert len(reply.data) == 0


def test_health_returns_empty(stub: api_pb2_grpc.MyServiceStub) -> None:
    reply = stub.Health(empty_pb2.Empty(), timeout=RPC_TIMEOUT)
    assert reply == empty_pb2.Empty()


def test_no_served_by_header_without_hooks(stub: api_pb2_grpc.MyServiceStub) -> None:
    _, call = stub.User.with_call(api_pb2.UserReq(userIDs=[1]), timeout=RPC_TIMEOUT)
    assert "x-served-by" not in dict(call.initial_metadata())
