"""Experiment configs on the host: loading with provenance, templates, presets, engine previews."""
