"""One construct per concern; infra/stack.py composes them from infra/description.py."""
