"""Reports: roll-ups per inbox, agent and day kept by a domain-event subscriber, and the reads and pages on them.

`rollups.py` keeps the figures (and rebuilds them from the raw rows), `selectors.py` reads them, `api.py` serves
them (JSON and CSV), `views.py` the Reports page. See the README section "Reports" for the definitions.
"""
