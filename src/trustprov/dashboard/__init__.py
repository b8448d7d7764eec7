"""The line's dashboard and audit report: another front end beside `trustprov.cli`.

It reads the records store (never writes it) and renders HTML with inline SVG charts; it never
imports chip internals or firmware, and nothing below it imports it.
"""
