"""JSON Schemas of fspec spec files (shipped as package data)."""
