"""Studies: plan (expand, order), manifest, runner, parallel slots, model reuse, lock, orphans."""
