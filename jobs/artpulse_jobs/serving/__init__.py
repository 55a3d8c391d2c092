"""Serving from the jobs side: start a real MLServer process, and a V2 client for it."""
