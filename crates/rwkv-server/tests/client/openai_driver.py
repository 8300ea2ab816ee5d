"""Runs calls against an OpenAI-compatible server with the official `openai` client and prints
what came back as JSON, one line per call; the Rust tests say what the calls are (JSON on
stdin) and judge the answers. Raw HTTP (bodies the client cannot send: invalid JSON, invalid
UTF-8, a missing key) goes through Python's own http.client.

stdin: {"mode": "sequential" | "concurrent", "calls": [CALL, ...]}
CALL kinds:
  completion / chat: {"kind", "args": {...create() keyword arguments...}, "api_key"?}
      -> {"ok": true, "text", "finish_reason", "usage", "chunks", "id", "object", "model"}
         or {"ok": false, "status", "body"} (HTTP error) / {"ok": false, "stream_error": {...}}
  models: {} -> {"ok": true, "ids": [...]}
  raw: {"method", "path", "body" (text) | "body_hex", "headers"} -> {"status", "body"}
  disconnect: {"args": completion arguments, "chunks": K} -> reads K chunks, then closes the
      connection; {"texts", "health_during"} (GET /health while the stream was open)
  wait_running: {"equals": N, "timeout": S} -> polls /health until engine.running == N
      -> {"ok", "health", "waited"}
  long_stream: {"args"} -> prints {"progress": "first_chunk"} when the first chunk arrives,
      then the call's result (the stream is expected to be ended by the server)
env: RWKV_SERVER_URL (http://host:port), RWKV_API_KEY
"""

import http.client
import json
import os
import sys
import threading
import time
import urllib.parse
from concurrent.futures import ThreadPoolExecutor

import openai

URL = os.environ["RWKV_SERVER_URL"]
KEY = os.environ.get("RWKV_API_KEY", "no-key")


def client(api_key=None):
    return openai.OpenAI(base_url=URL + "/v1", api_key=api_key or KEY, max_retries=0, timeout=600)


def emit(value):
    sys.stdout.write(json.dumps(value) + "\n")
    sys.stdout.flush()


def error_result(e):
    if isinstance(e, openai.APIStatusError):
        try:
            body = e.response.json()
        except ValueError:
            body = e.response.text
        return {"ok": False, "status": e.status_code, "body": body}
    if isinstance(e, openai.APIError):
        return {"ok": False, "stream_error": e.body}
    raise e


def generate(call, progress=None):
    kind = call["kind"]
    api = client(call.get("api_key"))
    create = api.completions.create if kind == "completion" else api.chat.completions.create
    args = dict(call["args"])
    try:
        if not args.get("stream"):
            r = create(**args)
            choice = r.choices[0]
            text = choice.text if kind == "completion" else choice.message.content
            return {"ok": True, "text": text, "finish_reason": choice.finish_reason,
                    "usage": r.usage.model_dump(), "chunks": 0, "id": r.id, "object": r.object,
                    "model": r.model}
        texts, finish, usage, ident, obj, model, roles = [], None, None, None, None, None, []
        for chunk in create(**args):
            if progress and not texts:
                progress()
            ident, obj, model = chunk.id, chunk.object, chunk.model
            if chunk.usage is not None:
                usage = chunk.usage.model_dump()
            for choice in chunk.choices:
                if kind == "completion":
                    piece = choice.text
                else:
                    piece = choice.delta.content
                    if choice.delta.role:
                        roles.append(choice.delta.role)
                if piece:
                    texts.append(piece)
                if choice.finish_reason:
                    finish = choice.finish_reason
        return {"ok": True, "text": "".join(texts), "finish_reason": finish, "usage": usage,
                "chunks": len(texts), "pieces": texts, "id": ident, "object": obj, "model": model,
                "roles": roles}
    except openai.APIError as e:
        return error_result(e)


def request(method, path, content=b"", headers=None):
    url = urllib.parse.urlsplit(URL)
    connection = http.client.HTTPConnection(url.hostname, url.port, timeout=60)
    try:
        connection.request(method, path, body=content, headers=headers or {})
        response = connection.getresponse()
        text = response.read().decode("utf-8", "replace")
    finally:
        connection.close()
    try:
        body = json.loads(text)
    except ValueError:
        body = text
    return {"status": response.status, "body": body}


def health():
    return request("GET", "/health")["body"]


def raw(call):
    if "body_hex" in call:
        content = bytes.fromhex(call["body_hex"])
    else:
        content = call.get("body", "").encode()
    return request(call["method"], call["path"], content, call.get("headers", {}))


def disconnect(call):
    stream = client().completions.create(stream=True, **call["args"])
    texts = []
    for chunk in stream:
        texts.append(chunk.choices[0].text if chunk.choices else "")
        if len(texts) >= call["chunks"]:
            break
    during = health()
    stream.close()
    return {"texts": texts, "health_during": during}


def wait_running(call):
    start = time.monotonic()
    while True:
        h = health()
        waited = time.monotonic() - start
        if h["engine"]["running"] == call["equals"] or waited > call["timeout"]:
            return {"ok": h["engine"]["running"] == call["equals"], "health": h, "waited": waited}
        time.sleep(0.05)


def run(call):
    kind = call["kind"]
    if kind in ("completion", "chat"):
        return generate(call)
    if kind == "models":
        return {"ok": True, "ids": [m.id for m in client(call.get("api_key")).models.list().data]}
    if kind == "raw":
        return raw(call)
    if kind == "disconnect":
        return disconnect(call)
    if kind == "wait_running":
        return wait_running(call)
    if kind == "long_stream":
        return generate({"kind": "completion", "args": dict(call["args"], stream=True)},
                        progress=lambda: emit({"progress": "first_chunk"}))
    raise ValueError("unknown call kind " + kind)


def main():
    spec = json.load(sys.stdin)
    calls = spec["calls"]
    if spec["mode"] == "concurrent":
        barrier = threading.Barrier(len(calls))

        def together(call):
            barrier.wait()
            return run(call)

        with ThreadPoolExecutor(max_workers=len(calls)) as pool:
            results = list(pool.map(together, calls))
        for r in results:
            emit(r)
    else:
        for call in calls:
            emit(run(call))


main()
