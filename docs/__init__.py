"""ReelDB's documentation pages (Markdown), built into a site at ``/docs`` by ``reeldb.server.docs``."""
