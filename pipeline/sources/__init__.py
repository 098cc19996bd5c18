"""Readers that turn source files and URLs into documents."""
