"""HTTP client side of the `ktrdr` command: talks to the API (submit, status, list, watch,
cancel). Nothing here imports the services; the API is reached over HTTP only."""
