"""Alert delivery: the ``Channel`` protocol and its channels (webhook, email, log),
rendering, digests and retry schedules.

The outbox that claims and records deliveries is the monitor's (``monitor/outbox.py``);
this package only sends one message when asked. It never imports ``monitor``: the monitor
builds the ``Alert`` values defined here.
"""
