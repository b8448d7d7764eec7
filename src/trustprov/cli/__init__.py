"""The click front end: parses, calls roles/line, renders. No logic lives here."""
