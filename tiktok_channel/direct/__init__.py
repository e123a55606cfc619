"""TikTok directly (TikTok API for Business): OAuth connections, TikTok-Signature webhooks, Business Messaging."""
