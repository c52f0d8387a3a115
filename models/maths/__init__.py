"""Pure geometry: rotation representations, homographies and their stacks."""
