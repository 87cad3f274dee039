"""A loopback OpenAI-compatible `/chat/completions` server (or, with `api="anthropic"`, an Anthropic
`/messages` one): the outside world of the judging tests and of bench/score.py. Real HTTP/1.1 with
keep-alive on 127.0.0.1, an asyncio server in a thread of its own (or its own process:
`python -m tests.llm_server --latency 0.2`).

What it answers is programmable: `server.when(marker, reply, ...)` answers requests whose body
contains `marker` with those replies in turn (the last one repeats); every other request gets the
default reply. A Reply can add latency, answer any status with any headers (429 + Retry-After),
hang past the client's timeout, drop the connection, send malformed JSON or empty content.
"""

import argparse
import asyncio
import threading
from collections import Counter
from dataclasses import dataclass, field

import orjson

DEFAULT_ANSWER = "分析：回答准确、完整，表达清楚。\n总体评分：[7]"


@dataclass
class Reply:
    content: str | None = DEFAULT_ANSWER
    status: int = 200
    latency: float | None = None
    headers: dict = field(default_factory=dict)
    body: bytes | None = None  # sent as is instead of a completion (malformed JSON, provider errors)
    error: str | None = None  # an error body in the API's style: {"error": {"message": ...}}
    hang: bool = False
    drop: bool = False
    usage: tuple = (120, 30)


class LLMServer:
    def __init__(self, latency=0.0, default=None, api_key=None, record=True, paths=None, responder=None,
                 api="openai"):
        """`paths`: the routes answered (others get 404; by default the API's own); `responder(path, body)`:
        the default reply computed from the request (reward endpoints answer with a number that depends
        on the text); `api`: "openai" or "anthropic", how the key is checked and replies are shaped."""
        self.api = api
        self.paths = tuple(paths or API_PATHS[api])
        self.responder = responder
        self.latency = latency
        self.default = default or Reply()
        self.api_key = api_key
        self.record = record
        self.rules = []  # [marker, [replies], index]
        self.requests = 0
        self.in_flight = 0
        self.max_in_flight = 0
        self.by_marker = Counter()
        self.bodies = []
        self.headers = []  # each request's headers, names in lower case
        self.port = None
        self._loop = None
        self._thread = None
        self._server = None

    @property
    def base_url(self):
        return f"http://127.0.0.1:{self.port}/v1"

    def when(self, marker, *replies):
        self.rules.append([marker, list(replies), 0])
        return self

    def _choose(self, text):
        for rule in self.rules:
            if rule[0] in text:
                marker, replies, index = rule
                rule[2] = index + 1
                self.by_marker[marker] += 1
                return replies[min(index, len(replies) - 1)]
        return self.default

    async def _handle(self, reader, writer):
        try:
            while True:
                try:
                    head = await reader.readuntil(b"\r\n\r\n")
                except (asyncio.IncompleteReadError, ConnectionError):
                    return
                lines = head.decode("latin-1").split("\r\n")
                path = lines[0].split(" ")[1] if len(lines[0].split(" ")) > 1 else "/"
                headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:] if line)}
                body = await reader.readexactly(int(headers.get("content-length", "0")))
                self.requests += 1
                text = body.decode("utf-8", "replace")
                if self.record:
                    self.bodies.append(text)
                    self.headers.append(headers)
                reply = self._answer(path, headers, text)
                delay = self.latency if reply.latency is None else reply.latency
                self.in_flight += 1
                self.max_in_flight = max(self.max_in_flight, self.in_flight)
                try:
                    if reply.hang:
                        await asyncio.sleep(3600)
                    if delay:
                        await asyncio.sleep(delay)
                finally:
                    self.in_flight -= 1
                if reply.drop:
                    writer.transport.abort()
                    return
                writer.write(_http_response(reply, self.api))
                await writer.drain()
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            writer.close()

    def _answer(self, path, headers, text):
        if not path.endswith(self.paths):
            return Reply(status=404, error=f"no route {path}")
        if self.api == "anthropic" and "anthropic-version" not in headers:
            return Reply(status=400, error="anthropic-version: header is required")
        if self.api_key and not self._authorised(headers):
            return Reply(status=401, error="Incorrect API key provided.")
        reply = self._choose(text)
        if reply is self.default and self.responder is not None:
            return self.responder(path, text)
        return reply

    def _authorised(self, headers):
        if self.api == "anthropic":
            return headers.get("x-api-key") == self.api_key
        return headers.get("authorization") == f"Bearer {self.api_key}"

    # Running in a thread of the test process.
    def start(self):
        self._loop = asyncio.new_event_loop()
        ready = threading.Event()

        def run():
            asyncio.set_event_loop(self._loop)
            self._server = self._loop.run_until_complete(asyncio.start_server(self._handle, "127.0.0.1", 0))
            self.port = self._server.sockets[0].getsockname()[1]
            ready.set()
            self._loop.run_forever()

        self._thread = threading.Thread(target=run, name="llm-server", daemon=True)
        self._thread.start()
        ready.wait(10)
        return self

    def stop(self):
        async def shutdown():
            self._server.close()
            for task in asyncio.all_tasks():
                if task is not asyncio.current_task():
                    task.cancel()

        asyncio.run_coroutine_threadsafe(shutdown(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


_REASONS = {200: "OK", 400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found",
            429: "Too Many Requests", 500: "Internal Server Error", 502: "Bad Gateway", 503: "Service Unavailable",
            529: "Overloaded"}


API_PATHS = {"openai": ("/chat/completions",), "anthropic": ("/messages",)}


def _http_response(reply, api="openai"):
    if reply.body is not None:
        payload = reply.body
    elif reply.error is not None and api == "anthropic":
        payload = orjson.dumps({"type": "error", "error": {"type": "invalid_request_error", "message": reply.error}})
    elif reply.error is not None:
        payload = orjson.dumps({"error": {"message": reply.error, "type": "invalid_request_error"}})
    elif api == "anthropic":
        payload = orjson.dumps({
            "id": "msg_loopback", "type": "message", "role": "assistant", "model": "loopback",
            "content": [] if reply.content is None else [{"type": "text", "text": reply.content}],
            "stop_reason": "end_turn", "usage": {"input_tokens": reply.usage[0], "output_tokens": reply.usage[1]},
        })
    else:
        payload = orjson.dumps({
            "id": "chatcmpl-loopback", "object": "chat.completion", "model": "loopback",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": reply.content},
                         "finish_reason": "stop"}],
            "usage": {"prompt_tokens": reply.usage[0], "completion_tokens": reply.usage[1],
                      "total_tokens": sum(reply.usage)},
        })
    head = [f"HTTP/1.1 {reply.status} {_REASONS.get(reply.status, 'Status')}", "Content-Type: application/json",
            f"Content-Length: {len(payload)}"]
    head += [f"{k}: {v}" for k, v in reply.headers.items()]
    return ("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + payload


def main():
    parser = argparse.ArgumentParser(description="A loopback OpenAI-compatible server for benchmarks.")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--latency", type=float, default=0.2)
    args = parser.parse_args()
    server = LLMServer(latency=args.latency, record=False)

    async def serve():
        srv = await asyncio.start_server(server._handle, "127.0.0.1", args.port, backlog=1024)
        print(srv.sockets[0].getsockname()[1], flush=True)
        async with srv:
            await srv.serve_forever()

    asyncio.run(serve())


if __name__ == "__main__":
    main()
