"""The index stage: turns audio into transcripts and searchable segments."""
