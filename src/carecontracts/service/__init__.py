"""The shared service: pages and an API over one workspace."""
