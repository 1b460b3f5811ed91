"""The server stage: the API, the database, the job runner and event delivery; it composes the others."""
