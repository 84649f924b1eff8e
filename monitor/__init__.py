"""Feed monitor: poll feeds, store items, match watchlists, send alerts."""

__version__ = "0.1.0"
PROJECT_URL = "https://github.com/feed-monitor/feed-monitor"
USER_AGENT = f"feed-monitor/{__version__} (+{PROJECT_URL})"
