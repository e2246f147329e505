"""Notifications: channels (email, Slack, webhook, log), routing and grouping, rate limits, and a
durable outbox with retries."""
