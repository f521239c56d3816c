"""A small OpenAI-compatible HTTP server for tests, scripted per test.

It listens on 127.0.0.1 on a free port and implements POST /v1/chat/completions and POST
/v1/embeddings in OpenAI's JSON format. Each endpoint has a queue of scripted `Reply`s, served first
in, first out: a JSON body, an HTTP error with OpenAI's error body, a delay (longer than the
client's timeout), or a malformed body. Every request is recorded (path, headers, parsed JSON body)
so tests can assert on what the application sent. A request with nothing scripted for it gets HTTP
500 and is listed in `unscripted`.
"""

from __future__ import annotations

import base64
import json
import struct
import threading
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

CHAT = "/v1/chat/completions"
EMBEDDINGS = "/v1/embeddings"

TIMEOUT = 1.0  # the client's LLM_TIMEOUT_SECONDS in these tests
TOO_SLOW = TIMEOUT + 1.5  # a scripted delay the client gives up on


@dataclass(frozen=True)
class Reply:
    """One scripted answer. `body` is JSON-serialisable, or a callable given the request's JSON
    body; `raw` (bytes) is sent as is instead of `body`; `delay` seconds pass before anything is
    sent."""

    status: int = 200
    body: object = None
    raw: bytes | None = None
    content_type: str = "application/json"
    delay: float = 0.0
    # sent one by one, `chunk_delay` seconds apart, without a length: a stream as a model writes it
    chunks: tuple[bytes, ...] = ()
    chunk_delay: float = 0.0


@dataclass(frozen=True)
class RecordedRequest:
    path: str
    headers: dict[str, str]
    body: object  # the parsed JSON, or None when the body was not JSON
    raw: bytes = field(repr=False, default=b"")

    @property
    def response_format_type(self) -> str | None:
        fmt = self.body.get("response_format") if isinstance(self.body, dict) else None
        return fmt.get("type") if isinstance(fmt, dict) else None

    @property
    def messages(self) -> list[dict]:
        return self.body.get("messages", []) if isinstance(self.body, dict) else []


# --- replies --------------------------------------------------------------------------------------


def chat_reply(
    content: str | None, *, refusal: str | None = None, finish_reason: str = "stop"
) -> Reply:
    """A chat completion whose one choice says `content` (or refuses)."""

    def body(request: dict) -> dict:
        return {
            "id": "chatcmpl-test",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": request.get("model", "test-model"),
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": content, "refusal": refusal},
                    "logprobs": None,
                    "finish_reason": finish_reason,
                }
            ],
            "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15},
        }

    return Reply(body=body)


def streamed_chat_reply(*pieces: str, delay: float) -> Reply:
    """The model's reply as server-sent chunks, `delay` seconds apart."""
    chunks = tuple(
        (
            "data: "
            + json.dumps(
                {
                    "id": "chatcmpl-stream",
                    "object": "chat.completion.chunk",
                    "created": 0,
                    "model": "test-chat",
                    "choices": [{"index": 0, "delta": {"content": piece}, "finish_reason": None}],
                }
            )
            + "\n\n"
        ).encode()
        for piece in pieces
    )
    return Reply(
        content_type="text/event-stream", chunks=(*chunks, b"data: [DONE]\n\n"), chunk_delay=delay
    )


def json_reply(value: object, *, fenced: bool = False) -> Reply:
    """A chat completion whose content is `value` as JSON (optionally in a ```json fence)."""
    text = json.dumps(value)
    return chat_reply(f"```json\n{text}\n```" if fenced else text)


def error_reply(
    status: int,
    message: str = "error",
    *,
    type_: str = "invalid_request_error",
    param=None,
    code=None,
) -> Reply:
    return Reply(
        status=status,
        body={"error": {"message": message, "type": type_, "param": param, "code": code}},
    )


def delayed(seconds: float, reply: Reply | None = None) -> Reply:
    """`reply` (a harmless completion by default) sent only after `seconds` — after the client gave
    up."""
    reply = reply or chat_reply("too late")
    return Reply(reply.status, reply.body, reply.raw, reply.content_type, seconds)


def malformed_body(
    text: str = '{"id": "chatcmpl-broken", "choices": [', content_type="application/json"
) -> Reply:
    """An HTTP 200 whose body is not the JSON it claims to be."""
    return Reply(raw=text.encode(), content_type=content_type)


def embedding_reply(
    vectors: Sequence[Sequence[float]], *, indexes: Sequence[int] | None = None
) -> Reply:
    """An embeddings response with `vectors`, encoded as the request asked (float lists, or base64
    of little-endian float32 — the `openai` SDK asks for base64 by default). `indexes` lets the data
    come back in another order than the input's."""
    indexes = list(range(len(vectors))) if indexes is None else list(indexes)

    def body(request: dict) -> dict:
        as_base64 = request.get("encoding_format") == "base64"
        data = []
        for index, vector in zip(indexes, vectors, strict=True):
            values = list(map(float, vector))
            encoded = (
                base64.b64encode(struct.pack(f"<{len(values)}f", *values)).decode()
                if as_base64
                else values
            )
            data.append({"object": "embedding", "index": index, "embedding": encoded})
        return {
            "object": "list",
            "data": data,
            "model": request.get("model", "test-embed"),
            "usage": {"prompt_tokens": 4, "total_tokens": 4},
        }

    return Reply(body=body)


# --- the server -----------------------------------------------------------------------------------


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def log_message(self, format, *args):  # quiet: tests read `requests` instead
        pass

    def do_POST(self):
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = None
        recorded = RecordedRequest(
            self.path, {k.lower(): v for k, v in self.headers.items()}, body, raw
        )
        self.server.owner._serve(self, recorded)

    def do_GET(self):
        self.server.owner._send(self, error_reply(404, f"no route GET {self.path}"), None)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    owner: OpenAIServer


class OpenAIServer:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._queues: dict[str, deque[Reply]] = {CHAT: deque(), EMBEDDINGS: deque()}
        self._stopping = threading.Event()
        self.requests: list[RecordedRequest] = []
        self.unscripted: list[RecordedRequest] = []
        self._httpd: _Server | None = None
        self._thread: threading.Thread | None = None

    # lifecycle
    def start(self) -> OpenAIServer:
        self._httpd = _Server(("127.0.0.1", 0), _Handler)
        self._httpd.owner = self
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()  # wakes handlers that are sleeping out a scripted delay
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    @property
    def port(self) -> int:
        assert self._httpd is not None, "the server is not started"
        return self._httpd.server_address[1]

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    # scripting
    def script_chat(self, *replies: Reply) -> None:
        with self._lock:
            self._queues[CHAT].extend(replies)

    def script_embeddings(self, *replies: Reply) -> None:
        with self._lock:
            self._queues[EMBEDDINGS].extend(replies)

    def pending(self) -> dict[str, int]:
        """Scripted replies not yet served, by path (only non-empty queues)."""
        with self._lock:
            return {path: len(queue) for path, queue in self._queues.items() if queue}

    def requests_to(self, path: str) -> list[RecordedRequest]:
        with self._lock:
            return [r for r in self.requests if r.path == path]

    @property
    def chat_requests(self) -> list[RecordedRequest]:
        return self.requests_to(CHAT)

    @property
    def embedding_requests(self) -> list[RecordedRequest]:
        return self.requests_to(EMBEDDINGS)

    # serving (on the handler's thread)
    def _serve(self, handler: _Handler, request: RecordedRequest) -> None:
        with self._lock:
            self.requests.append(request)
            queue = self._queues.get(request.path)
            if queue is None:
                reply: Reply | None = error_reply(404, f"no route POST {request.path}")
            elif queue:
                reply = queue.popleft()
            else:
                self.unscripted.append(request)
                message = f"the test server has no scripted reply for {request.path}"
                reply = error_reply(500, message, type_="server_error")
        if reply.delay and self._stopping.wait(reply.delay):
            return  # the server is stopping: drop the connection
        self._send(handler, reply, request.body)

    @staticmethod
    def _send(handler: _Handler, reply: Reply, request_body: object) -> None:
        if reply.chunks:
            try:
                handler.send_response(reply.status)
                handler.send_header("Content-Type", reply.content_type)
                handler.send_header("Connection", "close")
                handler.end_headers()
                for i, chunk in enumerate(reply.chunks):
                    if i:
                        time.sleep(reply.chunk_delay)
                    handler.wfile.write(chunk)
                    handler.wfile.flush()
            except (BrokenPipeError, ConnectionResetError):
                pass
            handler.close_connection = True
            return
        if reply.raw is not None:
            payload = reply.raw
        else:
            body = reply.body
            if callable(body):
                body = body(request_body if isinstance(request_body, dict) else {})
            payload = json.dumps(body).encode()
        try:
            handler.send_response(reply.status)
            handler.send_header("Content-Type", reply.content_type)
            handler.send_header("Content-Length", str(len(payload)))
            handler.send_header("Connection", "close")
            handler.end_headers()
            handler.wfile.write(payload)
            handler.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client timed out and hung up, as the test meant it to
        handler.close_connection = True
