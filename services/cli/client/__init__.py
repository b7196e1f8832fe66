"""The client side of the `ktrdr` command: talks to the API (submit, status, list, watch,
cancel) over HTTP only. It shares the API's paths (services/api/paths.py) and the event catalog,
never its code."""
