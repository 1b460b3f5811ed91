"""The player stage: the web player and the pages served beside the API."""
