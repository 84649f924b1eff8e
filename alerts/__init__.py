"""Alert delivery: the outbox, channels (webhook, email, log) and retries.

This package never imports ``monitor``: the pipeline builds the ``Alert`` defined here.
"""
