"""Model and service wrappers. Each module holds a plain class (usable in-process, as the
bare loop does) that the Ray Serve deployment of the same module wraps."""
