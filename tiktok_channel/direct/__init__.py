"""TikTok's own API (TikTok API for Business): apps, OAuth connections of business accounts, Business Messaging.

`models` (app + connection), `client` (the HTTP calls and their classification), `tokens` (connect, refresh,
re-authorization, disconnect), `oauth` (the Connect round trip), `webhooks` (TikTok-Signature, parsing into the
core's events), `backend` (the `inbox.providers.Backend`), `tasks` (refresh ahead of expiry), `media` (received
images fetched for agents), `admin`, `context_processors` (the re-authorization banner for staff).
"""
