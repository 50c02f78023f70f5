"""Run folders: their lifecycle, atomic files and history."""
