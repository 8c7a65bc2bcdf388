"""A scripted WebSocket client on the `websockets` library (a client the gateway's authors
did not write), for tests/streams_websocket.rs.

Usage: websocket_client.py URL SCRIPT_JSON [ORIGIN] [HEADER=VALUE ...]

SCRIPT_JSON is a list of steps, run in order:
  {"send": "text"}     send one text frame ("" half-closes the request stream)
  {"send_bytes": n}    send one text frame of n bytes ("x" repeated, not JSON)
  {"binary": "text"}   send one binary frame
  {"recv": n}          wait for n text frames
  {"close": true}      close from the client side (code 1000)
  {"wait_close": true} read until the gateway closes the socket

Prints one JSON object per line: {"open": true} once the handshake succeeded,
{"recv": text} per frame received, {"closed": code,
"reason": text} when the socket closed, {"refused": status, "retry_after": header or null,
"body": the JSON error body} when the handshake was refused; exits 0 unless the script itself broke.
"""
import asyncio
import json
import sys

from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus


def say(**fields) -> None:
    print(json.dumps(fields), flush=True)


async def run(url: str, script: list, origin, headers: dict) -> None:
    try:
        socket = await connect(url, origin=origin, additional_headers=headers, max_size=None, open_timeout=10)
    except InvalidStatus as refused:
        response = refused.response
        body = json.loads(response.body) if response.body else None
        say(refused=response.status_code, retry_after=response.headers.get("Retry-After"), body=body)
        return
    say(open=True)
    try:
        for step in script:
            if "send" in step:
                await socket.send(step["send"])
            elif "send_bytes" in step:
                await socket.send("x" * step["send_bytes"])
            elif "binary" in step:
                await socket.send(step["binary"].encode())
            elif "recv" in step:
                for _ in range(step["recv"]):
                    say(recv=await asyncio.wait_for(socket.recv(), 10))
            elif "close" in step:
                await socket.close()
            elif "wait_close" in step:
                while True:
                    say(recv=await asyncio.wait_for(socket.recv(), 10))
    except ConnectionClosed:
        pass
    await asyncio.wait_for(socket.wait_closed(), 10)
    say(closed=socket.close_code, reason=socket.close_reason)


def main() -> None:
    url, script = sys.argv[1], json.loads(sys.argv[2])
    origin = sys.argv[3] if len(sys.argv) > 3 and sys.argv[3] else None
    headers = dict(arg.split("=", 1) for arg in sys.argv[4:])
    asyncio.run(run(url, script, origin, headers))


if __name__ == "__main__":
    main()
