"""What a cold process pays before its first DynamoDB request: every table model's client.

    .venv/bin/python -m bench.cold_start [--processes N]

Each of N fresh interpreters imports the app, binds the table (as a Lambda cold start does) and asks every
PynamoDB model for its client, timing that last step only. No request is sent, so no server is needed. It
prints the median over the processes and how many distinct clients the models ended up with.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys

PROBE = """
import json, time
import app  # noqa: F401  (the models, as the deployed handler loads them)
from chalicelib.storage import models
models.bind("bench-cold-start", "http://127.0.0.1:9", "us-east-1")
every = models.every_model()
started = time.perf_counter()
clients = {id(model._get_connection().connection.client) for model in every}
print(json.dumps({"ms": 1000 * (time.perf_counter() - started), "models": len(every), "clients": len(clients)}))
"""


def probe() -> dict[str, float]:
    # Credentials only so botocore does not look for real ones; nothing is sent.
    credentials = {"AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench"}
    output = subprocess.run([sys.executable, "-c", PROBE], env={**os.environ, **credentials}, check=True,
                            capture_output=True, text=True).stdout
    result: dict[str, float] = json.loads(output.strip().splitlines()[-1])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--processes", type=int, default=5)
    args = parser.parse_args()
    runs = [probe() for _ in range(args.processes)]
    print(f"models: {int(runs[0]['models'])}, distinct clients: {int(runs[0]['clients'])}")
    print(f"clients ready in {statistics.median(r['ms'] for r in runs):.0f} ms "
          f"(median of {args.processes} fresh processes; min {min(r['ms'] for r in runs):.0f}, "
          f"max {max(r['ms'] for r in runs):.0f})")


if __name__ == "__main__":
    main()
