"""Configuration: the args settings grouped by stage, presets, validation, command-line overrides."""
