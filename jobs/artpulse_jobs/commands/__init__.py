"""The ``artpulse`` sub-commands: thin click commands over the other subpackages.

No command module imports another; what two commands share lives in ``options`` (click
options and parameter types) and in ``artpulse_jobs.reporting`` (their output).
"""
