"""What the lab engine, the checkers and the validators share: the pins of `versions.toml` and
the lab's paths and knobs. Nothing here imports `labs`, `checks` or `validators`."""
