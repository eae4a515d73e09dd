"""The on-call command line: see a stuck Stripe sync, understand it, and replay it safely.

Run it as `invoicing-oncall` (or `python -m chalicelib.oncall`); every command takes `--json`.
It reads the same settings as the service (TABLE_NAME, SYNC_QUEUE_URL, SYNC_DLQ_URL and the
AWS_ENDPOINT_URL_* overrides of the local stack).
"""
