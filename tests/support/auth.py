"""The API key tests authenticate with when they start real processes or whole apps: made fresh
for each test session (never a key in the repository) and handed to the service as
KTRDR_BOOTSTRAP_API_KEY, so it is stored as an admin key of tenant "default" on start."""

from __future__ import annotations

from services.api.apikeys import generate_key

TEST_KEY = generate_key()
AUTH = {"Authorization": f"Bearer {TEST_KEY}"}
KEY_ENV = {"KTRDR_BOOTSTRAP_API_KEY": TEST_KEY, "KTRDR_API_KEY": TEST_KEY}
