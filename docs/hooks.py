"""MkDocs hook: the configuration page's table is generated from the settings object
(``reeldb.server.docs.settings_reference``), where the marker ``<!-- settings -->`` stands."""

from reeldb.server.docs import settings_reference


def on_page_markdown(markdown, page, config, files):
    return markdown.replace("<!-- settings -->", settings_reference())
