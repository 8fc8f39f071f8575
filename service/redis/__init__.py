"""Redis access: the client, the Lua scripts, and their typed wrappers."""
