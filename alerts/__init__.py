"""Alert delivery: the ``Channel`` protocol and its channels (webhook, email, log, apprise),
rendering, digests and retry schedules.

Each channel type is two modules: ``config_<type>`` holds its settings, all that validating
a configuration needs and nothing heavy; ``<type>`` holds the channel, imported by the
registry when a channel of that type is built, with its libraries (the SMTP client, Jinja2,
Standard Webhooks, Apprise). A service holds only the code of the channel types it uses.

The outbox that claims and records deliveries is the monitor's (``monitor/outbox.py``);
this package only sends one message when asked. It never imports ``monitor``: the monitor
builds the ``Alert`` values defined here.
"""
