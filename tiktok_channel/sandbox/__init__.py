"""A local stand-in for Infobip's TikTok API, and a simulated TikTok user (see the README's sandbox section)."""
