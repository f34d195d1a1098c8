"""The stacks the Python workers run, one module each, found by name (README.md here).

What every module shares: how a failure says at which stage it happened.
"""


class Failure(Exception):
    """A refusal at a stage: "convert" (the converter refused), "read" (its artifact does not
    load back), "compile" or "run" (the runtime refused), "protocol" (a malformed request)."""

    def __init__(self, stage, error):
        super().__init__(error)
        self.stage = stage


def stage(name, fn):
    """fn(), with any exception it raises made a Failure at stage `name`."""
    try:
        return fn()
    except Failure:
        raise
    except Exception as e:
        raise Failure(name, f"{type(e).__name__}: {e}") from e
