"""Serve a GGUF model over HTTP with xllamacpp (llama.cpp's own server), for the API tests.

    python tests/llama_server.py --model M.gguf --alias NAME --port N --api-key KEY

``xllamacpp.Server`` starts llama.cpp's native HTTP server (OpenAI-compatible
``/v1/chat/completions`` with ``logprobs``/``top_logprobs``, ``/v1/models``, API keys
checked by the server itself: a wrong key gets HTTP 401) in background threads of this
process; this script keeps the process alive until it gets SIGTERM or SIGINT. Test-only:
tests/test_openai_backend.py runs it in a subprocess, so the model's threads and logs stay
out of the pytest process.
"""

from __future__ import annotations

import argparse
import signal
import sys


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", required=True, help="path of the GGUF file")
    ap.add_argument("--alias", required=True, help="model name the server answers to")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--api-key", required=True)
    ap.add_argument("--n-ctx", type=int, default=2048)
    ap.add_argument("--threads", type=int, default=1, help="threads for generation and for prompt batches")
    args = ap.parse_args(argv)

    import xllamacpp

    params = xllamacpp.CommonParams()
    params.model.path = args.model
    params.model_alias = {args.alias}
    params.hostnames = [args.host]
    params.port = args.port
    params.api_keys = [args.api_key]
    params.n_ctx = args.n_ctx
    params.n_parallel = 1
    params.cpuparams.n_threads = args.threads
    params.cpuparams_batch.n_threads = args.threads

    # Blocked before the server's threads start, so they inherit the mask and the signal
    # waits for sigwait() below (no race between a check and a pause).
    stop_signals = {signal.SIGTERM, signal.SIGINT}
    signal.pthread_sigmask(signal.SIG_BLOCK, stop_signals)
    server = xllamacpp.Server(params)  # returns once the model is loaded and the port is open
    print(f"xllamacpp server listening on {server.listening_address}", flush=True)
    signal.sigwait(stop_signals)
    del server  # stops the HTTP server and the model's threads
    return 0


if __name__ == "__main__":
    sys.exit(main())
