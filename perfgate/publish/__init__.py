"""Telling a forge: GitHub (sticky comment, check), GitHub Actions' files, GitLab (merge request note)."""
