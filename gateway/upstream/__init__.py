"""The upstream side: the Kombo client, its transport, retries, call budget, cache, loaders."""
