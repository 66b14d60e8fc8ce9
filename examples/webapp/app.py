#!/usr/bin/env python3
"""A web front end that stays responsive while requests do CPU-heavy work.

    GET /hash/zjq?rounds=N&data=TEXT     the work runs on zjq workers: the handler
                                         awaits the job, the loop keeps serving
    GET /hash/inline?rounds=N&data=TEXT  the same work on the event loop: every
                                         other request waits until it is done
    GET /health                          cheap: "ok"

The work is what `zjq-worker --builtin sha256` does with the payload
"N:TEXT": round 1 hashes TEXT, each next round hashes the previous 32-byte
digest; the answer is the last digest in hex. Both endpoints answer
{"digest": ..., "via": ..., "ms": ...}.

    zjq-broker &
    zjq-worker --queue sha256 --builtin sha256 --concurrency 2 &
    python3 examples/webapp/app.py --broker tcp://127.0.0.1:5555 --port 8080

See README.md beside this file for the measurements.
"""

import argparse
import asyncio
import hashlib
import os
import signal
import sys
import time

from aiohttp import web

try:
    import zjq
except ImportError:             # running from a checkout without pip install
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                    "..", "..", "bindings", "python"))
    import zjq

MAX_ROUNDS = 100_000_000


def sha256_rounds(rounds, data):
    """What zjq-worker --builtin sha256 computes for "rounds:data"."""
    digest = hashlib.sha256(data).digest()
    for _ in range(rounds - 1):
        digest = hashlib.sha256(digest).digest()
    return digest.hex()


def _work(request):
    """(rounds, data bytes) from the query, or raise 400."""
    try:
        rounds = int(request.query.get("rounds", "100000"))
    except ValueError:
        raise web.HTTPBadRequest(text="rounds must be a whole number\n")
    if not 1 <= rounds <= MAX_ROUNDS:
        raise web.HTTPBadRequest(text="rounds must be 1..%d\n" % MAX_ROUNDS)
    return rounds, request.query.get("data", "").encode()


async def hash_zjq(request):
    rounds, data = _work(request)
    start = time.perf_counter()
    try:
        job = await request.app["zjq"].submit(request.app["queue"], b"%d:%s" % (rounds, data))
        digest = await job.result(timeout=request.app["timeout"])
    except zjq.Timeout as exc:
        raise web.HTTPGatewayTimeout(text="%s\n" % exc)
    except zjq.JobFailed as exc:
        raise web.HTTPInternalServerError(text="%s\n" % exc)
    except zjq.Error as exc:            # broker unavailable, rejected (queue full) ...
        raise web.HTTPServiceUnavailable(text="%s\n" % exc)
    return web.json_response({"digest": digest.decode(), "via": "zjq",
                              "ms": round((time.perf_counter() - start) * 1000, 3)})


async def hash_inline(request):
    rounds, data = _work(request)
    start = time.perf_counter()
    digest = sha256_rounds(rounds, data)        # blocks the event loop: the problem
    return web.json_response({"digest": digest, "via": "inline",
                              "ms": round((time.perf_counter() - start) * 1000, 3)})


async def health(request):
    return web.Response(text="ok\n")


def make_app(broker, queue="sha256", timeout=60.0, **connect_options):
    """The aiohttp application; it connects to the broker on startup and
    closes the client on cleanup."""
    app = web.Application()
    app["queue"] = queue
    app["timeout"] = timeout

    async def zjq_client(app):
        app["zjq"] = await zjq.connect(broker, **connect_options)
        yield
        app["zjq"].close()

    app.cleanup_ctx.append(zjq_client)
    app.router.add_get("/hash/zjq", hash_zjq)
    app.router.add_get("/hash/inline", hash_inline)
    app.router.add_get("/health", health)
    return app


async def serve(args):
    runner = web.AppRunner(make_app(args.broker, args.queue, args.timeout,
                                    curve_secret_file=args.curve_secret,
                                    broker_key_file=args.broker_key), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, args.host, args.port)
    await site.start()
    host, port = runner.addresses[0][:2]
    print("listening on http://%s:%d (broker %s, queue %s)" % (host, port, args.broker, args.queue),
          flush=True)
    if args.port_file:
        with open(args.port_file + ".tmp", "w") as f:
            f.write("%d\n" % port)
        os.rename(args.port_file + ".tmp", args.port_file)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    await stop.wait()
    await runner.cleanup()


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--broker", default=os.environ.get("ZJQ_BROKER", "tcp://127.0.0.1:5555"))
    parser.add_argument("--queue", default="sha256")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8080, help="0: any free port")
    parser.add_argument("--port-file", help="write the port there once listening")
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds a job may take")
    parser.add_argument("--curve-secret", default=os.environ.get("ZJQ_CURVE_SECRET"))
    parser.add_argument("--broker-key", default=os.environ.get("ZJQ_BROKER_KEY"))
    args = parser.parse_args(argv)
    try:
        asyncio.run(serve(args))
    except zjq.Error as exc:
        print("app.py: %s" % exc, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
