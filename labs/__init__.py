"""The lab engine: lab definitions as data, and the engine that runs them step by step."""
