"""Journey services: start executions (trigger), run one step (step), deliver and send a message."""
