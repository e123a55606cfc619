"""A local stand-in for TikTok's own APIs (OAuth, Business Messaging, signed webhooks); see `server.py`."""
