"""``artpulse demo``: the local loop, step by step."""
